"""Fan-out: branch keys and which tasks each mode creates now."""

from __future__ import annotations

import pytest
from tests.unit.engine.factories import phase_spec, task, tasks_for

from ideamine.config.model import FanOutKind, PhaseSpec
from ideamine.engine.fanout import branch_key, fan_out_complete, next_tasks
from ideamine.engine.snapshot import TaskPlan, TaskState
from ideamine.engine.states import TaskStatus

S, R, F, P = TaskStatus.SUCCEEDED, TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.PENDING
AGENTS = ("Alpha", "Beta", "Gamma", "Delta", "Epsilon")


def _keys(plans: list[TaskPlan]) -> list[str]:
    return [plan.key for plan in plans]


# branch keys


def test_branch_key_of_a_phase_agent() -> None:
    assert branch_key(2, "PersonaAgent") == "02.PersonaAgent"


def test_branch_key_of_a_loop_agent_carries_the_iteration() -> None:
    assert branch_key(1, "StoryTesterAgent", 4) == "004.01.StoryTesterAgent"


def test_branch_keys_sort_in_config_order_past_ten_agents() -> None:
    # Names chosen to sort the other way round alphabetically.
    agents = [f"{chr(ord('z') - index)}Agent" for index in range(12)]
    keys = [branch_key(index, agent) for index, agent in enumerate(agents)]
    assert sorted(keys) == keys


def test_loop_branch_keys_sort_by_iteration_then_config_order() -> None:
    keys = [
        branch_key(index, agent, iteration)
        for iteration in (1, 2, 9, 10, 11)
        for index, agent in enumerate(["Zed", "Amy"])
    ]
    assert sorted(keys) == keys


# sequential


def test_sequential_starts_with_the_first_agent_only() -> None:
    phase = phase_spec("p", agents=AGENTS[:3], kind=FanOutKind.SEQUENTIAL)
    assert next_tasks(phase, (), loop_done=False) == [
        TaskPlan(key="00.Alpha", agent="Alpha", iteration=1)
    ]


@pytest.mark.parametrize("status", [P, R, F])
def test_sequential_waits_until_the_previous_task_succeeded(status: TaskStatus) -> None:
    phase = phase_spec("p", agents=AGENTS[:3], kind=FanOutKind.SEQUENTIAL)
    assert next_tasks(phase, tasks_for(phase, [S, status]), loop_done=False) == []


def test_sequential_creates_the_next_agent_after_success() -> None:
    phase = phase_spec("p", agents=AGENTS[:3], kind=FanOutKind.SEQUENTIAL)
    assert _keys(next_tasks(phase, tasks_for(phase, [S, S]), loop_done=False)) == ["02.Gamma"]


def test_sequential_has_nothing_left_when_all_succeeded() -> None:
    phase = phase_spec("p", agents=AGENTS[:3], kind=FanOutKind.SEQUENTIAL)
    assert next_tasks(phase, tasks_for(phase, [S, S, S]), loop_done=False) == []


# parallel, batch, partial


def test_parallel_creates_every_task_at_once() -> None:
    phase = phase_spec("p", agents=AGENTS, kind=FanOutKind.PARALLEL)
    plans = next_tasks(phase, (), loop_done=False)
    assert _keys(plans) == [branch_key(index, agent) for index, agent in enumerate(AGENTS)]
    assert all(plan.iteration == 1 for plan in plans)


def test_parallel_creates_only_missing_tasks() -> None:
    phase = phase_spec("p", agents=AGENTS[:3], kind=FanOutKind.PARALLEL)
    existing = (task(1, "Beta", R),)
    assert _keys(next_tasks(phase, existing, loop_done=False)) == ["00.Alpha", "02.Gamma"]


def test_batch_opens_at_most_n_tasks() -> None:
    phase = phase_spec("p", agents=AGENTS, kind=FanOutKind.BATCH, limit=2)
    assert _keys(next_tasks(phase, (), loop_done=False)) == ["00.Alpha", "01.Beta"]


def test_batch_waits_while_n_tasks_are_open() -> None:
    phase = phase_spec("p", agents=AGENTS, kind=FanOutKind.BATCH, limit=2)
    assert next_tasks(phase, tasks_for(phase, [R, P]), loop_done=False) == []


@pytest.mark.parametrize("finished", [S, F])
def test_batch_refills_a_slot_when_a_task_finishes(finished: TaskStatus) -> None:
    phase = phase_spec("p", agents=AGENTS, kind=FanOutKind.BATCH, limit=2)
    existing = tasks_for(phase, [finished, R])
    assert _keys(next_tasks(phase, existing, loop_done=False)) == ["02.Gamma"]


@pytest.mark.parametrize(("count", "opened"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)])
def test_partial_opens_half_rounded_up(count: int, opened: int) -> None:
    phase = phase_spec("p", agents=AGENTS[:count], kind=FanOutKind.PARTIAL)
    assert len(next_tasks(phase, (), loop_done=False)) == opened


def test_partial_refills_up_to_half() -> None:
    phase = phase_spec("p", agents=AGENTS, kind=FanOutKind.PARTIAL)  # 3 at a time
    existing = tasks_for(phase, [S, S, R])
    assert _keys(next_tasks(phase, existing, loop_done=False)) == ["03.Delta", "04.Epsilon"]


# iterative


def _loop(max_iterations: int = 3) -> PhaseSpec:
    return phase_spec(
        "loop",
        agents=("Writer", "Tester"),
        kind=FanOutKind.ITERATIVE,
        max_iterations=max_iterations,
    )


def _iteration(number: int, *statuses: TaskStatus) -> tuple[TaskState, ...]:
    return tasks_for(_loop(), statuses, iteration=number)


def test_iterative_starts_iteration_one_with_its_first_agent() -> None:
    assert next_tasks(_loop(), (), loop_done=False) == [
        TaskPlan(key="001.00.Writer", agent="Writer", iteration=1)
    ]


def test_iterative_runs_agents_of_an_iteration_in_order() -> None:
    plans = next_tasks(_loop(), _iteration(1, S), loop_done=False)
    assert plans == [TaskPlan(key="001.01.Tester", agent="Tester", iteration=1)]


@pytest.mark.parametrize("status", [P, R, F])
def test_iterative_waits_for_the_whole_iteration(status: TaskStatus) -> None:
    assert next_tasks(_loop(), _iteration(1, S, status), loop_done=False) == []


def test_iterative_starts_the_next_iteration_after_all_succeeded() -> None:
    plans = next_tasks(_loop(), _iteration(1, S, S), loop_done=False)
    assert plans == [TaskPlan(key="002.00.Writer", agent="Writer", iteration=2)]


def test_iterative_continues_inside_a_later_iteration() -> None:
    existing = (*_iteration(1, S, S), *_iteration(2, S))
    assert _keys(next_tasks(_loop(), existing, loop_done=False)) == ["002.01.Tester"]


def test_iterative_stops_when_the_loop_is_done() -> None:
    assert next_tasks(_loop(), _iteration(1, S, S), loop_done=True) == []


def test_iterative_stops_at_max_iterations() -> None:
    existing = (*_iteration(1, S, S), *_iteration(2, S, S))
    assert next_tasks(_loop(max_iterations=2), existing, loop_done=False) == []


# fan_out_complete


def test_fan_out_is_not_complete_without_tasks() -> None:
    assert not fan_out_complete(phase_spec("p", agents=AGENTS[:2]), (), loop_done=False)


@pytest.mark.parametrize(
    ("statuses", "complete"),
    [
        ([S, S, S], True),
        ([S, S], False),
        ([S, R, S], False),
        ([S, F, S], False),
        ([P, S, S], False),
    ],
)
def test_fan_out_complete_when_every_agent_succeeded(
    statuses: list[TaskStatus], complete: bool
) -> None:
    phase = phase_spec("p", agents=AGENTS[:3], kind=FanOutKind.BATCH, limit=2)
    assert fan_out_complete(phase, tasks_for(phase, statuses), loop_done=False) is complete


def test_loop_fan_out_is_not_complete_without_tasks() -> None:
    assert not fan_out_complete(_loop(), (), loop_done=True)


def test_loop_fan_out_is_not_complete_mid_iteration() -> None:
    assert not fan_out_complete(_loop(), _iteration(1, S, R), loop_done=True)


def test_loop_fan_out_is_not_complete_while_more_iterations_may_follow() -> None:
    assert not fan_out_complete(_loop(), _iteration(1, S, S), loop_done=False)


def test_loop_fan_out_is_complete_when_the_loop_is_done() -> None:
    assert fan_out_complete(_loop(), _iteration(1, S, S), loop_done=True)


def test_loop_fan_out_is_complete_at_max_iterations() -> None:
    existing = (*_iteration(1, S, S), *_iteration(2, S, S))
    assert fan_out_complete(_loop(max_iterations=2), existing, loop_done=False)
