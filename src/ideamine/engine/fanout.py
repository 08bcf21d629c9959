"""Fan-out: which of a phase attempt's tasks may be created now, and their branch keys.

Branch keys sort in configuration order: ``"02.PersonaAgent"`` for the third agent of a phase,
``"004.01.StoryTesterAgent"`` for the second agent in the fourth iteration of a loop. Fan-in
orders by these keys, so a phase's result never depends on which task finished first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from ideamine.config.model import FanOutKind, PhaseSpec
from ideamine.engine.snapshot import TaskPlan, TaskState
from ideamine.engine.states import TaskStatus

__all__ = ["branch_key", "fan_out_complete", "iteration_complete", "next_tasks"]

_OPEN = (TaskStatus.PENDING, TaskStatus.RUNNING)
_DONE = frozenset(status for status in TaskStatus if status.done)


def branch_key(index: int, agent: str, iteration: int | None = None) -> str:
    """The stable key of the task that runs ``agent`` (``index`` in the phase's list)."""
    base = f"{index:02d}.{agent}"
    return base if iteration is None else f"{iteration:03d}.{base}"


def _plans(phase: PhaseSpec, iteration: int | None) -> list[TaskPlan]:
    return list(_planned(phase.agents, iteration))


@functools.lru_cache(maxsize=256)
def _planned(agents: tuple[str, ...], iteration: int | None) -> tuple[TaskPlan, ...]:
    """The plans of one phase (iteration): worked out once, since every advance step of a
    run asks again (a phase of 2,000 agents would otherwise cost O(n) keys per step)."""
    return tuple(
        TaskPlan(key=branch_key(i, agent, iteration), agent=agent, iteration=iteration or 1)
        for i, agent in enumerate(agents)
    )


@functools.lru_cache(maxsize=256)
def _planned_keys(agents: tuple[str, ...], iteration: int | None) -> frozenset[str]:
    """The keys of ``_planned``, for set comparisons (one per step instead of a loop)."""
    return frozenset(plan.key for plan in _planned(agents, iteration))


def _wave(
    phase: PhaseSpec, plans: list[TaskPlan], existing: dict[str, TaskState]
) -> list[TaskPlan]:
    """The plans that may start: evidence agents wait until every other agent is done."""
    if not phase.evidence_agents:
        return plans
    first = [plan for plan in plans if plan.agent not in phase.evidence_agents]
    if all(plan.key in existing and existing[plan.key].status.done for plan in first):
        return [plan for plan in plans if plan.agent in phase.evidence_agents]
    return first


def next_tasks(phase: PhaseSpec, tasks: Sequence[TaskState], loop_done: bool) -> list[TaskPlan]:
    """The tasks to create now, given the attempt's existing tasks, by the fan-out mode.

    Sequential modes (and each loop iteration) create an agent's task only once every earlier
    agent's task succeeded; capped modes keep at most ``limit`` tasks open at once.
    """
    existing = {task.key: task for task in tasks}
    if phase.fan_out.kind is FanOutKind.ITERATIVE:
        return _next_in_loop(phase, existing, loop_done)
    if existing.keys() >= _planned_keys(phase.agents, None):
        return []  # every task exists (whatever the mode): the usual case while a phase runs
    plans = _wave(phase, _plans(phase, None), existing)
    if phase.fan_out.kind is FanOutKind.SEQUENTIAL:
        return _next_sequential(plans, existing)
    missing = [plan for plan in plans if plan.key not in existing]
    if phase.fan_out.limit is None:
        return missing
    open_count = sum(1 for task in tasks if task.status in _OPEN)
    return missing[: max(0, phase.fan_out.limit - open_count)]


def _next_sequential(plans: list[TaskPlan], existing: dict[str, TaskState]) -> list[TaskPlan]:
    for plan in plans:
        task = existing.get(plan.key)
        if task is None:
            return [plan]
        if not task.status.done:
            return []
    return []


def _next_in_loop(
    phase: PhaseSpec, existing: dict[str, TaskState], loop_done: bool
) -> list[TaskPlan]:
    assert phase.loop is not None  # guaranteed by config validation
    current = max((task.iteration for task in existing.values()), default=0)
    if current == 0:
        return _next_sequential(_wave(phase, _plans(phase, 1), existing), existing)
    step = _next_sequential(_wave(phase, _plans(phase, current), existing), existing)
    if step or not iteration_complete(phase, existing.values(), current):
        return step
    if loop_done or current >= phase.loop.max_iterations:
        return []
    return _next_sequential(_wave(phase, _plans(phase, current + 1), existing), existing)


def iteration_complete(phase: PhaseSpec, tasks: Iterable[TaskState], iteration: int) -> bool:
    """True when every agent's task of ``iteration`` succeeded."""
    done = {t.key for t in tasks if t.status in _DONE and t.iteration == iteration}
    looped = phase.fan_out.kind is FanOutKind.ITERATIVE
    return done >= _planned_keys(phase.agents, iteration if looped else None)


def fan_out_complete(phase: PhaseSpec, tasks: Sequence[TaskState], loop_done: bool) -> bool:
    """True when the attempt has every task it will ever have, all succeeded: time to fan in."""
    if phase.fan_out.kind is not FanOutKind.ITERATIVE:
        return iteration_complete(phase, tasks, 1) if tasks else False
    assert phase.loop is not None
    current = max((task.iteration for task in tasks), default=0)
    return (
        current > 0
        and iteration_complete(phase, tasks, current)
        and (loop_done or current >= phase.loop.max_iterations)
    )
