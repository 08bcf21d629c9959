"""The provider retry policy of SPEC §5 as a validated value object.

Transient errors and timeouts: 5 tries, 1 s → 60 s exponential with jitter. Rate limits: 10
tries, 5 s → 300 s, never sooner than the server's ``retry-after``. Auth, bad requests and
invalid output are never retried here (invalid output gets one repair call instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from ideamine.config.model import BackoffSpec, ProviderSpec
from ideamine.llm.failures import ErrorClass

__all__ = ["DEFAULT_POLICY", "Backoff", "RetryPolicy", "policy_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff: try ``n`` waits ``base * 2^(n-1)`` capped at ``cap`` seconds,
    scaled by a jitter factor in [0.5, 1]."""

    max_attempts: int
    base_seconds: float
    cap_seconds: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_seconds < 0 or self.cap_seconds < self.base_seconds:
            raise ValueError(
                f"need 0 ≤ base ({self.base_seconds}) ≤ cap ({self.cap_seconds}) seconds"
            )

    def delay(self, tries: int, jitter: float) -> float:
        """Seconds before the next try after ``tries`` failed ones; ``jitter`` in [0, 1]."""
        raw = min(self.base_seconds * 2.0 ** (tries - 1), self.cap_seconds)
        return raw * (0.5 + min(max(jitter, 0.0), 1.0) / 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how long to retry a provider call, by error class."""

    transient: Backoff
    rate_limit: Backoff

    def delay(
        self, error_class: ErrorClass, *, tries: int, jitter: float, retry_after: float | None
    ) -> float | None:
        """Seconds before the next try, or ``None`` to stop retrying.

        Args:
            error_class: the class of the error the last try ended with.
            tries: tries made so far for this error class, the failed one included.
            jitter: a number in [0, 1] (random in production, fixed in tests).
            retry_after: the server's ``retry-after``, honoured for rate limits.
        """
        if error_class is ErrorClass.RATE_LIMIT:
            backoff = self.rate_limit
        elif error_class in (ErrorClass.TRANSIENT, ErrorClass.TIMEOUT):
            backoff = self.transient
        else:
            return None
        if tries >= backoff.max_attempts:
            return None
        wait = backoff.delay(tries, jitter)
        if error_class is ErrorClass.RATE_LIMIT and retry_after is not None:
            wait = max(wait, retry_after)
        return wait


DEFAULT_POLICY = RetryPolicy(
    transient=Backoff(max_attempts=5, base_seconds=1.0, cap_seconds=60.0),
    rate_limit=Backoff(max_attempts=10, base_seconds=5.0, cap_seconds=300.0),
)


def _backoff(spec: BackoffSpec | None, default: Backoff) -> Backoff:
    if spec is None:
        return default
    return Backoff(
        max_attempts=spec.max_attempts,
        base_seconds=spec.base_delay_ms / 1000,
        cap_seconds=max(spec.max_delay_ms, spec.base_delay_ms) / 1000,
    )


def policy_for(spec: ProviderSpec) -> RetryPolicy:
    """The policy of a provider: SPEC §5's defaults, overridden by ``pipeline.yaml``."""
    return RetryPolicy(
        transient=_backoff(spec.transient, DEFAULT_POLICY.transient),
        rate_limit=_backoff(spec.rate_limit, DEFAULT_POLICY.rate_limit),
    )
