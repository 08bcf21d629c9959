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


def test_stopping_during_a_renewal_keeps_a_cancellation_of_the_caller() -> None:
    """The renewal under way is cancelled and awaited; a cancellation aimed at the task that
    stops the beat while it waits goes on to that task."""

    async def body() -> bool:
        started = asyncio.Event()

        async def slow_renew() -> None:
            started.set()
            await asyncio.sleep(10)

        beat = Heartbeat(slow_renew, INTERVAL, "task-1")

        async def executor() -> None:
            beat.start()
            await started.wait()  # a renewal is under way
            await beat.stop()

        job = asyncio.create_task(executor())
        await started.wait()
        await asyncio.sleep(0)  # the job is now awaiting the cancelled renewal inside stop()
        job.cancel()
        try:
            await job
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(body())
