"""The writes a step holds back for its next: made in order, undone together, and the
outputs a ride carries recorded by the step's first fan-in only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from tests.support.records import running_task

from ideamine.runtime.finishing import Finishing
from ideamine.runtime.stepwrites import StepWrites
from ideamine.stores.records import OutputWrite


def _writer(
    made: list[str], name: str, fails: bool = False
) -> Callable[[str | None], Awaitable[None]]:
    async def write(at: str | None) -> None:
        if fails:
            raise RuntimeError(f"{name} failed")
        made.append(name if at is None else f"{name}@{at}")

    return write


def _after(made: list[str], name: str) -> Callable[[], Awaitable[None]]:
    async def then() -> None:
        made.append(name)

    return then


def test_held_writes_are_made_in_order_at_the_flush_then_at_close_what_waited() -> None:
    made: list[str] = []
    step = StepWrites()
    step.hold(_writer(made, "first"))
    step.hold(_writer(made, "second"))
    step.after(_after(made, "span"))
    step.on_unmade(lambda: made.append("undone"))
    assert step.holding and made == []

    asyncio.run(step.flush("t1"))  # stamped as the write they go before

    assert made == ["first@t1", "second@t1"]
    assert not step.holding
    asyncio.run(step.close())
    assert made == ["first@t1", "second@t1", "span"]
    step.discard()  # nothing held: the undo went with the flush
    assert made == ["first@t1", "second@t1", "span"]


def test_a_held_write_that_flushes_again_is_still_undone_when_it_fails() -> None:
    """A held fan-in's own write flushes the step first (as every fan-in's does): inside
    the flush making it, that is a no-op, and its failure still runs the undos."""
    made: list[str] = []
    step = StepWrites()

    async def reentering(at: str | None) -> None:
        await step.flush()
        raise RuntimeError("the held write failed")

    step.hold(reentering)
    step.after(_after(made, "span"))
    step.on_unmade(lambda: made.append("undone"))

    with pytest.raises(RuntimeError, match="the held write failed"):
        asyncio.run(step.flush())
    asyncio.run(step.close())

    assert made == ["undone"]


def test_a_write_that_fails_stops_the_rest_and_runs_the_undos() -> None:
    made: list[str] = []
    step = StepWrites()
    step.hold(_writer(made, "first"))
    step.hold(_writer(made, "second", fails=True))
    step.hold(_writer(made, "third"))
    step.after(_after(made, "span"))
    step.on_unmade(lambda: made.append("undone"))

    with pytest.raises(RuntimeError, match="second failed"):
        asyncio.run(step.flush())
    asyncio.run(step.close())

    assert made == ["first", "undone"]
    assert not step.holding


def test_discarding_makes_nothing_and_runs_the_undos() -> None:
    made: list[str] = []
    step = StepWrites()
    step.hold(_writer(made, "first"))
    step.after(_after(made, "span"))
    step.on_unmade(lambda: made.append("undone"))

    step.discard()
    asyncio.run(step.close())

    assert made == ["undone"]


def test_an_undo_with_nothing_held_is_not_kept() -> None:
    made: list[str] = []
    step = StepWrites()
    step.on_unmade(lambda: made.append("undone"))  # the write it guards was made directly

    step.hold(_writer(made, "later", fails=True))
    with pytest.raises(RuntimeError):
        asyncio.run(step.flush())

    assert made == []


def test_only_the_first_fan_in_carries_the_finishing_outputs() -> None:
    task = running_task("00.A", phase="qa")
    finishing = Finishing.of([OutputWrite(task_id=task.id, token="t", output={})], [task])
    assert finishing is not None
    step = StepWrites()

    assert [step.carries(finishing) for _ in range(3)] == [True, False, False]
