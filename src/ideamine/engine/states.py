"""Run, phase and task statuses and the transitions each state machine allows."""

from __future__ import annotations

from enum import StrEnum

from ideamine.errors import IllegalTransitionError

__all__ = ["PhaseStatus", "RunStatus", "TaskStatus", "check_transition"]


class RunStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    NEEDS_ATTENTION = "needs_attention"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the terminal statuses (resume can reopen only ``failed``)."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)

    @property
    def final(self) -> bool:
        """True for the statuses no run leaves (``completed``, ``cancelled``)."""
        return not _RUN[self]


class PhaseStatus(StrEnum):
    RUNNING = "running"  # tasks fanning out
    READY = "ready"  # fanned in, artifacts recorded, awaiting the gate
    PASSED = "passed"
    FAILED = "failed"


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an optional agent the unsticker gave up on

    @property
    def done(self) -> bool:
        """True when the task will not run again and its phase may fan in without it."""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED)


_RUN: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.CREATED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.PAUSED,
            RunStatus.NEEDS_ATTENTION,
            RunStatus.COMPLETED,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
        }
    ),
    RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.NEEDS_ATTENTION: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.FAILED: frozenset({RunStatus.RUNNING}),  # resume reopens a failed run
    RunStatus.COMPLETED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
_PHASE: dict[PhaseStatus, frozenset[PhaseStatus]] = {
    PhaseStatus.RUNNING: frozenset({PhaseStatus.READY, PhaseStatus.FAILED}),
    PhaseStatus.READY: frozenset({PhaseStatus.PASSED, PhaseStatus.FAILED}),
    PhaseStatus.PASSED: frozenset(),
    # resume retries the attempt; a person's waiver passes a failed gate
    PhaseStatus.FAILED: frozenset({PhaseStatus.RUNNING, PhaseStatus.PASSED}),
}
_TASK: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.PENDING, TaskStatus.SKIPPED}
    ),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),  # resume or retry
    TaskStatus.SUCCEEDED: frozenset(),
    TaskStatus.SKIPPED: frozenset(),
}


def check_transition(source: StrEnum, target: StrEnum) -> None:
    """Raise ``IllegalTransitionError`` unless ``source → target`` is allowed.

    Both values must be members of the same status enum.
    """
    table: dict[StrEnum, frozenset[StrEnum]]
    if isinstance(source, RunStatus):
        table, kind = _RUN, "run"  # type: ignore[assignment]
    elif isinstance(source, PhaseStatus):
        table, kind = _PHASE, "phase"  # type: ignore[assignment]
    else:
        table, kind = _TASK, "task"  # type: ignore[assignment]
    if type(target) is not type(source) or target not in table[source]:
        raise IllegalTransitionError(kind, str(source), str(target))
