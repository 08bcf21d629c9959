"""The runner's behaviour on retries, bad outputs, loop conditions and changed configs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.configs import write_callable_pipeline
from tests.support.runs import judge_gates_by_task, record_outputs_alone

from ideamine import service
from ideamine.agents.base import AgentContext, AgentResult
from ideamine.agents.builtin import CallableAgent
from ideamine.canonical import canonical_json, sha256_hex
from ideamine.config.loader import load_pipeline
from ideamine.engine.snapshot import Action
from ideamine.engine.states import RunStatus
from ideamine.runtime.actions import Lessee
from ideamine.runtime.advance import Advancer, Ridden
from ideamine.runtime.finishing import Finishing
from ideamine.runtime.runner import DEFAULT_CONCURRENCY, Runner
from ideamine.stores.records import ClaimedTask, EventRecord
from ideamine.stores.sqlite import SqliteStore

DAG = {"intake": [], "ideation": ["intake"], "critique": ["ideation"]}


def _set_agent(config: Path, agent: str, function: str) -> None:
    path = config / "agents" / f"{agent}.yaml"
    document = yaml.safe_load(path.read_text())
    document["callable"] = function
    path.write_text(yaml.safe_dump(document))


def _run(
    tmp_path: Path, config: Path, concurrency: int = DEFAULT_CONCURRENCY
) -> tuple[RunStatus, str | None, list[EventRecord]]:
    async def go() -> tuple[RunStatus, str | None, list[EventRecord]]:
        pipeline = load_pipeline(config)
        store = await service.open_store(str(tmp_path / "x.db"))
        try:
            run = await service.create_run(
                store,
                pipeline,
                "an idea for farmers",
                constraints={},
                source="cli",
                config_dir=config,
            )
            await Runner(store, pipeline, concurrency=concurrency).drive(run.id)
            final = await store.get_run(run.id)
            return final.status, final.error, await service.all_events(store, run.id)
        finally:
            await store.close()

    return asyncio.run(go())


def test_a_raising_agent_is_retried_with_backoff_and_keeps_its_checkpoint(
    tmp_path: Path,
) -> None:
    """The first try raises after saving a checkpoint; the retry sees it and succeeds."""
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)
    _set_agent(config, "IdeationAgent1", "tests.support.agents:flaky")
    status, _, events = _run(tmp_path, config)
    assert status is RunStatus.COMPLETED
    retries = [e for e in events if e.type == "task.retry"]
    assert len(retries) == 1
    assert retries[0].payload["strategy"] == "backoff"
    assert "first try fails on purpose" in str(retries[0].payload["error"])
    assert [e.type for e in events if e.task_id == retries[0].task_id] == [
        "task.started",
        "task.checkpoint",
        "task.retry",
        "task.started",
        "task.succeeded",
    ]


def test_an_output_that_breaks_its_schema_fails_the_run_without_retrying(
    tmp_path: Path,
) -> None:
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)
    _set_agent(config, "IdeationAgent0", "tests.support.agents:wrong_shape")
    status, error, events = _run(tmp_path, config)
    assert status is RunStatus.FAILED
    assert error is not None and "IdeationAgent0" in error and "output_schema" in error
    types = [e.type for e in events]
    assert "task.retry" not in types
    assert types.index("task.failed") < types.index("phase.error") < types.index("run.failed")
    assert types[-1] == "run.failed"
    assert not any(e.phase == "critique" for e in events)


def test_an_output_that_is_not_json_fails_its_task_with_the_reason(tmp_path: Path) -> None:
    """A callable returning a NaN (which a ``number`` schema accepts, and no store keeps):
    its task fails with the reason in the ledger and the run fails cleanly."""
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)
    _set_agent(config, "IdeationAgent0", "tests.support.agents:not_json")
    status, error, events = _run(tmp_path, config)
    assert status is RunStatus.FAILED
    assert error is not None and "IdeationAgent0" in error and "not JSON" in error
    failed = [e for e in events if e.type == "task.failed"]
    assert len(failed) == 1 and "Out of range float values" in str(failed[0].payload["error"])
    assert "task.retry" not in [e.type for e in events]  # the same function would do it again
    assert not any(e.phase == "critique" for e in events)


def test_an_until_condition_that_cannot_be_evaluated_fails_its_phase(tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", DAG, agents_per_phase=1, parallelism={"critique": "iterative"}
    )
    phase = config / "phases" / "critique.yaml"
    document = yaml.safe_load(phase.read_text())
    document["loop"]["until"] = "artifacts.NoSuchArtifact.items | length > 0"
    phase.write_text(yaml.safe_dump(document))
    status, error, _ = _run(tmp_path, config)
    assert status is RunStatus.FAILED
    assert error is not None and "loop.until" in error and "NoSuchArtifact" in error


def test_a_loop_runs_until_its_condition_holds(tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", DAG, agents_per_phase=2, parallelism={"critique": "iterative"}
    )
    status, _, events = _run(tmp_path, config)
    assert status is RunStatus.COMPLETED
    keys = [
        e.payload["key"]
        for e in events
        if e.type == "task.succeeded" and e.phase == "critique" and e.payload["key"] != "~gate"
    ]
    assert keys == [
        "001.00.CritiqueAgent0",
        "001.01.CritiqueAgent1",
        "002.00.CritiqueAgent0",
        "002.01.CritiqueAgent1",
        "003.00.CritiqueAgent0",
        "003.01.CritiqueAgent1",
    ]


def test_until_sees_the_outputs_of_the_iteration_that_just_finished(tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", DAG, agents_per_phase=2, parallelism={"critique": "iterative"}
    )
    phase = config / "phases" / "critique.yaml"
    document = yaml.safe_load(phase.read_text())
    document["loop"]["until"] = "outputs | length == 2 and history | length == 0"
    phase.write_text(yaml.safe_dump(document))
    status, _, events = _run(tmp_path, config)
    assert status is RunStatus.COMPLETED
    done = [
        e
        for e in events
        if e.type == "task.succeeded" and e.phase == "critique" and e.payload["key"] != "~gate"
    ]
    assert len(done) == 2  # one iteration: both agents' outputs were visible to `until`


@pytest.mark.parametrize("way", ["with its outputs", "in its step", "by a task"])
def test_a_passed_verdict_starts_the_next_phases_in_its_own_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """The phases a passing verdict lets start, with their first tasks, and the claim of
    those tasks, are written in the verdict's transaction, and the advancer takes no further
    step for it; the last verdict completes the run in its transaction. A gate that calls no
    model is
    judged with its fan-in (``FanIn``), which the phase's last outputs join (``ride``); one
    a task judges, by ``ApplyVerdict``."""
    if way == "by a task":
        judge_gates_by_task(monkeypatch)
    elif way == "in its step":
        record_outputs_alone(monkeypatch)
    calls: list[list[str]] = []
    step = Advancer._step

    async def counted(
        self: Advancer, run_id: str, lessee: Lessee | None
    ) -> tuple[list[Action], bool]:
        actions, again = await step(self, run_id, lessee)
        calls[-1].append(",".join(type(action).__name__ for action in actions))
        return actions, again

    original = Advancer.advance

    async def recorded(self: Advancer, run_id: str, lessee: Lessee | None = None) -> bool:
        calls.append([])
        return await original(self, run_id, lessee)

    rides: list[Ridden | None] = []
    ride = Advancer.ride

    async def ridden(
        self: Advancer, finishing: Finishing, lessee: Lessee | None = None
    ) -> Ridden | None:
        rides.append(await ride(self, finishing, lessee))
        return rides[-1]

    monkeypatch.setattr(Advancer, "_step", counted)
    monkeypatch.setattr(Advancer, "advance", recorded)
    monkeypatch.setattr(Advancer, "ride", ridden)
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)

    status, _, events = _run(tmp_path, config)

    assert status is RunStatus.COMPLETED
    if way == "with its outputs":
        # each fan-in went with its phase's last outputs; steps took only the start and end
        taken = [ride for ride in rides if ride is not None]
        assert [ride.again for ride in taken] == [False] * len(DAG)
        acted = [action for call in calls for action in call if action]
        assert acted == ["StartPhase,CreateTasks"]
    else:
        verdict = "ApplyVerdict" if way == "by a task" else "FanIn"
        with_verdicts = [call for call in calls if verdict in call]
        assert with_verdicts == [[verdict]] * len(DAG)
    assert not any("FinishRun" in action for call in calls for action in call)
    last = [e for e in events if e.type == "phase.completed"][-1]
    completed = events[-1]
    assert (completed.type, completed.at) == ("run.completed", last.at)  # one transaction
    assert completed.payload == {"tokens": 0, "cost_usd": 0, "model_calls": 0}
    for phase, after in (("intake", "ideation"), ("ideation", "critique")):
        passed = next(e for e in events if e.type == "phase.completed" and e.phase == phase)
        at = events.index(passed)
        following = [(e.type, e.phase) for e in events[at + 1 : at + 5]]
        assert following == [
            ("phase.started", after),
            ("phase.progress", after),
            ("task.started", after),
            ("task.started", after),
        ]
        assert {e.at for e in events[at : at + 5]} == {passed.at}  # one transaction
        if way != "by a task":  # the fan-in's artifacts and the judge's output, too
            ready = next(e for e in events if e.type == "phase.ready" and e.phase == phase)
            assert ready.at == passed.at and ready.payload["settled"] == ["~gate"]
        if way == "with its outputs":  # and the last of the phase's outputs
            last = [e for e in events if e.type == "task.succeeded" and e.phase == phase][-2]
            assert last.payload["key"] != "~gate" and last.at == passed.at


@pytest.mark.parametrize("by_task", [False, True], ids=["in its step", "by a task"])
def test_the_tasks_a_step_creates_are_claimed_in_the_transaction_that_creates_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_task: bool
) -> None:
    """Driving a run, the runner takes the tasks a step creates as it creates them: the
    agents' with their phase's start, the gate judges' (when a task judges the gate) with
    the fan-in's artifacts; none goes through ``claim_tasks``."""
    if by_task:
        judge_gates_by_task(monkeypatch)
    claimed_apart: list[str] = []
    claim_tasks = SqliteStore.claim_tasks

    async def counted(self: SqliteStore, run_id: str | None, **options: Any) -> list[ClaimedTask]:
        found = await claim_tasks(self, run_id, **options)
        claimed_apart.extend(item.task.key for item in found)
        return found

    monkeypatch.setattr(SqliteStore, "claim_tasks", counted)
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)

    status, _, events = _run(tmp_path, config)

    assert status is RunStatus.COMPLETED
    assert claimed_apart == []
    creations = 0
    for index, event in enumerate(events):
        if event.type in ("phase.progress", "phase.ready") and "created" in event.payload:
            creations += 1
            created = event.payload["created"]
            following = events[index + 1 : index + 1 + len(created)]
            assert [e.type for e in following] == ["task.started"] * len(created)
            assert [e.payload["key"] for e in following] == sorted(created)
            assert {e.at for e in following} == {event.at}  # the same transaction
            if event.type == "phase.progress":  # the phase started in it too
                assert events[index - 1].type == "phase.started"
                assert events[index - 1].at == event.at
    assert creations == (2 if by_task else 1) * len(DAG)


def test_claiming_as_tasks_are_created_keeps_to_the_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five tasks a phase, two slots: the step claims two as it creates them, the rest
    are claimed as slots free up (with the outputs that free them, ``Runner._record``);
    never more than two agents run at once."""
    running, peak = 0, 0
    run_agent = CallableAgent.run

    async def tracked(self: CallableAgent, ctx: AgentContext) -> AgentResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            return await run_agent(self, ctx)
        finally:
            running -= 1

    monkeypatch.setattr(CallableAgent, "run", tracked)
    monkeypatch.setenv("IDEAMINE_TEST_SLEEP", "0.005")  # agents overlap: index i sleeps (1+i)×
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=5)

    status, _, events = _run(tmp_path, config, concurrency=2)

    assert status is RunStatus.COMPLETED
    assert peak == 2
    started = [e.task_id for e in events if e.type == "task.started"]
    # each agent once (the gates, calling no model, are judged in their fan-ins' steps)
    assert len(started) == len(set(started)) == len(DAG) * 5


def test_an_output_is_stored_as_the_text_its_agent_encoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callable agent encodes its output once (to check it is JSON) and hands the text on
    with it: the text is the output's canonical JSON, and what the ledger hashes for it."""
    results: list[AgentResult] = []
    run_agent = CallableAgent.run

    async def kept(self: CallableAgent, ctx: AgentContext) -> AgentResult:
        result = await run_agent(self, ctx)
        results.append(result)
        return result

    monkeypatch.setattr(CallableAgent, "run", kept)
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)

    status, _, events = _run(tmp_path, config)

    assert status is RunStatus.COMPLETED
    assert len(results) == len(DAG) * 2
    assert all(r.text == canonical_json(r.output) for r in results)
    stored = {str(e.payload["output_hash"]) for e in events if e.type == "task.succeeded"}
    assert {sha256_hex(str(r.text)) for r in results} <= stored  # (and the gate judges')


def test_driving_a_new_run_takes_its_advance_lease_as_it_starts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write that sets a created run running takes its advance lease too
    (``Store.start_run``): no transaction of its own for the lease before the first step,
    nor after while it lasts."""
    holds: list[str] = []
    hold_advance = SqliteStore.hold_advance

    async def counted(self: SqliteStore, run_id: str, **kwargs: Any) -> bool:
        holds.append(run_id)
        return await hold_advance(self, run_id, **kwargs)

    monkeypatch.setattr(SqliteStore, "hold_advance", counted)
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)

    status, _, events = _run(tmp_path, config)

    assert status is RunStatus.COMPLETED
    assert holds == []
    assert [e.type for e in events[:2]] == ["run.created", "run.started"]
