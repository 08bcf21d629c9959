"""Group commit: one writer thread runs the transactions queued by concurrent tasks in
batches, one database transaction per batch.

A store submits a unit of work and awaits it; the writer takes everything queued since its
last commit, hands the batch to the store's ``execute`` (which runs each unit inside the one
transaction, each isolated by a savepoint, and commits once), and only then settles the
callers' futures. So no caller learns its result before the commit that made it durable, and
a unit that raises is rolled back alone while the rest of the batch commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["MAX_BATCH", "Failure", "GroupCommit", "Outcome", "Success"]

W = TypeVar("W")
MAX_BATCH = 256  # units per transaction: bounds how long one commit keeps the others waiting


@dataclass(frozen=True, slots=True)
class Success:
    value: Any


@dataclass(frozen=True, slots=True)
class Failure:
    error: BaseException


Outcome = Success | Failure


@dataclass(slots=True)
class _Item(Generic[W]):
    work: W
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class GroupCommit(Generic[W]):
    """Queue units of work for one writer thread; ``execute`` runs a batch of them.

    ``execute`` receives the batch's units in submission order and returns one outcome per
    unit; it must not raise (a failed commit is a ``Failure`` for every unit).
    """

    def __init__(self, execute: Callable[[Sequence[W]], list[Outcome]], name: str) -> None:
        self._execute = execute
        self._name = name
        self._queue: queue.SimpleQueue[_Item[W] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    async def submit(self, work: W) -> Any:
        """Run ``work`` in the next batch; its value or error once the batch committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._start()
        self._queue.put(_Item(work, loop, future))
        return await future

    def idle(self) -> bool:
        """Nothing is queued (a batch may still be running: the store's lock tells)."""
        return self._queue.empty()

    def close(self) -> None:
        """Finish what is queued, then stop the writer (a later ``submit`` starts another)."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _start(self) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._drain(first)
            self._settle(batch, self._run(batch))
            if stop:
                return

    def _drain(self, first: _Item[W]) -> tuple[list[_Item[W]], bool]:
        """``first`` and whatever else is queued now (up to ``MAX_BATCH``); True when the
        close sentinel was among them."""
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self, batch: Sequence[_Item[W]]) -> list[Outcome]:
        try:
            outcomes = self._execute([item.work for item in batch])
        except BaseException as exc:  # never lose the writer: every caller gets the error
            return [Failure(exc)] * len(batch)
        if len(outcomes) != len(batch):
            error = RuntimeError(f"{self._name}: {len(outcomes)} outcomes for {len(batch)} units")
            return [Failure(error)] * len(batch)
        return outcomes

    @staticmethod
    def _settle(batch: Sequence[_Item[W]], outcomes: Sequence[Outcome]) -> None:
        """Hand the outcomes back, one wake-up per event loop (not one per unit)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
        for item, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(item.loop, []).append((item.future, outcome))
        for loop, pairs in by_loop.items():
            # a closed loop raises RuntimeError: nobody is waiting on it any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: Sequence[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for future, outcome in pairs:
        if future.done():  # the caller was cancelled; the work committed all the same
            continue
        if isinstance(outcome, Success):
            future.set_result(outcome.value)
        else:
            future.set_exception(outcome.error)
