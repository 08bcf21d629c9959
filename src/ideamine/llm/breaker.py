"""A circuit breaker per provider: stop calling a provider that keeps failing.

Closed: calls go through; ``failure_threshold`` consecutive transient failures (5xx,
timeouts, connection errors) open it. Open: calls fail fast with ``CircuitOpenError`` until
``reset_seconds`` have passed. Half-open: one trial call goes through; success closes the
breaker, failure opens it again. Auth and bad-request errors say nothing about the
provider's health and do not count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class CircuitBreaker:
    """Breaker state of one provider in this process (monotonic clock injectable)."""

    name: str
    failure_threshold: int = 5
    reset_seconds: float = 30.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def reopens_in(self) -> float:
        """Seconds until a trial call is allowed (0 when not open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_seconds - (self.clock() - self.opened_at))

    def allow(self) -> bool:
        """Whether a call may go out now (half-open lets exactly one trial through)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.failures, self.opened_at, self.trial_in_flight = 0, None, False

    def record_failure(self) -> None:
        """Count a health failure; open (or re-open) when the threshold is reached."""
        self.failures += 1
        if self.trial_in_flight or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
        self.trial_in_flight = False

    def release(self) -> None:
        """A call ended without saying anything about health (e.g. a 400): free the trial."""
        self.trial_in_flight = False
