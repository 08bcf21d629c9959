"""A gate that calls no model is judged in its fan-in's step (``runtime.gatestep``): the
attempt's artifacts, the gate task settled with the judge's output, the verdict and the
phases it starts are one transaction; the verdict is the one a judge task reaches."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support.configs import write_callable_pipeline, write_coverage_loop
from tests.support.runs import (
    comparable,
    drive_new_run,
    judge_gates_by_task,
    record_outputs_alone,
)

from ideamine import service
from ideamine.canonical import canonical_json
from ideamine.engine.plan import GATE_AGENT, GATE_KEY
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.knowledge.guards import registry
from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.runtime import advance
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.records import EventRecord
from ideamine.stores.sqlstore import SqlStore


def _run(tmp_path: Path, config: Path) -> dict[str, Any]:
    """Drive one run of ``config``; what the tests look at."""

    async def go() -> dict[str, Any]:
        store = await service.open_store(str(tmp_path / "x.db"))
        try:
            run_id = (await drive_new_run(store, config)).id
            _, _, tasks = await store.run_rows(run_id)
            return {
                "status": (await store.get_run(run_id)).status,
                "events": await service.all_events(store, run_id),
                "tasks": tasks,
                "artifacts": await store.artifacts(run_id),
                "verdicts": await DossierStore(store).gate_evaluations(run_id),
                "outputs": {
                    (t.phase, t.attempt): await store.outputs(run_id, t.phase, t.attempt)
                    for t in tasks
                    if t.key == GATE_KEY
                },
            }
        finally:
            await store.close()

    return asyncio.run(go())


def test_the_fan_in_the_verdict_and_the_next_phase_start_commit_together(
    tmp_path: Path,
) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", {"intake": [], "ideation": ["intake"]}, agents_per_phase=2
    )
    seen = _run(tmp_path, config)
    assert seen["status"] is RunStatus.COMPLETED
    events: list[EventRecord] = seen["events"]
    judges = [t for t in seen["tasks"] if t.key == GATE_KEY]
    assert [(t.phase, t.agent, t.status, t.tries) for t in judges] == [
        ("ideation", GATE_AGENT, TaskStatus.SUCCEEDED, 1),
        ("intake", GATE_AGENT, TaskStatus.SUCCEEDED, 1),
    ]
    judge_ids = {t.id for t in judges}
    assert not [e for e in events if e.type == "task.started" and e.task_id in judge_ids]

    # intake's fan-in, its judge's output, its verdict and ideation's start: one commit
    ready = next(i for i, e in enumerate(events) if e.type == "phase.ready")
    step = events[ready : ready + 6]
    assert [(e.type, e.phase) for e in step] == [
        ("phase.ready", "intake"),
        ("task.succeeded", "intake"),
        ("phase.gate.passed", "intake"),
        ("phase.completed", "intake"),
        ("phase.started", "ideation"),
        ("phase.progress", "ideation"),
    ]
    assert len({e.at for e in step}) == 1
    assert step[1].task_id in judge_ids and step[1].payload["key"] == GATE_KEY

    # the judge's evidence names the attempt's artifacts; the verdict row is its result
    output = seen["outputs"][("intake", 1)][GATE_KEY]
    made = sorted(a.id for a in seen["artifacts"] if a.phase == "intake")
    assert output["evidence"]["artifact_ids"] == made
    assert output["evidence"]["metrics"]["agents_executed"] == 2
    verdict = next(v for v in seen["verdicts"] if v.phase == "intake")
    assert verdict.passed and verdict.result["evidence"] == output["evidence"]


@pytest.mark.parametrize("outputs", ["riding with the fan-in", "recorded on their own"])
def test_a_gate_judged_in_its_step_counts_the_tasks_the_step_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: str
) -> None:
    """The gate's metrics come from the attempt as the step read it (its tasks with the
    outputs the step records settled, its start time): no read of the attempt's tasks.
    Its duration runs from the phase's start to the judging."""
    monkeypatch.setenv("IDEAMINE_TEST_SLEEP", "0.05")  # agent i sleeps 0.05 × (i + 1) s
    ridden: list[object] = []
    if outputs == "recorded on their own":
        record_outputs_alone(monkeypatch)
    else:
        ride = advance.Advancer.ride

        async def counted_ride(self: advance.Advancer, *args: Any, **kwargs: Any) -> Any:
            result = await ride(self, *args, **kwargs)
            if result is not None:
                ridden.append(result)
            return result

        monkeypatch.setattr(advance.Advancer, "ride", counted_ride)
    reads: list[tuple[str, int]] = []
    read_tasks = SqlStore.phase_tasks

    async def counted(self: SqlStore, run_id: str, phase: str, attempt: int) -> object:
        reads.append((phase, attempt))
        return await read_tasks(self, run_id, phase, attempt)

    monkeypatch.setattr(SqlStore, "phase_tasks", counted)
    config = write_callable_pipeline(
        tmp_path / "cfg", {"intake": [], "ideation": ["intake"]}, agents_per_phase=3
    )

    seen = _run(tmp_path, config)

    assert seen["status"] is RunStatus.COMPLETED
    assert reads == []
    assert len(ridden) == (2 if outputs == "riding with the fan-in" else 0)  # a ride a phase
    events: list[EventRecord] = seen["events"]
    for phase in ("intake", "ideation"):
        metrics = seen["outputs"][(phase, 1)][GATE_KEY]["evidence"]["metrics"]
        assert (metrics["agents_executed"], metrics["agents_succeeded"]) == (3, 3)
        assert metrics["agents_failed"] == 0
        began = next(e.at for e in events if e.type == "phase.started" and e.phase == phase)
        ready = next(e.at for e in events if e.type == "phase.ready" and e.phase == phase)
        lasted = datetime.fromisoformat(ready) - datetime.fromisoformat(began)
        # the slowest agent sleeps 0.15 s; judging ends about when the ready event is stamped
        assert 150 <= metrics["duration_ms"] <= lasted.total_seconds() * 1000 + 50


def test_a_gate_judged_in_its_step_reaches_the_verdicts_a_judge_task_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coverage gate fails attempt 1 (the fix reruns NFRsAgent) and passes attempt 2,
    in its step and by a task alike: the same verdicts, issues and events."""
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(tmp_path / "exec.log"))
    config = write_coverage_loop(tmp_path / "cfg", "tests.support.agents:nfrs_from_feedback")
    (tmp_path / "step").mkdir()
    (tmp_path / "task").mkdir()
    in_step = _run(tmp_path / "step", config)
    judge_gates_by_task(monkeypatch)
    by_task = _run(tmp_path / "task", config)

    for seen in (in_step, by_task):
        assert seen["status"] is RunStatus.COMPLETED
        assert [(v.attempt, v.passed) for v in seen["verdicts"]] == [(1, False), (2, True)]
    assert [comparable(v.result) for v in in_step["verdicts"]] == [
        comparable(v.result) for v in by_task["verdicts"]
    ]

    def kinds(events: list[EventRecord]) -> list[tuple[str, str | None]]:
        return [(e.type, e.phase) for e in events if e.type != "task.started"]

    assert kinds(in_step["events"]) == kinds(by_task["events"])

    def judged(events: list[EventRecord]) -> list[str]:
        """The gates' task.succeeded payloads as hashed (0 and 0.0 differ there)."""
        return [
            canonical_json({k: v for k, v in e.payload.items() if k != "output_hash"})
            for e in events
            if e.type == "task.succeeded" and e.payload["key"] == GATE_KEY
        ]

    assert judged(in_step["events"]) == judged(by_task["events"])

    def starts(events: list[EventRecord]) -> int:
        return len([e for e in events if e.type == "task.started"])

    assert starts(by_task["events"]) == starts(in_step["events"]) + 2  # a judge per attempt


def _raising(given: GuardInput) -> GuardReport:
    raise ValueError(f"cannot read {sorted(given.artifacts)}")


def test_a_guard_that_raises_fails_the_phase_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards are deterministic: one that raises on the draft would raise again, so the
    phase fails at once with the error in the ledger, and nothing of the verdict is kept."""
    monkeypatch.setitem(registry.GUARDS, "coverage", registry.RuleGuard("coverage", _raising))
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(tmp_path / "exec.log"))
    config = write_coverage_loop(tmp_path / "cfg", "tests.support.agents:nfrs_from_feedback")
    seen = _run(tmp_path, config)
    assert seen["status"] is RunStatus.FAILED
    error = next(e for e in seen["events"] if e.type == "phase.error")
    assert error.payload["reason"] == (
        "the gate judge failed: ValueError: cannot read ['NFRs', 'UserStories']"
    )
    assert not seen["verdicts"] and not seen["artifacts"]
    assert not [t for t in seen["tasks"] if t.key == GATE_KEY]
