"""The last outputs of a phase attempt, recorded in the transaction that fans it in.

A phase's tasks end, their outputs are written (one commit), the advancer reads them and
fans the attempt in (a second commit), and only then do the next phase's tasks start. When
the runner driving a run holds the outputs that finish an attempt whose gate is judged in its
step (``runtime.gatestep``), it hands them to the advancer instead (``Advancer.ride``): the
fan-in reads them from here alongside the stored ones, and ``VerdictStore.record_fan_in``
writes them first, in its own transaction. One commit a phase instead of two; no task learns
its output was recorded before that commit, and a crash before it leaves the tasks running,
as a crash before the outputs' own commit would. Should any output be refused (a stale lease),
nothing is written and the outputs are recorded on their own as usual.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ideamine.canonical import canonical_json
from ideamine.engine.states import TaskStatus
from ideamine.stores.records import OutputWrite, TaskRecord

__all__ = ["Finishing", "NotRiddenError"]


class NotRiddenError(Exception):
    """The fan-in cannot take the finishing outputs along (its artifacts fail their checks,
    judging raised): nothing was written; the outputs are recorded on their own, and the next
    step fans the attempt in the usual way (failing the phase with the reason)."""


@dataclass(frozen=True, slots=True)
class Finishing:
    """Output writes not yet recorded and the running task each one finishes, all of one run
    (``of``)."""

    writes: Sequence[OutputWrite]
    tasks: Sequence[TaskRecord]
    # derived once (read per phase of every plan the ride makes): the tasks' ids, and the
    # (phase, attempt) pairs they belong to
    task_ids: frozenset[str] = field(init=False)
    attempts: frozenset[tuple[str, int]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_ids", frozenset(task.id for task in self.tasks))
        attempts = frozenset((task.phase, task.attempt) for task in self.tasks)
        object.__setattr__(self, "attempts", attempts)

    @classmethod
    def of(cls, writes: Sequence[OutputWrite], tasks: Sequence[TaskRecord]) -> Finishing | None:
        """``writes`` with their ``tasks`` (in the same order), or None unless they are
        tasks of one run, each written once, with JSON outputs (anything else is recorded
        on its own, where the store says what is wrong)."""
        if not writes or len(writes) != len(tasks):
            return None
        if len({task.run_id for task in tasks}) != 1:
            return None
        if len({write.task_id for write in writes}) != len(writes):
            return None
        if any(write.task_id != task.id for write, task in zip(writes, tasks, strict=True)):
            return None
        try:
            for write in writes:
                write.output_json()
                for call in write.calls:
                    canonical_json(call.params)
        except (TypeError, ValueError):
            return None
        return cls(writes=tuple(writes), tasks=tuple(tasks))

    @property
    def run_id(self) -> str:
        return self.tasks[0].run_id

    def outputs(self, phase: str, attempt: int) -> dict[str, object]:
        """The outputs of ``phase``'s ``attempt`` by task key, as ``Store.outputs`` reads
        them back (JSON values)."""
        return {
            task.key: json.loads(write.output_json())
            for task, write in zip(self.tasks, self.writes, strict=True)
            if (task.phase, task.attempt) == (phase, attempt)
        }

    def calls(self) -> list[dict[str, object]]:
        """The model calls the writes carry, as rows of ``Store.model_calls`` (stored after
        the run's recorded calls, in the writes' order)."""
        return [
            {
                "task_id": task.id,
                "phase": task.phase,
                "attempt": task.attempt,
                "key": task.key,
                "provider": call.provider,
                "model": call.model,
                "prompt_hash": call.prompt_hash,
                "tokens_in": call.tokens_in,
                "tokens_out": call.tokens_out,
                "cost_usd": call.cost_usd,
                "latency_ms": call.latency_ms,
                "outcome": call.outcome,
            }
            for task, write in zip(self.tasks, self.writes, strict=True)
            for call in write.calls
        ]

    def settled(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        """``tasks`` with those finishing here succeeded, as they will read once recorded."""
        ending = self.task_ids
        return [
            replace(task, status=TaskStatus.SUCCEEDED, error=None) if task.id in ending else task
            for task in tasks
        ]
