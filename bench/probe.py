"""Look at a store from the benchmark driver (a synchronous process) while other processes
work on it: one event loop and one open store for the probe's lifetime."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from types import TracebackType

from bench.shape import result_type
from ideamine import service
from ideamine.engine.states import RunStatus
from ideamine.stores.base import Store

_FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class Probe:
    """Polls runs in the store named by ``reference`` (a SQLite path or postgresql:// URL)."""

    def __init__(self, reference: str) -> None:
        self._loop = asyncio.Runner()
        self._store: Store = self._loop.run(service.open_store(reference))

    def __enter__(self) -> Probe:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._loop.run(self._store.close())
        self._loop.close()

    def status(self, run_id: str) -> RunStatus:
        """The run's status now."""
        return self._loop.run(self._store.get_run(run_id)).status

    def created_at(self, run_id: str) -> float:
        """When the run was stored (epoch seconds)."""
        return datetime.fromisoformat(
            self._loop.run(self._store.get_run(run_id)).created_at
        ).timestamp()

    def wait_finished(
        self, run_id: str, *, timeout: float, every: float = 0.02
    ) -> tuple[RunStatus, float]:
        """Poll until the run is finished; (its status, epoch seconds when seen finished)."""
        deadline = time.monotonic() + timeout
        while (status := self.status(run_id)) not in _FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {status} after {timeout:g} s")
            time.sleep(every)
        return status, time.time()

    def artifact(self, run_id: str, phase: str) -> object:
        """The content of the latest artifact ``phase`` wrote in ``run_id``."""

        async def read() -> object:
            records = [
                a for a in await self._store.artifacts(run_id) if a.type == result_type(phase)
            ]
            if not records:
                return None
            return await self._store.blob(max(records, key=lambda a: a.version).content_hash)

        return self._loop.run(read())

    def event_at(self, run_id: str, event_type: str) -> float:
        """When the run's last ``event_type`` event was written (epoch seconds).

        Raises:
            LookupError: the run has no such event.
        """
        events = self._loop.run(service.all_events(self._store, run_id))
        found = [e.at for e in events if e.type == event_type]
        if not found:
            raise LookupError(f"run {run_id} has no {event_type} event")
        return datetime.fromisoformat(found[-1]).timestamp()

    def longest_pause(self, run_id: str, *, after: str) -> float:
        """The longest gap between consecutive ledger events after the first ``after`` event
        (W3: how long the resumed run sat idle)."""
        events = self._loop.run(service.all_events(self._store, run_id))
        start = next((i for i, e in enumerate(events) if e.type == after), None)
        if start is None:
            return 0.0
        times = [datetime.fromisoformat(e.at).timestamp() for e in events[start:]]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)
