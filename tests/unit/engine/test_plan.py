"""plan(): what happens next, given the pinned pipeline and a snapshot of the run's rows."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.unit.engine.factories import (
    SPEC_DAG,
    phase_spec,
    phase_state,
    pipeline_from_dag,
    pipeline_spec,
    snapshot,
    task,
)

from ideamine.config.model import FanOutKind
from ideamine.engine.plan import GATE_AGENT, GATE_KEY, plan
from ideamine.engine.snapshot import (
    Action,
    ApplyVerdict,
    CreateTasks,
    FailPhase,
    FanIn,
    FinishRun,
    PhaseState,
    StartPhase,
    TaskPlan,
    TaskState,
)
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus

# a → {b, c}, c → d: d waits only for c.
DIAMOND = pipeline_from_dag({"a": (), "b": ("a",), "c": ("a",), "d": ("c",)})
PASSED = phase_state(PhaseStatus.PASSED, [task(0, "x")])
JUDGED = TaskState(key=GATE_KEY, agent=GATE_AGENT, iteration=1, status=TaskStatus.SUCCEEDED)


def _running(*statuses: TaskStatus, attempt: int = 1) -> PhaseState:
    """A running attempt whose tasks for agents ``x0``, ``x1``… have ``statuses``."""
    tasks = [task(index, f"x{index}", status) for index, status in enumerate(statuses)]
    return phase_state(PhaseStatus.RUNNING, tasks, attempt=attempt)


def _starts(actions: list[Action]) -> list[Action]:
    """The StartPhase actions (each is followed by its phase's first CreateTasks)."""
    return [action for action in actions if isinstance(action, StartPhase)]


def test_a_phase_starts_with_its_first_tasks_in_the_same_step() -> None:
    pipeline = pipeline_spec([phase_spec("a", agents=("Scout", "Critic"))])
    assert plan(pipeline, snapshot()) == [
        StartPhase(phase="a", attempt=1),
        CreateTasks(
            phase="a",
            attempt=1,
            tasks=(
                TaskPlan(key="00.Scout", agent="Scout", iteration=1),
                TaskPlan(key="01.Critic", agent="Critic", iteration=1),
            ),
        ),
    ]


def test_phases_that_start_together_start_before_any_creates_tasks() -> None:
    pipeline = pipeline_spec([phase_spec("a", agents=("x",)), phase_spec("b", agents=("y",))])
    kinds = [type(action).__name__ for action in plan(pipeline, snapshot())]
    assert kinds == ["StartPhase", "StartPhase", "CreateTasks", "CreateTasks"]


def test_an_empty_run_starts_every_root_phase() -> None:
    pipeline = pipeline_from_dag({"a": (), "b": ("a",), "c": ()})
    assert _starts(plan(pipeline, snapshot())) == [
        StartPhase(phase="a", attempt=1),
        StartPhase(phase="c", attempt=1),
    ]


@pytest.mark.parametrize("status", [s for s in RunStatus if s is not RunStatus.RUNNING])
def test_nothing_happens_unless_the_run_is_running(status: RunStatus) -> None:
    assert plan(DIAMOND, snapshot(status=status)) == []
    assert plan(DIAMOND, snapshot({"a": phase_state(PhaseStatus.READY)}, status=status)) == []


def test_a_started_phase_creates_its_tasks() -> None:
    pipeline = pipeline_spec([phase_spec("a", agents=("Scout", "Critic"))])
    actions = plan(pipeline, snapshot({"a": phase_state(PhaseStatus.RUNNING, attempt=2)}))
    assert actions == [
        CreateTasks(
            phase="a",
            attempt=2,
            tasks=(
                TaskPlan(key="00.Scout", agent="Scout", iteration=1),
                TaskPlan(key="01.Critic", agent="Critic", iteration=1),
            ),
        )
    ]


def test_a_phase_with_open_tasks_waits() -> None:
    pipeline = pipeline_spec([phase_spec("a", agents=("x0", "x1"))])
    phases = {"a": _running(TaskStatus.SUCCEEDED, TaskStatus.RUNNING)}
    assert plan(pipeline, snapshot(phases)) == []


def test_dependants_start_after_the_root_passed() -> None:
    assert _starts(plan(DIAMOND, snapshot({"a": PASSED}))) == [
        StartPhase(phase="b", attempt=1),
        StartPhase(phase="c", attempt=1),
    ]


def test_a_phase_starts_as_soon_as_its_own_dependencies_passed() -> None:
    # b (same level as c) is still running; level-by-level scheduling would hold d back.
    slow = phase_state(PhaseStatus.RUNNING, [task(0, "b-agent", TaskStatus.RUNNING)])
    phases = {"a": PASSED, "b": slow, "c": PASSED}
    assert _starts(plan(DIAMOND, snapshot(phases))) == [StartPhase(phase="d", attempt=1)]


def test_a_phase_does_not_start_before_its_dependencies_passed() -> None:
    phases = {"a": PASSED, "b": PASSED, "c": phase_state(PhaseStatus.READY, [JUDGED])}
    assert plan(DIAMOND, snapshot(phases)) == [ApplyVerdict(phase="c", attempt=1)]


def test_security_and_story_loop_start_together_after_build() -> None:
    pipeline = pipeline_from_dag(SPEC_DAG)
    upstream = list(SPEC_DAG)[: list(SPEC_DAG).index("build") + 1]
    actions = plan(pipeline, snapshot(dict.fromkeys(upstream, PASSED)))
    assert _starts(actions) == [
        StartPhase(phase="security", attempt=1),
        StartPhase(phase="story-loop", attempt=1),
    ]


def test_a_failed_task_fails_its_phase() -> None:
    phases = {
        "a": phase_state(
            PhaseStatus.RUNNING,
            [task(0, "x0"), task(1, "x1", TaskStatus.FAILED, error="schema mismatch")],
            attempt=3,
        )
    }
    assert plan(DIAMOND, snapshot(phases)) == [
        FailPhase(phase="a", attempt=3, reason="task 01.x1 failed: schema mismatch")
    ]


def test_fail_phase_names_the_first_failed_task_by_key() -> None:
    tasks = [task(2, "late", TaskStatus.FAILED, error="e2"), task(1, "early", TaskStatus.FAILED)]
    phases = {"a": phase_state(PhaseStatus.RUNNING, tasks)}
    (action,) = plan(DIAMOND, snapshot(phases))
    assert action == FailPhase(phase="a", attempt=1, reason="task 01.early failed: unknown error")


def test_a_failing_phase_holds_back_new_phases() -> None:
    phases = {
        "a": PASSED,
        "b": phase_state(PhaseStatus.RUNNING, [task(0, "x", TaskStatus.FAILED, error="boom")]),
        "c": PASSED,
    }
    actions = plan(DIAMOND, snapshot(phases))
    assert actions == [FailPhase(phase="b", attempt=1, reason="task 00.x failed: boom")]


def test_a_complete_fan_out_fans_in() -> None:
    pipeline = pipeline_spec([phase_spec("a", agents=("x0", "x1"))])
    phases = {"a": _running(TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED, attempt=2)}
    assert plan(pipeline, snapshot(phases)) == [FanIn(phase="a", attempt=2)]


def test_a_finished_loop_fans_in() -> None:
    loop = phase_spec("loop", agents=("W",), kind=FanOutKind.ITERATIVE, max_iterations=5)
    state = phase_state(PhaseStatus.RUNNING, [task(0, "W", iteration=1)], loop_done=True)
    assert plan(pipeline_spec([loop]), snapshot({"loop": state})) == [
        FanIn(phase="loop", attempt=1)
    ]


def test_an_unfinished_loop_creates_its_next_iteration() -> None:
    loop = phase_spec("loop", agents=("W",), kind=FanOutKind.ITERATIVE, max_iterations=5)
    state = phase_state(PhaseStatus.RUNNING, [task(0, "W", iteration=1)])
    assert plan(pipeline_spec([loop]), snapshot({"loop": state})) == [
        CreateTasks(
            phase="loop", attempt=1, tasks=(TaskPlan(key="002.00.W", agent="W", iteration=2),)
        )
    ]


def test_a_judged_ready_phase_gets_its_verdict_applied() -> None:
    phases = {"a": phase_state(PhaseStatus.READY, [task(0, "x"), JUDGED], attempt=2)}
    assert plan(DIAMOND, snapshot(phases)) == [ApplyVerdict(phase="a", attempt=2)]


def test_a_ready_phase_waits_for_its_judge() -> None:
    judging = replace(JUDGED, status=TaskStatus.RUNNING)
    phases = {"a": phase_state(PhaseStatus.READY, [task(0, "x"), judging])}
    assert plan(DIAMOND, snapshot(phases)) == []


def test_a_ready_phase_without_a_judge_gets_one() -> None:
    """Runs fanned in before the judge existed are judged on resume."""
    phases = {"a": phase_state(PhaseStatus.READY, [task(0, "x")])}
    judge = TaskPlan(key=GATE_KEY, agent=GATE_AGENT, iteration=1)
    assert plan(DIAMOND, snapshot(phases)) == [CreateTasks(phase="a", attempt=1, tasks=(judge,))]


def test_a_failed_judge_fails_the_phase() -> None:
    failed = replace(JUDGED, status=TaskStatus.FAILED, error="boom")
    phases = {"a": phase_state(PhaseStatus.READY, [failed])}
    assert plan(DIAMOND, snapshot(phases)) == [
        FailPhase(phase="a", attempt=1, reason="the gate judge failed: boom")
    ]


def test_actions_follow_pipeline_order_not_snapshot_order() -> None:
    phases = {
        "c": phase_state(PhaseStatus.READY, [JUDGED]),
        "b": phase_state(PhaseStatus.READY, [JUDGED]),
        "a": PASSED,
    }
    assert plan(DIAMOND, snapshot(phases)) == [
        ApplyVerdict(phase="b", attempt=1),
        ApplyVerdict(phase="c", attempt=1),
    ]


def test_the_run_completes_when_every_phase_passed() -> None:
    phases = dict.fromkeys("abcd", PASSED)
    assert plan(DIAMOND, snapshot(phases)) == [FinishRun(status=RunStatus.COMPLETED)]


def test_the_run_does_not_complete_while_a_phase_awaits_its_gate() -> None:
    phases = {**dict.fromkeys("abc", PASSED), "d": phase_state(PhaseStatus.READY, [JUDGED])}
    assert plan(DIAMOND, snapshot(phases)) == [ApplyVerdict(phase="d", attempt=1)]
