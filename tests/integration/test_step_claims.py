"""Which tasks an advance step claims for the process driving the run (``Advancer._apply``):
never tasks of a run that the same step takes out of ``running``, and no phase started by a
passing verdict when a later verdict of the step stops the run. Real SQLite stores; the
runner's lessee is replaced by one that records what it was handed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml
from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.plan import GATE_AGENT, GATE_KEY
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.runtime.advance import Advancer
from ideamine.runtime.context import BlobCache
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    EventRecord,
    NewTask,
    OutputWrite,
    PhaseRecord,
    PhaseStart,
    RunRecord,
    TaskRecord,
)
from ideamine.stores.sqlite import SqliteStore

IDEA = "a shop for the farmers of one valley"


class _Recording:
    """A lessee with room for everything, recording the tasks it is handed."""

    def __init__(self) -> None:
        self.handed: list[str] = []

    def request(self) -> ClaimRequest:
        return ClaimRequest(owner="driver", now=time.time(), limit=8, concurrency=8, held=0)

    def take(self, claimed: Sequence[ClaimedTask]) -> None:
        self.handed += [item.task.id for item in claimed]


def _judged(passed: bool) -> Mapping[str, object]:
    """A gate judge's output as ``runtime.judge`` writes it (Q/A/V off)."""
    score = 0.9 if passed else 0.1
    return {
        "result": {
            "pass": passed,
            "score": score,
            "threshold": 0.5,
            "attempt": 1,
            "rubrics": {"grounding": {"score": score}},
            "reasons": [],
            "issues": [],
            "evidence_gaps": [],
        },
        "evidence": None,
        "qav": None,
    }


async def _judged_run(store: SqliteStore, config: Path, verdicts: Mapping[str, bool]) -> str:
    """A running run whose phases ``verdicts`` wait for their verdicts, the gate judges'
    outputs recorded: True passes the phase, False fails its gate (max attempts 1 in the
    test pipeline, so the run needs attention)."""
    pipeline = load_pipeline(config)
    run = await service.create_run(
        store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
    )
    await store.set_run_status(run.id, RunStatus.RUNNING, EventDraft(type="run.started"))
    phases = list(verdicts)
    await store.start_phases(
        run.id,
        [
            PhaseStart(phase=p, attempt=1, started=EventDraft(type="phase.started", phase=p))
            for p in phases
        ],
    )
    for phase in phases:
        gate = NewTask(
            id=f"{run.id}.{phase}.1.{GATE_KEY}", key=GATE_KEY, agent=GATE_AGENT, iteration=1
        )
        await store.record_artifacts(
            run.id, phase, 1, [], EventDraft(type="phase.ready", phase=phase), [gate]
        )
    judges = await store.claim_tasks(run.id, owner="judge", now=time.time(), limit=8)
    await store.record_outputs(
        [
            OutputWrite(
                task_id=item.task.id,
                token=item.lease_token,
                output=_judged(verdicts[item.task.phase]),
            )
            for item in judges
        ]
    )
    return run.id


def _advance_judged(
    tmp_path: Path, first: str, verdicts: Mapping[str, bool]
) -> tuple[RunRecord, list[PhaseRecord], list[TaskRecord], list[EventRecord], list[str]]:
    """Phases ``first`` and the other of opener/stopper judged as ``verdicts`` says, ``child``
    depending on ``opener``; one ``advance`` with a recording lessee. The run's rows, its
    ledger and what the lessee was handed."""
    second = "stopper" if first == "opener" else "opener"
    dag = {first: [], second: [], "child": ["opener"]}
    config = write_callable_pipeline(tmp_path / "cfg", dag, agents_per_phase=1)

    async def go() -> tuple[
        RunRecord, list[PhaseRecord], list[TaskRecord], list[EventRecord], list[str]
    ]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            run_id = await _judged_run(store, config, verdicts)
            lessee = _Recording()
            await Advancer(store, load_pipeline(config), BlobCache(store)).advance(run_id, lessee)
            run, phases, tasks = await store.run_rows(run_id)
            return run, phases, tasks, await store.events(run_id), lessee.handed
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.mark.parametrize("first", ["opener", "stopper"])
def test_a_verdict_that_stops_the_run_keeps_another_verdicts_phases_from_starting(
    tmp_path: Path, first: str
) -> None:
    """``opener`` passes, which would let ``child`` start; ``stopper`` fails its gate and the
    run needs attention, in the same step, in either order: ``child`` neither starts nor is
    claimed, and nothing follows ``run.needs_attention`` in the ledger."""
    run, phases, tasks, events, handed = _advance_judged(
        tmp_path, first, {"opener": True, "stopper": False}
    )

    assert run.status is RunStatus.NEEDS_ATTENTION
    assert "child" not in {p.phase for p in phases}
    assert handed == [] and not [t for t in tasks if t.phase == "child"]
    assert events[-1].type == "run.needs_attention", [e.type for e in events]


def test_a_passing_verdict_alone_starts_and_claims_the_phase_it_opens(tmp_path: Path) -> None:
    """The same run with both verdicts passing: ``child`` starts in ``opener``'s verdict
    transaction, its task claimed for the driver."""
    run, phases, tasks, _, handed = _advance_judged(
        tmp_path, "opener", {"opener": True, "stopper": True}
    )

    assert run.status is RunStatus.RUNNING
    assert {(p.phase, p.status) for p in phases} >= {("child", PhaseStatus.RUNNING)}
    [child] = [t for t in tasks if t.phase == "child"]
    assert child.status is TaskStatus.RUNNING and handed == [child.id]


def test_a_step_whose_fan_in_fails_the_run_claims_none_of_its_tasks(tmp_path: Path) -> None:
    """One step creates ``p1``'s second (sequential) task, then fans ``p2`` in, whose
    artifact fails its schema and fails the run: the new task is created but not claimed."""
    config = write_callable_pipeline(
        tmp_path / "cfg",
        {"p1": [], "p2": []},
        agents_per_phase=2,
        parallelism={"p1": "sequential"},
    )
    (config / "schemas" / "P2Result.yaml").write_text(
        yaml.safe_dump({"type": "object", "required": ["never-produced"]})
    )

    async def go() -> None:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            pipeline = load_pipeline(config)
            run = await service.create_run(
                store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
            )
            await store.set_run_status(run.id, RunStatus.RUNNING, EventDraft(type="run.started"))
            advancer = Advancer(store, pipeline, BlobCache(store))
            await advancer.advance(run.id)  # p1's first agent, p2's two
            first = await store.claim_tasks(run.id, owner="worker", now=time.time(), limit=8)
            await store.record_outputs(
                [
                    OutputWrite(
                        task_id=item.task.id,
                        token=item.lease_token,
                        output={"value": {item.task.key: 1}},
                    )
                    for item in first
                ]
            )
            lessee = _Recording()
            await advancer.advance(run.id, lessee)

            after, _, tasks = await store.run_rows(run.id)
            assert after.status is RunStatus.FAILED
            assert lessee.handed == []
            assert [t.key for t in tasks if t.status is TaskStatus.RUNNING] == []
            assert len([t for t in tasks if t.phase == "p1"]) == 2  # the second was created
        finally:
            await store.close()

    asyncio.run(go())


def test_two_passing_verdicts_of_one_step_start_the_phase_needing_both(tmp_path: Path) -> None:
    """``join`` needs ``left`` and ``right``, judged in the same step: the second verdict
    plans with the first one's pass, so ``join`` starts, and its task is claimed, in the
    second verdict's transaction (as security and story-loop open qa)."""
    dag = {"left": [], "right": [], "join": ["left", "right"]}
    config = write_callable_pipeline(tmp_path / "cfg", dag, agents_per_phase=1)

    async def go() -> tuple[list[TaskRecord], list[EventRecord], list[str]]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            run_id = await _judged_run(store, config, {"left": True, "right": True})
            lessee = _Recording()
            await Advancer(store, load_pipeline(config), BlobCache(store)).advance(run_id, lessee)
            _, _, tasks = await store.run_rows(run_id)
            return tasks, await store.events(run_id), lessee.handed
        finally:
            await store.close()

    tasks, events, handed = asyncio.run(go())

    [join] = [t for t in tasks if t.phase == "join"]
    assert handed == [join.id] and join.status is TaskStatus.RUNNING
    right = next(e for e in events if e.type == "phase.completed" and e.phase == "right")
    started = next(e for e in events if e.type == "phase.started" and e.phase == "join")
    assert started.at == right.at and started.id == right.id + 1  # one transaction
