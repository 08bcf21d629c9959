"""A claimed task's heartbeat: renewals every interval until stopped, and what a renewal's
failure does."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ideamine.errors import StaleLeaseError, StoreUnavailableError
from ideamine.runtime.heartbeat import Heartbeat

INTERVAL = 0.02


class Renewals:
    """A renew callable counting its calls; it raises ``error`` from call ``fail_at`` on."""

    def __init__(self, error: Exception | None = None, fail_at: int = 1) -> None:
        self.calls = 0
        self._error = error
        self._fail_at = fail_at

    async def __call__(self) -> None:
        self.calls += 1
        if self._error is not None and self.calls >= self._fail_at:
            raise self._error


def test_renews_every_interval_until_stopped() -> None:
    async def body() -> tuple[int, int]:
        renew = Renewals()
        beat = Heartbeat(renew, INTERVAL, "task-1")
        beat.start()
        await asyncio.sleep(INTERVAL * 5.5)
        await beat.stop()
        stopped_at = renew.calls
        await asyncio.sleep(INTERVAL * 3)
        return stopped_at, renew.calls

    stopped_at, later = asyncio.run(body())
    assert 3 <= stopped_at <= 5  # one per interval (a late timer may lose one)
    assert later == stopped_at


def test_a_task_ending_before_its_first_beat_renews_nothing() -> None:
    async def body() -> int:
        renew = Renewals()
        beat = Heartbeat(renew, INTERVAL, "task-1")
        beat.start()
        await beat.stop()
        await asyncio.sleep(INTERVAL * 2)
        return renew.calls

    assert asyncio.run(body()) == 0


def test_a_lost_lease_stops_the_beat_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> int:
        renew = Renewals(StaleLeaseError("task-1"), fail_at=2)
        beat = Heartbeat(renew, INTERVAL, "task-1")
        beat.start()
        await asyncio.sleep(INTERVAL * 5.5)
        await beat.stop()  # does not raise: the result's write finds the lost lease too
        return renew.calls

    with caplog.at_level(logging.WARNING, logger="ideamine.runtime.heartbeat"):
        assert asyncio.run(body()) == 2
    assert "task task-1: heartbeat found the lease taken over" in caplog.text


def test_another_renewal_error_stops_the_beat_and_is_raised_by_stop() -> None:
    async def body() -> int:
        renew = Renewals(StoreUnavailableError("the database refused the connection"))
        beat = Heartbeat(renew, INTERVAL, "task-1")
        beat.start()
        await asyncio.sleep(INTERVAL * 4.5)
        calls = renew.calls
        with pytest.raises(StoreUnavailableError, match="refused"):
            await beat.stop()
        return calls

    assert asyncio.run(body()) == 1
