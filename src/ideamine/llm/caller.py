"""One logical call to one model: the call cache first, then the budget check (invariant 6;
a cached reply costs nothing and is never blocked), then the provider under its circuit
breaker and retry policy. Every try is handed to ``record`` as a ``ModelCallRecord`` (cache
hits, failures and interrupted tries included), so nothing a provider was asked goes
unrecorded.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ideamine.canonical import sha256_hex
from ideamine.config.model import Price
from ideamine.engine.budget import Amounts, worst_case
from ideamine.errors import AgentError
from ideamine.llm.base import ModelProvider, ModelRequest, Progress, cost_usd
from ideamine.llm.breaker import CircuitBreaker
from ideamine.llm.cache import CachedReply, CallCache, cache_key, request_params
from ideamine.llm.failures import (
    CircuitOpenError,
    ErrorClass,
    ProviderError,
    ReplayMissError,
)
from ideamine.llm.policy import RetryPolicy
from ideamine.stores.records import ModelCallRecord

__all__ = ["BudgetCheck", "ModelCaller", "Recorder"]

Recorder = Callable[[ModelCallRecord], None]
BudgetCheck = Callable[[Amounts], Awaitable[None]]  # raises when the call must not be made
Sleep = Callable[[float], Awaitable[None]]
HEALTH_FAILURES = frozenset({ErrorClass.TRANSIENT, ErrorClass.TIMEOUT})


@dataclass(kw_only=True)
class ModelCaller:
    """Calls ``provider`` for one ``provider:model`` reference."""

    provider: ModelProvider
    reference: str
    cache: CallCache
    breaker: CircuitBreaker
    policy: RetryPolicy
    price: Price | None = None
    replay: bool = False  # serve only from the cache; a miss is an error
    sleep: Sleep = asyncio.sleep
    jitter: Callable[[], float] = field(default=random.random)

    async def call(
        self,
        request: ModelRequest,
        *,
        record: Recorder,
        purpose: str = "answer",
        progress: Progress | None = None,
        budget: BudgetCheck | None = None,
    ) -> str:
        """The reply text for ``request``.

        ``budget`` is called with the request's worst case (``engine.budget.worst_case``)
        after a cache miss and before each try is sent.

        Raises:
            BudgetExceededError: the budget check refused the call (nothing was sent).
            ReplayMissError: replay mode and the call is not cached.
            CircuitOpenError: the breaker is open (no call was made).
            ProviderError: the call failed and the policy allows no further try.
        """
        key = cache_key(self.provider.name, request)
        started = time.perf_counter()
        cached = await self.cache.get(key)
        params = {**request_params(request), "cache_key": key, "purpose": purpose}
        if cached is not None:
            extra = {"cached_tokens_in": cached.tokens_in, "cached_tokens_out": cached.tokens_out}
            record(self._row(request, {**params, **extra}, started, outcome="cached"))
            return cached.text
        if self.replay:
            raise ReplayMissError(request.agent, model=self.reference, key=key)
        return await self._call_with_retries(request, key, params, record, progress, budget)

    async def _call_with_retries(
        self,
        request: ModelRequest,
        key: str,
        params: dict[str, object],
        record: Recorder,
        progress: Progress | None,
        budget: BudgetCheck | None,
    ) -> str:
        tries: dict[ErrorClass, int] = {}
        while True:
            if budget is not None:
                await budget(worst_case(request.prompt, request.max_tokens, self.price))
            try:
                return await self._try(request, key, params, record, progress)
            except ProviderError as exc:
                tries[exc.error_class] = tries.get(exc.error_class, 0) + 1
                delay = self.policy.delay(
                    exc.error_class,
                    tries=tries[exc.error_class],
                    jitter=self.jitter(),
                    retry_after=exc.retry_after,
                )
                if delay is None or isinstance(exc, CircuitOpenError):
                    raise
                await self.sleep(delay)

    async def _try(
        self,
        request: ModelRequest,
        key: str,
        params: dict[str, object],
        record: Recorder,
        progress: Progress | None,
    ) -> str:
        provider = self.provider.name
        if not self.breaker.allow():
            raise CircuitOpenError(
                request.agent,
                provider=provider,
                model=request.model,
                reopens_in=self.breaker.reopens_in(),
            )
        started = time.perf_counter()
        try:
            response = await self.provider.complete(request, progress)
        except ProviderError as exc:
            self._health(exc.error_class)
            record(self._row(request, params, started, outcome=str(exc.error_class)))
            raise
        except AgentError:
            self.breaker.release()
            record(self._row(request, params, started, outcome="error"))
            raise
        except asyncio.CancelledError:
            # the task timeout (or a shutdown) cut the call: recorded, then propagated
            self.breaker.release()
            record(self._row(request, params, started, outcome="cancelled"))
            raise
        self.breaker.record_success()
        record(
            self._row(
                request,
                params,
                started,
                outcome="ok",
                tokens=(response.tokens_in, response.tokens_out),
            )
        )
        reply = CachedReply(
            provider=provider,
            model=request.model,
            text=response.text,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
        )
        await self.cache.put(key, reply)
        return response.text

    def _health(self, error_class: ErrorClass) -> None:
        if error_class in HEALTH_FAILURES:
            self.breaker.record_failure()
        else:
            self.breaker.release()

    def _row(
        self,
        request: ModelRequest,
        params: dict[str, object],
        started: float,
        *,
        outcome: str,
        tokens: tuple[int, int] = (0, 0),
    ) -> ModelCallRecord:
        return ModelCallRecord(
            provider=self.provider.name,
            model=request.model,
            prompt_hash=sha256_hex(request.prompt),
            params=params,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cost_usd=cost_usd(self.price, tokens[0], tokens[1]),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            outcome=outcome,
        )
