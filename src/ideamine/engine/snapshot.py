"""What the engine sees of a run (a snapshot of its rows) and what it asks for (actions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus

__all__ = [
    "Action",
    "ApplyVerdict",
    "CreateTasks",
    "FailPhase",
    "FanIn",
    "FinishRun",
    "PhaseState",
    "RunSnapshot",
    "StartPhase",
    "TaskPlan",
    "TaskState",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskState:
    key: str
    agent: str
    iteration: int
    status: TaskStatus
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseState:
    """The latest attempt of one phase and its tasks."""

    attempt: int
    status: PhaseStatus
    tasks: tuple[TaskState, ...] = ()
    loop_done: bool = False  # iterative phases: the ``until`` condition held after the last
    # finished iteration (evaluated by the runtime over stored outputs)
    started_at: str | None = None  # when the attempt started, as stored (for its metrics)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSnapshot:
    run_id: str
    status: RunStatus
    phases: Mapping[str, PhaseState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPlan:
    key: str
    agent: str
    iteration: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartPhase:
    phase: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTasks:
    phase: str
    attempt: int
    tasks: tuple[TaskPlan, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FanIn:
    phase: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyVerdict:
    """The attempt's judge task finished: record its gate verdict and what follows it."""

    phase: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FailPhase:
    phase: str
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishRun:
    status: RunStatus
    reason: str = ""


Action = StartPhase | CreateTasks | FanIn | ApplyVerdict | FailPhase | FinishRun
