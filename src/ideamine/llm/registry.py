"""Which ``ModelProvider`` serves a ``provider:model`` reference."""

from __future__ import annotations

from ideamine.errors import UsageError
from ideamine.llm.base import ModelProvider
from ideamine.llm.offline import OfflineProvider

__all__ = ["Providers"]


class Providers:
    """Provider instances by name, created once per process."""

    def __init__(self) -> None:
        self._providers: dict[str, ModelProvider] = {"offline": OfflineProvider()}

    def resolve(self, reference: str) -> tuple[ModelProvider, str]:
        """The provider and model name for ``provider:model``.

        Raises:
            UsageError: the provider is not one this installation knows.
        """
        name, _, model = reference.partition(":")
        provider = self._providers.get(name)
        if provider is None:
            known = ", ".join(sorted(self._providers))
            raise UsageError(
                f"unknown model provider {name!r} in {reference!r}",
                hint=f"use one of: {known} (e.g. offline:template)",
            )
        return provider, model
