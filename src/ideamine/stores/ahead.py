"""Tasks handed out ahead of the commit that claims them.

A step that fans a phase in, judges it and starts the phases its pass opens
(``runtime.gatestep``) knows, before its transaction runs, which new tasks its claim takes
and with which leases (``SqlStore.lease_ahead``). It may hand those tasks to the runner
first, so their agents run while the transaction commits (W1's levels: the commit no longer
stands between one level's last agent and the next level's first).

Nothing is acknowledged early. Every store call a task handed out ahead makes (a read, a
write, a budget check before a model call, its output, its heartbeat) waits until its step's
transaction ended and the step revoked what the transaction did not claim (``Ahead.settle``):
a read never misses the step's writes, a write never meets a task row not yet committed. A
crash before the commit loses the step and the agents' unrecorded work, as a crash while
they ran would; the next step fans the phase in again and starts them again.

The wait follows the task's context (``contextvars``): tasks created inside
``Ahead.handing`` carry it, with everything they start; the step's own calls do not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["Ahead", "behind"]

_SETTLED: ContextVar[asyncio.Future[None] | None] = ContextVar("ideamine_ahead", default=None)


class Ahead:
    """One step's tasks handed out ahead of its commit, and the wait their store calls make."""

    def __init__(self) -> None:
        self._settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @contextlib.contextmanager
    def handing(self) -> Iterator[None]:
        """Tasks created inside make their store calls only once ``settle`` was called."""
        token = _SETTLED.set(self._settled)
        try:
            yield
        finally:
            _SETTLED.reset(token)

    def settle(self) -> None:
        """The transaction ended and the tasks it did not claim were revoked (cancelled):
        the others' store calls may go. Idempotent."""
        if not self._settled.done():
            self._settled.set_result(None)

    @property
    def settled(self) -> bool:
        return self._settled.done()


def behind() -> asyncio.Future[None] | None:
    """What a store call must wait for first: in a task handed out ahead of a commit not
    yet settled, that settling; else None (the common case, checked without an await)."""
    settled = _SETTLED.get()
    if settled is None or settled.done():
        return None
    return asyncio.shield(settled)  # a cancelled waiter must not cancel the others' wait
