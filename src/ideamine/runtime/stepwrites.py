"""The writes of one advance step, where the fan-ins of a join wait for each other.

Two phases ending together (a join's sides, W1's security and story-loop before qa) are
fanned in by one step, each in a transaction of its own. The first claims nothing (the step's
last fan-in starts what the join opens, should both pass), so nothing waits on its commit but
the second's judging, which reads nothing it writes. ``judge_fan_in`` therefore holds such a
write here (``hold``) instead of making it, and the step's next write ``flush``es it first:
the second fan-in, which hands the join's tasks out ahead of its commit (``stores.ahead``),
flushes after handing them out, so they start while both commit. Order in the store is the
order of the step's actions, as before; a held write never reaches the store once the step
raised (``discard``: the next step fans the attempt in again, as after a crash).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ideamine.runtime.finishing import Finishing

__all__ = ["StepWrites"]

Write = Callable[[str | None], Awaitable[object]]  # given the time to stamp it with, if set
After = Callable[[], Awaitable[object]]
Undo = Callable[[], None]


class StepWrites:
    """What one step holds back until its next write, in order; what undoes the step's own
    bookkeeping that assumed them made (a cache entry), should they not be; what reads them
    back once the step is done (spans); and which ``Finishing`` its transactions record (the
    first fan-in's only)."""

    def __init__(self) -> None:
        self._held: list[Write] = []
        self._undos: list[Undo] = []
        self._afters: list[After] = []
        self._flushing = False
        self._carrier: Finishing | None = None
        self.carried = False  # a write that recorded the carried outputs committed

    @property
    def holding(self) -> bool:
        """Whether writes wait for the next ``flush``."""
        return bool(self._held)

    def hold(self, write: Write) -> None:
        """Make ``write`` at the step's next ``flush``."""
        self._held.append(write)

    def after(self, then: After) -> None:
        """Await ``then`` when the step is done (``close``), should the writes held now be
        made (what reads them back: the spans of the phases they end)."""
        self._afters.append(then)

    def on_unmade(self, undo: Undo) -> None:
        """Call ``undo`` should the writes held now not all be made."""
        if self._held:
            self._undos.append(undo)

    async def flush(self, at: str | None = None) -> None:
        """Make the held writes, in order, stamped ``at`` when given (the time of the write
        they go before: a step's transactions keep its order in the ledger's times too).
        Should one raise, those after it are not made, the undos run, and the error is
        raised. A write being made does not flush again (it is this flush's)."""
        if self._flushing:
            return
        held, self._held = self._held, []
        self._flushing = True
        try:
            for write in held:
                await write(at)
        except BaseException:
            self.discard()
            raise
        finally:
            self._flushing = False
        self._undos.clear()

    async def close(self) -> None:
        """The step is done: make what is held, then what waited for it."""
        await self.flush()
        afters, self._afters = self._afters, []
        for then in afters:
            await then()

    def discard(self) -> None:
        """Drop the held writes unmade (the step raised), with what waited for them, and
        run the undos."""
        self._held.clear()
        self._afters.clear()
        undos, self._undos = self._undos, []
        for undo in undos:
            undo()

    def carries(self, finishing: Finishing) -> bool:
        """Whether the fan-in asking records ``finishing``'s outputs in its transaction: the
        step's first to ask does, and the others with the same read them as that one will
        have written them (a step carries one ride's outputs)."""
        if self._carrier is None:
            self._carrier = finishing
            return True
        return self._carrier is not finishing
