"""The wait of tasks handed out ahead of the commit that claims them (``stores.ahead``), on
the real SQLite store: their store calls go only once their step settled; nobody else's
wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.records import new_run

from ideamine.stores.ahead import Ahead, behind
from ideamine.stores.records import EventDraft
from ideamine.stores.sqlite import SqliteStore


def test_a_task_handed_out_ahead_reads_and_writes_only_once_its_step_settled(
    tmp_path: Path,
) -> None:
    async def body() -> list[str]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        order: list[str] = []
        try:
            await store.create_run(new_run("run-1"))

            async def handed() -> None:
                run = await store.get_run("run-1")  # a read
                order.append(f"read {run.status}")
                await store.append_event("run-1", EventDraft(type="run.note"))  # a write
                order.append("wrote")

            ahead = Ahead()
            with ahead.handing():
                task = asyncio.create_task(handed())
            assert behind() is None  # the step's own calls do not wait
            await store.get_run("run-1")
            await asyncio.sleep(0.05)
            assert order == [] and not task.done()
            order.append("settled")
            ahead.settle()
            await task
            assert ahead.settled
            ahead.settle()  # idempotent
            return order
        finally:
            await store.close()

    assert asyncio.run(body()) == ["settled", "read created", "wrote"]


def test_a_handed_task_cancelled_while_it_waits_leaves_the_others_waiting(
    tmp_path: Path,
) -> None:
    """A revoked task is cancelled at its wait; the wait itself goes on for the others."""

    async def body() -> tuple[bool, bool]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            await store.create_run(new_run("run-1"))
            ahead = Ahead()
            with ahead.handing():
                revoked = asyncio.create_task(store.get_run("run-1"))
                kept = asyncio.create_task(store.get_run("run-1"))
            await asyncio.sleep(0.01)
            revoked.cancel()
            await asyncio.sleep(0.01)
            waiting = not kept.done()
            ahead.settle()
            run = await kept
            return waiting and revoked.cancelled(), run.id == "run-1"
        finally:
            await store.close()

    assert asyncio.run(body()) == (True, True)
