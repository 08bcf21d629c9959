"""The ``Clock`` seam: where IdeaMine reads the time, so tests can inject their own."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "iso"]


class Clock(Protocol):
    """A source of wall-clock time."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()


def iso(seconds: float) -> str:
    """An epoch time as ISO-8601 UTC with microseconds (how the store writes times)."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="microseconds")
