"""``HandAhead.record``: tasks handed out ahead of a transaction are revoked before any of
them makes a store call when the transaction raises, or claims other tasks than those."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.support.records import new_run

from ideamine.runtime.context import BlobCache
from ideamine.runtime.gatestep import HandAhead
from ideamine.stores.records import ClaimedTask, ClaimRequest, EventDraft, NewTask, PhaseStart
from ideamine.stores.sqlite import SqliteStore
from ideamine.stores.sqlstore import SqlStore


class _Starting:
    """A lessee whose tasks each read the run (their first store call) and note it."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.jobs: dict[str, asyncio.Task[None]] = {}
        self.reads: list[str] = []
        self.revoked: list[str] = []

    def request(self) -> ClaimRequest | None:
        return None

    def take(self, claimed: Sequence[ClaimedTask]) -> None:
        for item in claimed:
            self.jobs[item.task.key] = asyncio.create_task(self._run(item.task.key))

    def revoke(self, claimed: Sequence[ClaimedTask]) -> None:
        for item in claimed:
            self.revoked.append(item.task.key)
            self.jobs[item.task.key].cancel()

    async def _run(self, key: str) -> None:
        await self._store.get_run("run-1")
        self.reads.append(key)


def _leased(store: SqlStore) -> Sequence[ClaimedTask]:
    start = PhaseStart(
        phase="prd",
        attempt=1,
        started=EventDraft(type="phase.started", phase="prd"),
        tasks=[NewTask(id=f"run-1.prd.1.{k}", key=k, agent="a", iteration=1) for k in "ab"],
    )
    request = ClaimRequest(owner="me", now=0.0, limit=8, concurrency=8, held=0)
    leased = store.lease_ahead("run-1", [start], request)
    assert leased is not None
    return leased.claimed


@pytest.mark.parametrize("outcome", ["raises", "claims one other"])
def test_tasks_handed_out_ahead_are_revoked_before_their_first_store_call(
    tmp_path: Path, outcome: str
) -> None:
    async def body() -> tuple[list[str], list[str], list[str], bool]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            await store.create_run(new_run("run-1"))
            lessee = _Starting(store)
            handed = _leased(store)
            kept = handed[1]

            async def write() -> list[ClaimedTask]:
                await asyncio.sleep(0.02)  # the tasks have started and wait meanwhile
                assert lessee.reads == []
                if outcome == "raises":
                    raise RuntimeError("the commit failed")
                return [kept]

            blobs = BlobCache(store)
            besides: list[str] = []
            try:
                handing = HandAhead(lessee, blobs)
                claimed = await handing.record(write, handed, "run-1", lambda _: [])
                besides = [item.task.key for item in claimed]
            except RuntimeError:
                pass
            await asyncio.gather(*lessee.jobs.values(), return_exceptions=True)
            return lessee.revoked, lessee.reads, besides, lessee.jobs["a"].cancelled()
        finally:
            await store.close()

    revoked, reads, besides, cancelled = asyncio.run(body())
    assert cancelled
    assert besides == []
    if outcome == "raises":
        assert (revoked, reads) == (["a", "b"], [])
    else:
        assert (revoked, reads) == (["a"], ["b"])
