"""What the official SDKs (``openai``, ``anthropic``) have in common: lazy import, one
translation of their exceptions into classified ``ProviderError`` s, and streaming progress.

Both SDKs raise ``APIStatusError`` (with ``status_code`` and the response headers),
``APITimeoutError`` and ``APIConnectionError``; the translation reads those by name, so one
function serves both.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from types import ModuleType

from ideamine.errors import UsageError
from ideamine.llm.base import Progress
from ideamine.llm.failures import ErrorClass, ProviderError, class_of_status, retry_after_seconds

__all__ = ["Identity", "ProgressThrottle", "import_sdk", "translate_error"]

PROGRESS_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who is calling what, for error messages (``key`` only to redact it)."""

    agent: str
    provider: str
    model: str
    key_env: str
    key: str


def import_sdk(module: str, extra: str) -> ModuleType:
    """Import an SDK only when its provider is first used.

    Raises:
        UsageError: the package is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(
            f"the {module!r} package is needed for {extra} models but is not installed",
            hint=f"pip install {module}",
        ) from exc


def translate_error(sdk: ModuleType, exc: Exception, who: Identity) -> ProviderError | None:
    """The classified error for an SDK exception; ``None`` if it is not an SDK API error."""
    status: int | None = None
    retry_after: float | None = None
    if isinstance(exc, sdk.APITimeoutError):
        error_class, detail = ErrorClass.TIMEOUT, "request timed out"
    elif isinstance(exc, sdk.APIConnectionError):
        error_class, detail = ErrorClass.TRANSIENT, f"connection failed: {_cause(exc)}"
    elif isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        headers = dict(exc.response.headers) if exc.response is not None else {}
        error_class, detail = class_of_status(status), str(getattr(exc, "message", exc))[:500]
        retry_after = retry_after_seconds(headers)
    else:
        return None
    return ProviderError(
        who.agent,
        provider=who.provider,
        model=who.model,
        error_class=error_class,
        detail=detail,
        retry_after=retry_after,
        status=status,
        key_env=who.key_env,
        secrets=[who.key] if who.key else [],
    )


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}"[:200] if cause else str(exc)[:200]


class ProgressThrottle:
    """Passes streaming progress on at most once every ``PROGRESS_SECONDS``."""

    def __init__(self, progress: Progress | None, every: float = PROGRESS_SECONDS) -> None:
        self._progress = progress
        self._every = every
        self._last = time.monotonic()
        self.chars = 0

    async def received(self, text: str) -> None:
        self.chars += len(text)
        now = time.monotonic()
        if self._progress is not None and now - self._last >= self._every:
            self._last = now
            await self._progress(self.chars)
