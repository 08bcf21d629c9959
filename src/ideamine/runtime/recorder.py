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
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ideamine.errors import StoreError
from ideamine.stores.base import Store
from ideamine.stores.records import OutputWrite

__all__ = ["MAX_BATCH", "Recorder"]

log = logging.getLogger(__name__)

MAX_BATCH = 256  # writes per transaction: bounds how long one commit keeps the others waiting


@dataclass(slots=True)
class _Waiting:
    write: OutputWrite
    future: asyncio.Future[None]


Rider = Callable[[Sequence[OutputWrite]], Awaitable[bool]]
Writer = Callable[[Sequence[OutputWrite]], Awaitable[Sequence[StoreError | None]]]


class Recorder:
    """Batches ``record_output`` calls of one event loop against one store.

    ``rider``, when set (the runner driving a run), is offered each batch first: it may
    record the batch in the transaction of the fan-in it completes (``runtime.finishing``)
    and return True; on False the batch is recorded on its own, by ``writer`` when set (the
    runner claiming the run's next tasks in the same transaction).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self.rider: Rider | None = None
        # records a batch the rider declined (the runner driving a run: claiming the next
        # tasks in the same transaction); None: ``Store.record_outputs``
        self.writer: Writer | None = None

    async def record(self, write: OutputWrite) -> None:
        """Record ``write`` in the next batch; returns once it committed, or raises the
        store's error for it (``StaleLeaseError``, ``OutputExistsError``, ``StoreError``).
        A caller cancelled meanwhile stops waiting; its write is still carried out."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append(_Waiting(write, future))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            # a fresh context: the writer must not carry the first caller's span along
            self._writer = loop.create_task(
                self._write(), name="output recorder", context=contextvars.Context()
            )
        await future

    async def drain(self) -> None:
        """Wait until everything queued so far is written (for shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _outcomes(self, batch: Sequence[_Waiting]) -> Sequence[BaseException | None]:
        writes = [item.write for item in batch]
        if self.rider is not None and await self.rider(writes):
            return [None] * len(batch)  # recorded with the fan-in they completed
        write = self.writer or self._store.record_outputs
        return _checked(await write(writes), batch)

    async def _write(self) -> None:
        await _same_instant()
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                errors = await self._outcomes(batch)
            except asyncio.CancelledError:
                # the loop is shutting down (nothing else cancels this task): no answer will
                # come, so every waiter, this batch's and the queued ones, is cancelled too
                for item in [*batch, *self._queue]:
                    item.future.cancel()
                self._queue = []
                raise
            except Exception as exc:  # the whole batch failed: each caller gets the error
                errors = [exc] * len(batch)
            for item, error in zip(batch, errors, strict=True):
                _settle(item, error)


async def _same_instant() -> None:
    """Let the outputs of tasks whose waits end in this instant join the first batch (a
    fan-out's agents woken together: all of them then go with their fan-in, ``ride``). The
    first turn of the loop moves the timers now due to its ready queue, behind this task;
    the second runs the tasks they woke."""
    for _ in range(2):
        await asyncio.sleep(0)


def _checked(
    errors: Sequence[BaseException | None], batch: Sequence[_Waiting]
) -> Sequence[BaseException | None]:
    if len(errors) != len(batch):
        raise RuntimeError(f"the store gave {len(errors)} outcomes for {len(batch)} writes")
    return errors


def _settle(item: _Waiting, error: BaseException | None) -> None:
    if item.future.done():  # its caller was cancelled: nobody to tell but the log
        if error is not None:
            log.warning("the output of task %s was not recorded: %s", item.write.task_id, error)
        return
    if error is None:
        item.future.set_result(None)
    else:
        item.future.set_exception(error)
