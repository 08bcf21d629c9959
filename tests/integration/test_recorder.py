"""Outputs of tasks that finish together are written in one transaction (``runtime.recorder``),
against the real SQLite store: a lone result is written at once, results that arrive while
a write is in flight go together in the next, and a rejected write fails its caller alone."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from tests.support.configs import write_callable_pipeline
from tests.support.records import new_run
from tests.support.runs import hold_fan_ins_with_outputs, record_outputs_alone

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.errors import StaleLeaseError, StoreError
from ideamine.runtime.recorder import Recorder
from ideamine.runtime.runner import Runner
from ideamine.stores.ledger import verify_chain
from ideamine.stores.queries import Db
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    EventRecord,
    NewTask,
    OutputWrite,
)
from ideamine.stores.sqlite import SqliteStore

PHASE = "ideation"
T = TypeVar("T")


class CountingStore(SqliteStore):
    """The real SQLite store, keeping the size of each ``record_outputs`` batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    async def record_outputs(self, writes: Sequence[OutputWrite]) -> list[StoreError | None]:
        self.batches.append(len(writes))
        return await super().record_outputs(writes)


class BrokenStore(CountingStore):
    """Its second batch fails as a whole (as a lost database would fail it)."""

    async def record_outputs(self, writes: Sequence[OutputWrite]) -> list[StoreError | None]:
        if self.batches:
            self.batches.append(len(writes))
            raise StoreError("the database went away", hint="retry")
        return await super().record_outputs(writes)


async def held_tasks(store: SqliteStore, count: int) -> list[ClaimedTask]:
    """``count`` tasks of a running run, claimed."""
    await store.migrate()
    await store.create_run(new_run())
    await store.set_run_status("run-1", RunStatus.RUNNING, EventDraft(type="run.started"))
    await store.start_phase("run-1", PHASE, 1, EventDraft(type="phase.started", phase=PHASE))
    tasks = [
        NewTask(id=f"t{i:02d}", key=f"{i:02d}", agent="writer", iteration=0, input={})
        for i in range(count)
    ]
    await store.create_tasks("run-1", PHASE, 1, tasks, EventDraft(type="phase.fanned_out"))
    return await store.claim_tasks("run-1", owner="me", now=0.0, limit=count, lease_seconds=60)


def output_of(item: ClaimedTask, token: str | None = None) -> OutputWrite:
    return OutputWrite(
        task_id=item.task.id, token=token or item.lease_token, output={"key": item.task.key}
    )


def test_results_that_finish_together_share_one_transaction(tmp_path: Path) -> None:
    async def go() -> None:
        store = CountingStore(tmp_path / "ideamine.db")
        try:
            held = await held_tasks(store, 20)
            recorder = Recorder(store)
            first = asyncio.create_task(recorder.record(output_of(held[0])))
            for _ in range(4):  # queued, the writer started, waited two turns (results of
                await asyncio.sleep(0)  # the same instant join it) and wrote it alone
            await asyncio.gather(first, *(recorder.record(output_of(item)) for item in held[1:]))

            assert store.batches == [1, 19]  # the first alone, the rest while it was written
            outputs = await store.outputs("run-1", PHASE, 1)
            assert outputs == {item.task.key: {"key": item.task.key} for item in held}
            assert verify_chain(await store.events("run-1")).ok
            with pytest.raises(StaleLeaseError):  # the lease ended with the first write
                await recorder.record(output_of(held[0]))
            assert store.batches == [1, 19, 1]  # a lone write goes at once
        finally:
            await store.close()

    asyncio.run(go())


def test_results_of_tasks_woken_in_one_instant_go_in_one_transaction(tmp_path: Path) -> None:
    """Tasks whose waits end together (a fan-out's agents) record in one batch, though the
    first starts the writer before the others have run: the writer lets the loop run the
    timers then due and the tasks they woke first."""

    async def go() -> list[int]:
        store = CountingStore(tmp_path / "ideamine.db")
        try:
            held = await held_tasks(store, 3)
            recorder = Recorder(store)
            loop = asyncio.get_running_loop()
            due = loop.time() + 0.01

            async def woken(item: ClaimedTask, at: float) -> None:
                await asyncio.sleep(at - loop.time())
                busy = time.perf_counter() + 3e-4  # an agent's own work once woken
                while time.perf_counter() < busy:
                    pass
                await recorder.record(output_of(item))

            # the others' timers fall due while the first task works: after the loop's check
            await asyncio.gather(*(woken(item, due + i * 1e-4) for i, item in enumerate(held)))
            return store.batches
        finally:
            await store.close()

    assert asyncio.run(go()) == [3]


def test_a_rejected_write_fails_its_own_caller_only(tmp_path: Path) -> None:
    async def go() -> list[BaseException | None]:
        store = CountingStore(tmp_path / "ideamine.db")
        try:
            first, *held = await held_tasks(store, 4)
            recorder = Recorder(store)
            writes = [output_of(first), output_of(held[0], "stale"), *map(output_of, held[1:])]
            results = await asyncio.gather(
                *(recorder.record(write) for write in writes), return_exceptions=True
            )
            assert sorted(await store.outputs("run-1", PHASE, 1)) == ["00", "02", "03"]
            return results
        finally:
            await store.close()

    results = asyncio.run(go())
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "StaleLeaseError",
        "NoneType",
        "NoneType",
    ]


def test_a_failed_batch_fails_every_caller_in_it(tmp_path: Path) -> None:
    async def go() -> tuple[list[BaseException | None], list[int], dict[str, object]]:
        store = BrokenStore(tmp_path / "ideamine.db")
        try:
            held = await held_tasks(store, 3)
            recorder = Recorder(store)
            await recorder.record(output_of(held[0]))
            results = await asyncio.gather(
                *(recorder.record(output_of(item)) for item in held[1:]), return_exceptions=True
            )
            return results, store.batches, await store.outputs("run-1", PHASE, 1)
        finally:
            await store.close()

    results, batches, outputs = asyncio.run(go())
    assert batches == [1, 2]
    assert [str(r) for r in results] == ["the database went away"] * 2
    assert list(outputs) == ["00"]


def test_a_cancelled_caller_s_output_is_still_written(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, object], TaskStatus]:
        store = CountingStore(tmp_path / "ideamine.db")
        try:
            [item] = await held_tasks(store, 1)
            recorder = Recorder(store)
            waiting = asyncio.create_task(recorder.record(output_of(item)))
            await asyncio.sleep(0)  # queued, and its write started
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await recorder.drain()
            _, _, tasks = await store.run_rows("run-1")
            return await store.outputs("run-1", PHASE, 1), tasks[0].status
        finally:
            await store.close()

    outputs, status = asyncio.run(go())
    assert outputs == {"00": {"key": "00"}}
    assert status is TaskStatus.SUCCEEDED


class HoldingStore(SqliteStore):
    """The real SQLite store whose output writes wait for ``gate`` (a slow disk, as it
    were); ``arrived`` is set by the first."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.arrived = asyncio.Event()

    async def record_outputs(self, writes: Sequence[OutputWrite]) -> list[StoreError | None]:
        self.arrived.set()
        await self.gate.wait()
        return await super().record_outputs(writes)

    async def record_outputs_claiming(
        self, writes: Sequence[OutputWrite], run_id: str, claim: ClaimRequest
    ) -> tuple[list[StoreError | None], list[ClaimedTask]]:
        self.arrived.set()
        await self.gate.wait()
        return await super().record_outputs_claiming(writes, run_id, claim)


@pytest.mark.parametrize("way", ["on their own", "with their fan-in"])
def test_a_runner_stopped_while_outputs_wait_writes_them_before_handing_tasks_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """Ctrl-C while the phase's outputs wait to be written, in a transaction of their own or
    in their fan-in's (``runtime.finishing``): they are written, then nothing is handed back."""
    config = write_callable_pipeline(tmp_path / "config", {"intake": []}, agents_per_phase=3)
    pipeline = load_pipeline(config)
    if way == "on their own":
        record_outputs_alone(monkeypatch)

    async def go() -> tuple[dict[str, object], set[TaskStatus]]:
        store = HoldingStore(tmp_path / "ideamine.db")
        if way == "with their fan-in":
            hold_fan_ins_with_outputs(monkeypatch, store.arrived, store.gate)
        await store.migrate()
        try:
            run = await service.create_run(
                store, pipeline, "a farm shop", constraints={}, source="cli", config_dir=config
            )
            driving = asyncio.create_task(Runner(store, pipeline, concurrency=8).drive(run.id))
            await store.arrived.wait()  # the agents finished; their outputs wait to be written
            asyncio.get_running_loop().call_later(0.2, store.gate.set)
            driving.cancel()  # Ctrl-C: the runner cancels its tasks and hands them back
            with pytest.raises(asyncio.CancelledError):
                await driving
            _, _, tasks = await store.run_rows(run.id)
            return await store.outputs(run.id, "intake", 1), {task.status for task in tasks}
        finally:
            await store.close()

    outputs, statuses = asyncio.run(go())
    assert len(outputs) == (3 if way == "on their own" else 4)  # and the gate's, judged
    assert statuses == {TaskStatus.SUCCEEDED}  # so nothing runs again on resume


class _Transactions(SqliteStore):
    """The real SQLite store, counting write transactions."""

    writes = 0

    async def _transaction(self, work: Callable[[Db], T]) -> T:
        self.writes += 1
        return await super()._transaction(work)


def test_a_driven_runs_outputs_claim_its_next_tasks_as_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Driving a run, a batch of outputs that ends no phase is written with the claim of the
    run's next tasks for the slots it frees (``Runner._record``): those tasks start stamped
    with the outputs' commit, and a wide phase needs about half the transactions it took
    with a claim of its own after each batch. Every task runs once."""
    config = write_callable_pipeline(tmp_path / "config", {"intake": []}, agents_per_phase=24)
    pipeline = load_pipeline(config)

    async def go() -> tuple[RunStatus, list[EventRecord], int]:
        store = _Transactions(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            run = await service.create_run(
                store, pipeline, "a farm shop", constraints={}, source="cli", config_dir=config
            )
            before = store.writes
            final = await Runner(store, pipeline, concurrency=4).drive(run.id)
            return final.status, await store.events(run.id, limit=100_000), store.writes - before
        finally:
            await store.close()

    status, events, writes = asyncio.run(go())
    assert status is RunStatus.COMPLETED
    succeeded = Counter(e.task_id for e in events if e.type == "task.succeeded")
    assert len(succeeded) == 24 + 1 and set(succeeded.values()) == {1}  # and the gate's
    finished_at = {e.at for e in events if e.type == "task.succeeded"}
    started_with_outputs = [e for e in events if e.type == "task.started" and e.at in finished_at]
    assert len(started_with_outputs) >= 12, len(started_with_outputs)
    # 24 tasks, 4 at a time in 6 waves: the run's start, its advance lease, the phase's
    # start, a write per wave (10 measured; a claim of its own made a second per wave)
    assert writes <= 12, writes
