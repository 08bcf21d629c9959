"""The engine's one question: given a run's rows, what happens next?

``plan`` is a pure function of the pinned pipeline and a snapshot. Resume is nothing special:
load the snapshot again and ask again.
"""

from __future__ import annotations

from ideamine.config.model import PipelineSpec
from ideamine.engine.dag import ready_phases
from ideamine.engine.fanout import fan_out_complete, next_tasks
from ideamine.engine.snapshot import (
    Action,
    ApplyVerdict,
    CreateTasks,
    FailPhase,
    FanIn,
    FinishRun,
    PhaseState,
    RunSnapshot,
    StartPhase,
    TaskPlan,
)
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus

__all__ = ["GATE_AGENT", "GATE_KEY", "plan"]

GATE_AGENT = "@gate"  # the judge: Q/A/V, guards and gate score of a fanned-in attempt
GATE_KEY = "~gate"  # its branch key, sorting after every agent's
_FAILED = TaskStatus.FAILED  # a name, not an enum class lookup per task: plans scan wide phases


def plan(pipeline: PipelineSpec, snapshot: RunSnapshot) -> list[Action]:
    """The actions that move the run on now, in pipeline order; ``[]`` means wait for tasks."""
    if snapshot.status is not RunStatus.RUNNING:
        return []
    actions: list[Action] = []
    for spec in pipeline.phases:
        state = snapshot.phases.get(spec.name)
        if state is not None:
            actions.extend(_advance_phase(pipeline, spec.name, state))
    if any(isinstance(action, FailPhase) for action in actions):
        return actions
    graph = {spec.name: spec.depends_on for spec in pipeline.phases}
    passed = [name for name, st in snapshot.phases.items() if st.status is PhaseStatus.PASSED]
    ready = ready_phases(graph, passed, snapshot.phases.keys())
    actions.extend(StartPhase(phase=name, attempt=1) for name in ready)  # together, in order
    for name in ready:  # their first tasks in the same step, as the next step would plan them
        first = next_tasks(pipeline.phase(name), (), loop_done=False)
        if first:
            actions.append(CreateTasks(phase=name, attempt=1, tasks=tuple(first)))
    if len(passed) == len(pipeline.phases):
        actions.append(FinishRun(status=RunStatus.COMPLETED))
    return actions


def _advance_phase(pipeline: PipelineSpec, name: str, state: PhaseState) -> list[Action]:
    if state.status is PhaseStatus.READY:
        return _judge(name, state)
    if state.status is not PhaseStatus.RUNNING:
        return []
    failed = [task for task in state.tasks if task.status is _FAILED]
    if failed:
        first = min(failed, key=lambda task: task.key)
        return [
            FailPhase(
                phase=name,
                attempt=state.attempt,
                reason=f"task {first.key} failed: {first.error or 'unknown error'}",
            )
        ]
    spec = pipeline.phase(name)
    new = next_tasks(spec, state.tasks, state.loop_done)
    if new:
        return [CreateTasks(phase=name, attempt=state.attempt, tasks=tuple(new))]
    if fan_out_complete(spec, state.tasks, state.loop_done):
        return [FanIn(phase=name, attempt=state.attempt)]
    return []


def _judge(name: str, state: PhaseState) -> list[Action]:
    """A fanned-in attempt: its judge task (created with the fan-in) decides the gate."""
    judge = next((task for task in state.tasks if task.key == GATE_KEY), None)
    if judge is None:  # fanned in before the judge existed: judge it now
        plans = (TaskPlan(key=GATE_KEY, agent=GATE_AGENT, iteration=1),)
        return [CreateTasks(phase=name, attempt=state.attempt, tasks=plans)]
    if judge.status is TaskStatus.SUCCEEDED:
        return [ApplyVerdict(phase=name, attempt=state.attempt)]
    if judge.status is TaskStatus.FAILED:
        return [
            FailPhase(
                phase=name,
                attempt=state.attempt,
                reason=f"the gate judge failed: {judge.error or 'unknown error'}",
            )
        ]
    return []
