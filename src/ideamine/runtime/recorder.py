"""Recording finished tasks' outputs in batches.

Tasks that finish while a write is in flight join the next one: one ``record_outputs``
transaction for all of them instead of one transaction each (on PostgreSQL a round trip per
statement each). The first result after a quiet spell is written at once, so a lone task
waits for nothing. No caller learns its result before the transaction that holds it
committed; a write the store rejected (a stale lease, an output already recorded) raises for
its own caller only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ideamine.stores.base import Store
from ideamine.stores.records import OutputWrite

__all__ = ["MAX_BATCH", "Recorder"]

MAX_BATCH = 256  # writes per transaction: bounds how long one commit keeps the others waiting


@dataclass(slots=True)
class _Waiting:
    write: OutputWrite
    future: asyncio.Future[None]


class Recorder:
    """Batches ``record_output`` calls of one event loop against one store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, write: OutputWrite) -> None:
        """Record ``write`` in the next batch; returns once it committed, or raises the
        store's error for it (``StaleLeaseError``, ``OutputExistsError``, ``StoreError``).
        A caller cancelled meanwhile stops waiting; its write is still carried out."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(write, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="output recorder")
        await future

    async def drain(self) -> None:
        """Wait until everything queued so far is written (for shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                errors = await self._store.record_outputs([item.write for item in batch])
            except asyncio.CancelledError:  # the loop is shutting down: nobody gets an answer
                for item in [*batch, *self._queue]:
                    item.future.cancel()
                self._queue = []
                raise
            except Exception as exc:  # the whole batch failed: each caller gets the error
                for item in batch:
                    _settle(item.future, exc)
                continue
            for item, error in zip(batch, errors, strict=True):
                _settle(item.future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
