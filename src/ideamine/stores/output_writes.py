"""Recording agents' outputs, shared by both dialects: which of a transaction's output writes
it accepts (the task's lease held, its slot still empty, the output and its model calls JSON)
and the rows an accepted write adds. Each function runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from ideamine.canonical import canonical_json, sha256_hex
from ideamine.engine.states import TaskStatus
from ideamine.errors import OutputExistsError, StoreError
from ideamine.stores import outputs as o
from ideamine.stores import queries as q
from ideamine.stores import task_queries as tq
from ideamine.stores.checked import stale
from ideamine.stores.records import EventDraft, OutputWrite, TaskRecord

__all__ = ["Accepted", "insert", "vet"]

Accepted = tuple[TaskRecord, OutputWrite, str]  # a write accepted, with its output's JSON


def _not_json(task_id: str, exc: Exception) -> StoreError:
    """The error that rejects task ``task_id``'s output write, caused by ``exc``."""
    error = StoreError(
        f"the output (or a model call's parameters) of task {task_id} is not JSON ({exc})",
        hint="an agent must return JSON values (no NaN, sets or objects); nothing was written",
    )
    error.__cause__ = exc
    return error


def vet(db: q.Db, writes: Sequence[OutputWrite]) -> tuple[list[StoreError | None], list[Accepted]]:
    """Per write, in order, ``None`` or the error that rejects it (stale lease token, output
    already recorded, not JSON), and the accepted writes with their outputs' canonical JSON.
    A write after an accepted one of the same task is stale: the first ended its lease."""
    leased = tq.select_leased_many(db, [write.task_id for write in writes])
    taken = o.recorded_slots(db, [task for task, _ in leased.values()])
    errors: list[StoreError | None] = []
    accepted: list[Accepted] = []
    for write in writes:
        task, token = leased.get(write.task_id, (None, None))
        if task is None or token != write.token:  # no token unless the task is running
            errors.append(stale(write.task_id))
            continue
        slot = (task.run_id, task.phase, task.attempt, task.key)
        if slot in taken:
            errors.append(OutputExistsError(write.task_id))
            continue
        try:
            text = write.output_json()
            for call in write.calls:
                canonical_json(call.params)  # fails here, not for the whole batch
        except (TypeError, ValueError) as exc:
            errors.append(_not_json(write.task_id, exc))
            continue
        taken.add(slot)
        leased.pop(write.task_id)  # its lease ends here: a second write is stale
        accepted.append((task, write, text))
        errors.append(None)
    return errors, accepted


def insert(db: q.Db, accepted: Sequence[Accepted], at: str) -> None:
    """The rows of accepted output writes (each with its output's canonical JSON): outputs,
    model calls, status, events."""
    digests = [sha256_hex(text) for _, _, text in accepted]
    o.insert_outputs(
        db,
        [(task, text, digest) for (task, _, text), digest in zip(accepted, digests, strict=True)],
        at,
    )
    o.insert_model_calls(
        db,
        [(task.run_id, task.id, call) for task, write, _ in accepted for call in write.calls],
        at,
    )
    tq.finish_tasks(db, [task.id for task, _, _ in accepted], TaskStatus.SUCCEEDED, at, error=None)
    succeeded = [
        (
            task.run_id,
            EventDraft(
                type="task.succeeded",
                phase=task.phase,
                task_id=task.id,
                payload={
                    "key": task.key,
                    "agent": task.agent,
                    **write.payload,
                    "output_hash": digest,
                },
            ),
        )
        for (task, write, _), digest in zip(accepted, digests, strict=True)
    ]
    q.append_events_by_run(db, succeeded, at)
