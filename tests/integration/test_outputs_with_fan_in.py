"""Driving a run, the last outputs of a phase whose gate is judged in its step are recorded
in the transaction that fans the phase in (``runtime.finishing``, ``Advancer.ride``): the
run reads the same as when each output is recorded on its own, and a runner stopped while
such a transaction waits hands back the tasks it started."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.configs import (
    write_callable_pipeline,
    write_coverage_loop,
    write_shipped_phases,
)
from tests.support.runs import (
    Recording,
    around_fan_ins,
    comparable,
    drive_new_run,
    hold_fan_ins_with_outputs,
    record_outputs_alone,
)

from ideamine import service
from ideamine.canonical import canonical_json
from ideamine.config import default_config_dir
from ideamine.config.loader import load_pipeline
from ideamine.engine.plan import GATE_KEY
from ideamine.engine.snapshot import Action
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.runtime.actions import Lessee
from ideamine.runtime.advance import Advancer, Ridden
from ideamine.runtime.finishing import Finishing
from ideamine.runtime.runner import Runner
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.records import ClaimedTask, EventRecord, OutputWrite
from ideamine.stores.verdicts import Verdict, VerdictStore


def _run(folder: Path, config: Path) -> dict[str, Any]:
    """Drive one run of ``config`` in a store in ``folder``; what the tests compare."""

    async def go() -> dict[str, Any]:
        store = await service.open_store(str(folder / "x.db"))
        try:
            run_id = (await drive_new_run(store, config)).id
            _, _, tasks = await store.run_rows(run_id)
            artifacts = await store.artifacts(run_id)
            return {
                "status": (await store.get_run(run_id)).status,
                "events": await service.all_events(store, run_id),
                "tasks": sorted((t.phase, t.attempt, t.key, t.status, t.tries) for t in tasks),
                "contents": sorted(
                    (a.phase, a.attempt, a.type, a.version, canonical_json(a.provenance))
                    for a in artifacts
                ),
                "blobs": sorted(
                    [canonical_json(await store.blob(a.content_hash)) for a in artifacts]
                ),
                "verdicts": await DossierStore(store).gate_evaluations(run_id),
                "calls": await store.model_calls(run_id),
            }
        finally:
            await store.close()

    return asyncio.run(go())


def _kinds(events: Sequence[EventRecord]) -> list[tuple[str, str | None, object]]:
    """The ledger as two runs of one config share it: types, phases and task keys."""
    return [(e.type, e.phase, e.payload.get("key")) for e in events]


def _phase_kinds(events: Sequence[EventRecord]) -> list[tuple[str, str | None]]:
    """The ledger's run and phase events, in order."""
    return [(e.type, e.phase) for e in events if not e.type.startswith("task.")]


def test_a_run_whose_outputs_go_with_their_fan_ins_reads_as_one_recording_them_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coverage gate fails attempt 1 (its fix reruns NFRsAgent) and passes attempt 2:
    the same tasks, artifacts, verdicts and ledger either way; with rides, each phase's last
    output is stamped with its fan-in."""
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(tmp_path / "exec.log"))
    config = write_coverage_loop(tmp_path / "cfg", "tests.support.agents:nfrs_from_feedback")
    (tmp_path / "ridden").mkdir()
    (tmp_path / "alone").mkdir()
    ridden = _run(tmp_path / "ridden", config)
    record_outputs_alone(monkeypatch)
    alone = _run(tmp_path / "alone", config)

    for seen in (ridden, alone):
        assert seen["status"] is RunStatus.COMPLETED
        assert [(v.attempt, v.passed) for v in seen["verdicts"]] == [(1, False), (2, True)]
    assert ridden["tasks"] == alone["tasks"]
    assert ridden["contents"] == alone["contents"]
    assert ridden["blobs"] == alone["blobs"]
    assert [comparable(v.result) for v in ridden["verdicts"]] == [
        comparable(v.result) for v in alone["verdicts"]
    ]
    # the same events; in the same order but for tasks ending together (their batch's order)
    assert sorted(_kinds(ridden["events"]), key=repr) == sorted(_kinds(alone["events"]), key=repr)
    assert _phase_kinds(ridden["events"]) == _phase_kinds(alone["events"])

    def stamped_with_fan_in(events: Sequence[EventRecord]) -> int:
        """Fan-ins whose preceding event (an agent's output) shares their transaction."""
        return sum(
            1
            for before, ready in itertools.pairwise(events)
            if ready.type == "phase.ready"
            and before.type == "task.succeeded"
            and before.at == ready.at
        )

    # attempt 1's fan-in at least (attempt 2's agents, instant, may end while the step that
    # started them still holds the run: a ride is then declined, and they are recorded alone)
    assert stamped_with_fan_in(ridden["events"]) >= 1
    assert stamped_with_fan_in(alone["events"]) == 0


def test_a_runner_stopped_while_a_fan_in_waits_hands_back_the_tasks_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while intake's last outputs wait in its fan-in's transaction, which passes it
    and starts ideation with its tasks claimed for this runner: the transaction commits, the
    runner hands ideation's tasks back instead of recording them as it stops, and a resume
    runs each agent whose output was not recorded again (intake's, recorded, ran once)."""
    log = tmp_path / "exec.log"
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(log))
    config = write_callable_pipeline(
        tmp_path / "cfg", {"intake": [], "ideation": ["intake"]}, agents_per_phase=2
    )
    pipeline = load_pipeline(config)
    arrived, gate = asyncio.Event(), asyncio.Event()
    hold_fan_ins_with_outputs(monkeypatch, arrived, gate)

    async def go() -> tuple[dict[str, tuple[TaskStatus, str | None]], RunStatus]:
        store = await service.open_store(str(tmp_path / "x.db"))
        try:
            run = await service.create_run(
                store, pipeline, "a farm shop", constraints={}, source="cli", config_dir=config
            )
            driving = asyncio.create_task(Runner(store, pipeline).drive(run.id))
            await arrived.wait()  # intake's agents are done; their outputs wait with its fan-in
            asyncio.get_running_loop().call_later(0.2, gate.set)
            driving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await driving
            _, phases, tasks = await store.run_rows(run.id)
            assert {(p.phase, p.status) for p in phases} == {
                ("intake", PhaseStatus.PASSED),
                ("ideation", PhaseStatus.RUNNING),
            }
            stopped = {
                f"{t.phase}/{t.key}": (t.status, t.lease_owner) for t in tasks if t.key != GATE_KEY
            }
            resumed = await Runner(store, pipeline).drive(run.id)
            return stopped, resumed.status
        finally:
            await store.close()

    stopped, status = asyncio.run(go())
    assert stopped == {
        "intake/00.IntakeAgent0": (TaskStatus.SUCCEEDED, None),
        "intake/01.IntakeAgent1": (TaskStatus.SUCCEEDED, None),
        "ideation/00.IdeationAgent0": (TaskStatus.PENDING, None),  # handed back, not run
        "ideation/01.IdeationAgent1": (TaskStatus.PENDING, None),
    }
    assert status is RunStatus.COMPLETED
    lines = [line.split() for line in log.read_text().splitlines()]
    agents = sorted(
        [phase, f"{i:02d}.{phase.capitalize()}Agent{i}"]
        for phase in ("intake", "ideation")
        for i in (0, 1)
    )
    # ideation's agents were handed out ahead of the commit (``stores.ahead``): they ran
    # while it was held, their outputs waiting for it; the runner stopped them unrecorded,
    # and the resume ran them again. Intake's, recorded, ran once.
    ends = Counter(tuple(line[1:3]) for line in lines if line[0] == "end")
    assert sorted(map(list, ends)) == agents
    assert ends[("intake", "00.IntakeAgent0")] == ends[("intake", "01.IntakeAgent1")] == 1


def test_a_ride_that_fails_leaves_the_outputs_to_be_recorded_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Anything but a refusal going wrong in a ride (a read failing, a bug) writes nothing
    of it: the outputs are recorded on their own and the loop's own step fans the phase in."""
    fan_ins_of = Advancer._fan_ins_of
    failures: list[str] = []

    async def failing_once(self: Advancer, finishing: Finishing) -> object:
        if not failures:
            failures.append(finishing.run_id)
            raise RuntimeError("a read failed")
        return await fan_ins_of(self, finishing)

    monkeypatch.setattr(Advancer, "_fan_ins_of", failing_once)
    config = write_callable_pipeline(
        tmp_path / "cfg", {"intake": [], "ideation": ["intake"]}, agents_per_phase=2
    )
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime.runner"):
        seen = _run(tmp_path, config)

    assert failures and seen["status"] is RunStatus.COMPLETED
    assert "the fan-in its outputs were to go with failed" in caplog.text
    assert "a read failed" in caplog.text
    succeeded = [e.task_id for e in seen["events"] if e.type == "task.succeeded"]
    assert len(succeeded) == len(set(succeeded)) == 2 * 3  # two agents and a gate, once each


PARALLEL = {"intake": [], "security": ["intake"], "story": ["intake"], "qa": ["security", "story"]}


def _watching_steps(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Ridden | None]]:
    """The actions of each step the runner's loop takes, and what each ride did."""
    steps: list[str] = []
    rides: list[Ridden | None] = []
    step, ride = Advancer._step, Advancer.ride

    async def stepped(
        self: Advancer, run_id: str, lessee: Lessee | None
    ) -> tuple[list[Action], bool]:
        actions, again = await step(self, run_id, lessee)
        steps.append(",".join(type(action).__name__ for action in actions))
        return actions, again

    async def ridden(
        self: Advancer, finishing: Finishing, lessee: Lessee | None = None
    ) -> Ridden | None:
        rides.append(await ride(self, finishing, lessee))
        return rides[-1]

    monkeypatch.setattr(Advancer, "_step", stepped)
    monkeypatch.setattr(Advancer, "ride", ridden)
    return steps, rides


def test_outputs_that_end_two_phases_fan_both_in_and_start_the_next_in_one_ride(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two phases whose agents end in one batch: the ride's step fans both in, the first
    taking their outputs along, the second starting qa; the loop's own steps fan nothing in."""
    steps, rides = _watching_steps(monkeypatch)
    config = write_callable_pipeline(tmp_path / "cfg", PARALLEL, agents_per_phase=2)

    seen = _run(tmp_path, config)

    assert seen["status"] is RunStatus.COMPLETED
    assert not any("FanIn" in step for step in steps), steps
    assert [ride.again for ride in rides if ride is not None] == [False, False, False]
    events = seen["events"]
    completed = {e.phase: e.at for e in events if e.type == "phase.completed"}
    started = {e.phase: e.at for e in events if e.type == "phase.started"}
    # one transaction starts qa with the second side; the first side's, held for it
    # (``runtime.stepwrites``), commits just before, stamped alike: the times keep the order
    assert started["qa"] == completed["security"] == completed["story"]
    order = [e.phase for e in events if e.type == "phase.completed" and e.phase != "intake"]
    assert len(order) == 3 and order[-1] == "qa"
    succeeded = [e.task_id for e in events if e.type == "task.succeeded"]
    assert len(succeeded) == len(set(succeeded)) == 4 * 3  # two agents and a gate, once each


def test_a_failing_step_after_a_ride_is_the_loops_to_take_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The outputs went with the first fan-in, held until the second's write
    (``runtime.stepwrites``); the second's own transaction then fails: logged, and the loop's
    next step fans the second phase in."""
    steps, _ = _watching_steps(monkeypatch)
    failures: list[str] = []

    async def failing_once(
        _: VerdictStore, verdict: Verdict, __: object, record: Recording
    ) -> list[ClaimedTask]:
        # the join's second side (it starts qa), after the first's held write
        if verdict.phase in ("security", "story") and verdict.ahead and not failures:
            failures.append(verdict.phase)
            raise RuntimeError("a write failed")
        return await record()

    around_fan_ins(monkeypatch, failing_once)
    config = write_callable_pipeline(tmp_path / "cfg", PARALLEL, agents_per_phase=2)
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime.advance"):
        seen = _run(tmp_path, config)

    assert failures and seen["status"] is RunStatus.COMPLETED
    assert "the step after a ride failed" in caplog.text and "a write failed" in caplog.text
    assert [step for step in steps if "FanIn" in step] == ["FanIn"]  # the second phase's
    succeeded = [e.task_id for e in seen["events"] if e.type == "task.succeeded"]
    assert len(succeeded) == len(set(succeeded)) == 4 * 3  # two agents and a gate, once each


def test_model_calls_that_go_with_a_fan_in_count_as_recorded_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped intake and ideation on the offline model, Q/A/V off (their gates then call
    no model): the calls of the outputs a fan-in takes along count in the artifacts'
    provenance (models, tokens), the verdict's metrics and the run's ``run.completed`` (which
    the last verdict's transaction writes) as recorded calls do."""
    config = write_shipped_phases(tmp_path / "cfg", ["intake", "ideation"])
    (config / "phases").mkdir()
    for phase in ("intake", "ideation"):
        document = yaml.safe_load((default_config_dir() / "phases" / f"{phase}.yaml").read_text())
        document["qav"] = {**document["qav"], "enabled": False}
        (config / "phases" / f"{phase}.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "ridden").mkdir()
    (tmp_path / "alone").mkdir()
    ridden = _run(tmp_path / "ridden", config)
    record_outputs_alone(monkeypatch)
    alone = _run(tmp_path / "alone", config)

    def provenance(seen: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The artifacts' provenance but the ids of their inputs (new in every run)."""
        found = [json.loads(content[4]) for content in seen["contents"]]
        return [{k: v for k, v in p.items() if k != "input_artifact_ids"} for p in found]

    assert ridden["status"] is alone["status"] is RunStatus.COMPLETED
    assert provenance(ridden) == provenance(alone)
    assert all(p["tokens"] > 0 and p["models"] for p in provenance(ridden))
    assert [comparable(v.result) for v in ridden["verdicts"]] == [
        comparable(v.result) for v in alone["verdicts"]
    ]
    metrics = [v.result["evidence"]["metrics"] for v in ridden["verdicts"]]
    assert all(m["tokens"] > 0 and m["cost_usd"] == 0 for m in metrics)
    for seen in (ridden, alone):  # the last verdict completed the run, counting every call
        completed = seen["events"][-1]
        calls = seen["calls"]
        assert completed.type == "run.completed" and len(calls) > 0
        assert completed.payload == {
            "tokens": sum(int(c["tokens_in"]) + int(c["tokens_out"]) for c in calls),
            "cost_usd": 0,
            "model_calls": len(calls),
        }
        ideation = [e for e in seen["events"] if e.type == "phase.completed"][-1]
        assert ideation.phase == "ideation" and ideation.at == completed.at


def test_a_held_fan_in_that_fails_to_commit_leaves_the_ride_unwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The join's first side, held for the second's write (``runtime.stepwrites``), fails
    to commit: neither side is written, qa's tasks handed out ahead are revoked, the outputs
    are recorded on their own, and the loop fans both sides in; qa reads only artifacts
    that were committed."""
    failures: list[str] = []

    async def failing_once(
        _: VerdictStore, verdict: Verdict, finishing: Sequence[OutputWrite], record: Recording
    ) -> list[ClaimedTask]:
        if finishing and verdict.phase in ("security", "story") and not failures:
            failures.append(verdict.phase)  # the held side, carrying the outputs
            raise RuntimeError("a held write failed")
        return await record()

    around_fan_ins(monkeypatch, failing_once)
    config = write_callable_pipeline(tmp_path / "cfg", PARALLEL, agents_per_phase=2)
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime.runner"):
        seen = _run(tmp_path, config)

    assert failures and seen["status"] is RunStatus.COMPLETED
    assert "a held write failed" in caplog.text
    succeeded = [e for e in seen["events"] if e.type == "task.succeeded"]
    assert len(succeeded) == len({e.task_id for e in succeeded}) == 4 * 3
    qa_inputs = {i for e in succeeded if e.phase == "qa" for i in e.payload["inputs"]}
    assert qa_inputs and qa_inputs <= _artifact_ids(tmp_path / "x.db")


def _artifact_ids(path: Path) -> set[str]:
    """The ids of every artifact stored in ``path`` (one run)."""

    async def go() -> set[str]:
        store = await service.open_store(str(path))
        try:
            [run] = await store.list_runs()
            return {a.id for a in await store.artifacts(run.id)}
        finally:
            await store.close()

    return asyncio.run(go())
