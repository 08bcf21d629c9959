"""What went wrong with a model call, classified so the retry policy can decide what to do.

::

    AgentError (ideamine.errors)
    ├── ProviderError            a provider refused or failed a call; ``error_class`` says how
    │   └── CircuitOpenError     the provider's circuit breaker is open: no call was made
    ├── ModelOutputError         the reply is not valid JSON for the schema, even after repair
    └── ReplayMissError          replay mode and the call is not in the call cache

Every message passes through ``redact`` so an API key can never reach the ledger, a log or
the terminal, even when a server echoes it back in an error body.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from ideamine.errors import AgentError

__all__ = [
    "CircuitOpenError",
    "ErrorClass",
    "ModelOutputError",
    "ProviderError",
    "ReplayMissError",
    "class_of_status",
    "known_secrets",
    "redact",
    "retry_after_seconds",
]

SECRET_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET")
MIN_SECRET_CHARS = 8


class ErrorClass(StrEnum):
    """SPEC §5's error classes for model calls."""

    TRANSIENT = "transient"  # 5xx, connection reset: retried with exponential backoff
    RATE_LIMIT = "rate-limit"  # 429: retried longer, honouring retry-after
    TIMEOUT = "timeout"  # the request timed out: retried like a transient error
    INVALID_OUTPUT = "invalid-output"  # not JSON / not the schema: one repair call
    AUTH = "auth"  # 401/403 or no key: never retried
    BAD_REQUEST = "bad-request"  # 400/404/422: never retried
    UNAVAILABLE = "unavailable"  # circuit open: not retried, the chain falls back


RETRYABLE = frozenset({ErrorClass.TRANSIENT, ErrorClass.RATE_LIMIT, ErrorClass.TIMEOUT})

_HINTS = {
    ErrorClass.AUTH: "check the API key variable ({env}) and that it is valid for this endpoint",
    ErrorClass.BAD_REQUEST: "check the model name and the provider's base URL in pipeline.yaml",
    ErrorClass.RATE_LIMIT: "lower --concurrency, raise the provider's limits, or add a fallback",
    ErrorClass.TRANSIENT: "the provider is failing; retry later or add a fallback model",
    ErrorClass.TIMEOUT: "the provider is slow; raise timeout_seconds or add a fallback model",
    ErrorClass.UNAVAILABLE: "the provider failed repeatedly; its circuit breaker is open",
}


class ProviderError(AgentError):
    """A provider call failed; ``error_class`` decides whether and when to retry."""

    def __init__(
        self,
        agent: str,
        *,
        provider: str,
        model: str,
        error_class: ErrorClass,
        detail: str,
        retry_after: float | None = None,
        status: int | None = None,
        key_env: str = "",
        secrets: Sequence[str] = (),
    ) -> None:
        self.provider, self.model, self.error_class = provider, model, error_class
        self.retry_after, self.status = retry_after, status
        self.retryable = error_class in RETRYABLE
        shown = f" (HTTP {status})" if status else ""
        hint = _HINTS.get(error_class, "").format(env=key_env or "the provider's key variable")
        super().__init__(
            agent,
            f"{provider}:{model} {error_class}{shown}: {redact(redact(detail), secrets)}",
            hint=hint,
        )


class CircuitOpenError(ProviderError):
    """The provider's breaker is open; the call was not made."""

    def __init__(self, agent: str, *, provider: str, model: str, reopens_in: float) -> None:
        self.reopens_in = reopens_in  # seconds until the breaker lets a trial call through
        super().__init__(
            agent,
            provider=provider,
            model=model,
            error_class=ErrorClass.UNAVAILABLE,
            detail=f"circuit breaker open; next trial call in {reopens_in:.1f} s",
        )


class ModelOutputError(AgentError):
    """The model's reply did not validate, and the one repair call did not fix it."""

    def __init__(self, agent: str, *, model: str, detail: str) -> None:
        self.model, self.detail = model, detail
        super().__init__(
            agent,
            f"{model} returned output that does not match output_schema after one repair "
            f"call: {redact(detail)}",
            hint="use a stronger model or a lower temperature, or add a fallback model",
        )


class ReplayMissError(AgentError):
    """Replay found a call that is not in the call cache (the run cannot be reproduced)."""

    def __init__(self, agent: str, *, model: str, key: str) -> None:
        self.model, self.key = model, key
        super().__init__(
            agent,
            f"replay: call to {model} is not in the call cache (key {key[:16]}…)",
            hint="replay needs the store that holds the original run's calls; "
            "the original run may have failed before this call",
        )


def class_of_status(status: int) -> ErrorClass:
    """The error class of an HTTP status code."""
    if status in (401, 403):
        return ErrorClass.AUTH
    if status == 429:
        return ErrorClass.RATE_LIMIT
    if status in (408, 409) or status >= 500:
        return ErrorClass.TRANSIENT
    return ErrorClass.BAD_REQUEST


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: float | None = None
) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, ``retry-after`` (seconds or an
    HTTP date); ``None`` when absent or unreadable."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(lowered.get("retry-after")))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def known_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that look like credentials (``*_API_KEY`` …)."""
    env = os.environ if environ is None else environ
    return sorted(
        {
            value
            for name, value in env.items()
            if name.upper().endswith(SECRET_ENV_SUFFIXES) and len(value) >= MIN_SECRET_CHARS
        },
        key=len,
        reverse=True,
    )


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every known secret replaced by ``***``."""
    for secret in known_secrets() if secrets is None else secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text
