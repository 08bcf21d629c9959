"""Which ``ModelProvider`` serves a ``provider:model`` reference, and the per-process state
that goes with providers: one instance and one circuit breaker per provider, and whether
calls may reach a provider at all (replay serves only from the call cache)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from ideamine.config.model import PipelineSpec, ProviderSpec
from ideamine.errors import UsageError
from ideamine.llm.base import ModelProvider
from ideamine.llm.breaker import CircuitBreaker
from ideamine.llm.cache import CallCache, MemoryCallCache
from ideamine.llm.caller import ModelCaller
from ideamine.llm.policy import policy_for

__all__ = ["KNOWN_PROVIDERS", "Providers", "split_reference"]

KNOWN_PROVIDERS = ("anthropic", "offline", "openai")


def split_reference(reference: str) -> tuple[str, str]:
    """``provider:model`` → (provider, model).

    Raises:
        UsageError: not of that form, or an unknown provider.
    """
    name, _, model = reference.partition(":")
    if name not in KNOWN_PROVIDERS or not model:
        raise UsageError(
            f"unknown model provider {name!r} in {reference!r}"
            if model
            else f"model reference {reference!r} is not provider:model",
            hint=f"use one of: {', '.join(KNOWN_PROVIDERS)} (e.g. offline:template, "
            "openai:gpt-4o, anthropic:claude-sonnet-4-5)",
        )
    return name, model


class Providers:
    """Provider instances and breakers by provider name, created once per process.

    Args:
        replay: serve every call from the call cache and fail on a miss (``ideamine replay``).
        environ: where API keys and base URLs are read (default ``os.environ``).
        sleep, jitter, clock: injectable for tests (retry waits, jitter, breaker time).
    """

    def __init__(
        self,
        *,
        replay: bool = False,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replay = replay
        self.memory: CallCache = MemoryCallCache()
        self._environ = environ
        self._sleep, self._jitter, self._clock = sleep, jitter, clock
        self._providers: dict[str, ModelProvider] = {}
        self._breakers: dict[str, CircuitBreaker] = {}

    def resolve(
        self, reference: str, settings: ProviderSpec | None = None
    ) -> tuple[ModelProvider, str]:
        """The provider and model name for ``provider:model`` (created on first use with
        ``settings``; later calls share that instance).

        Raises:
            UsageError: the provider is not one this installation knows.
        """
        name, model = split_reference(reference)
        if name not in self._providers:
            self._providers[name] = self._create(name, settings or ProviderSpec(name=name))
        return self._providers[name], model

    def _create(self, name: str, spec: ProviderSpec) -> ModelProvider:
        """Provider ``name``, its module imported now: a pipeline of Python agents imports
        none (the offline one brings Jinja2 and its text kit, ~25 ms of a resume's start)."""
        if name == "offline":
            from ideamine.llm.offline import OfflineProvider  # noqa: PLC0415

            return OfflineProvider()
        if name == "openai":
            from ideamine.llm.openai_compat import OpenAIProvider  # noqa: PLC0415

            return OpenAIProvider(spec, self._environ)
        from ideamine.llm.anthropic import AnthropicProvider  # noqa: PLC0415

        return AnthropicProvider(spec, self._environ)

    def key_problem(self, reference: str, settings: ProviderSpec | None = None) -> str | None:
        """Why ``reference`` cannot be called (a missing API key), or ``None``."""
        provider, _ = self.resolve(reference, settings)
        problem = getattr(provider, "key_problem", None)
        return problem if isinstance(problem, str) else None

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (with the injected sleep), e.g. for an open breaker."""
        await self._sleep(seconds)

    def breaker(self, name: str, settings: ProviderSpec | None = None) -> CircuitBreaker:
        """The circuit breaker of provider ``name`` in this process."""
        if name not in self._breakers:
            spec = settings or ProviderSpec(name=name)
            self._breakers[name] = CircuitBreaker(
                name=name,
                failure_threshold=spec.breaker_failures,
                reset_seconds=spec.breaker_reset_seconds,
                clock=self._clock,
            )
        return self._breakers[name]

    def caller(self, reference: str, pipeline: PipelineSpec, cache: CallCache) -> ModelCaller:
        """A ``ModelCaller`` for ``reference`` under ``pipeline``'s settings and prices."""
        name, _ = split_reference(reference)
        settings = pipeline.provider(name)
        provider, _ = self.resolve(reference, settings)
        return ModelCaller(
            provider=provider,
            reference=reference,
            cache=cache,
            breaker=self.breaker(name, settings),
            policy=policy_for(settings),
            price=pipeline.pricing.get(reference),
            replay=self.replay,
            sleep=self._sleep,
            jitter=self._jitter,
        )
