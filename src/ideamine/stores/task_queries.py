"""The statements on the tasks table, shared by both stores (``queries`` has the runs, phases
and events). Each function runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ideamine.canonical import canonical_json
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.stores import queries as q
from ideamine.stores.queries import Db, Row
from ideamine.stores.records import Lease, NewTask, PhaseStart, TaskChange, TaskRecord

THROTTLED_OPTION = "budget_throttled"  # in run_options: claims of the run get half the slots

TASK_COLUMNS = (
    "id, run_id, phase, attempt, key, agent, iteration, status, tries, "
    "lease_owner, lease_expires_at, not_before, error, created_at, started_at, "
    "finished_at, stalls, batch_scale, timeout_scale, model_shift"
)


_CLAIMED_COLUMNS = ", ".join(f"t.{column.strip()}" for column in TASK_COLUMNS.split(","))


def task_from_row(row: Row) -> TaskRecord:
    return TaskRecord(
        id=row[0],
        run_id=row[1],
        phase=row[2],
        attempt=row[3],
        key=row[4],
        agent=row[5],
        iteration=row[6],
        status=q.status_of(TaskStatus, row[7], lambda: f"tasks row {row[0]!r}"),
        tries=row[8],
        lease_owner=row[9],
        lease_expires_at=row[10],
        not_before=row[11],
        error=row[12],
        created_at=row[13],
        started_at=row[14],
        finished_at=row[15],
        stalls=row[16],
        batch_scale=row[17],
        timeout_scale=row[18],
        model_shift=row[19],
    )


def change_from_row(row: Row) -> TaskChange:
    """A ``TaskChange`` from ``id, phase, attempt, key, agent, iteration, status, error``."""
    return TaskChange(
        id=row[0],
        phase=row[1],
        attempt=row[2],
        key=row[3],
        agent=row[4],
        iteration=row[5],
        status=q.status_of(TaskStatus, row[6], lambda: f"tasks row {row[0]!r}"),
        error=row[7],
    )


def _task_row(
    run_id: str, phase: str, attempt: int, task: NewTask, status: TaskStatus, at: str, revision: int
) -> tuple[object, ...]:
    """The values of a task row, as ``insert_tasks`` lists its columns."""
    return (
        task.id,
        run_id,
        phase,
        attempt,
        task.key,
        task.agent,
        task.iteration,
        canonical_json(task.input),
        status.value,
        at,
        task.lease_seconds,
        revision,
    )


def insert_tasks(
    db: Db,
    run_id: str,
    phase: str,
    attempt: int,
    tasks: Sequence[NewTask],
    at: str,
    leases: Mapping[str, Lease] | None = None,
) -> None:
    """Insert ``tasks`` pending, but those ``leases`` names: running, leased as a claim
    leaves a task (``lease_tasks``), started ``at``."""
    leases = leases or {}
    pending = [task for task in tasks if task.id not in leases]
    if pending:
        revision = db.next_task_revision()
        db.query_many(
            "INSERT INTO tasks (id, run_id, phase, attempt, key, agent, iteration, input, "
            "status, created_at, lease_seconds, revision) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                _task_row(run_id, phase, attempt, task, TaskStatus.PENDING, at, revision)
                for task in pending
            ],
        )
    taken = [(task, leases[task.id]) for task in tasks if task.id in leases]
    if taken:
        revision = db.next_task_revision()
        db.query_many(
            "INSERT INTO tasks (id, run_id, phase, attempt, key, agent, iteration, input, "
            "status, created_at, lease_seconds, revision, lease_owner, lease_token, "
            "lease_expires_at, tries, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            [
                (
                    *_task_row(run_id, phase, attempt, task, TaskStatus.RUNNING, at, revision),
                    lease.owner,
                    lease.token,
                    lease.expires_at,
                    at,
                )
                for task, lease in taken
            ],
        )


def leased_as_inserted(
    run_id: str, start: PhaseStart, task: NewTask, lease: Lease, at: str
) -> TaskRecord:
    """The record of ``task``, inserted leased by ``insert_tasks`` (every other column at
    its default)."""
    return TaskRecord(
        id=task.id,
        run_id=run_id,
        phase=start.phase,
        attempt=start.attempt,
        key=task.key,
        agent=task.agent,
        iteration=task.iteration,
        status=TaskStatus.RUNNING,
        tries=1,
        lease_owner=lease.owner,
        lease_expires_at=lease.expires_at,
        not_before=0.0,
        error=None,
        created_at=at,
        started_at=at,
        finished_at=None,
    )


def insert_settled(
    db: Db, run_id: str, phase: str, attempt: int, task: NewTask, at: str
) -> TaskRecord:
    """Insert ``task`` as carried out already, in the transaction that creates it (a gate
    judged in its fan-in's step): succeeded after one try, started and finished ``at``."""
    row = _task_row(run_id, phase, attempt, task, TaskStatus.SUCCEEDED, at, db.next_task_revision())
    db.query(
        "INSERT INTO tasks (id, run_id, phase, attempt, key, agent, iteration, input, "
        "status, created_at, lease_seconds, revision, tries, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (*row, at, at),
    )
    settled = select_task(db, task.id)
    assert settled is not None  # inserted just above, in this transaction
    return settled


def select_tasks(db: Db, run_id: str) -> list[TaskRecord]:
    rows = db.query(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ? ORDER BY phase, attempt, key",
        (run_id,),
    )
    return [task_from_row(row) for row in rows]


def select_phase_tasks(db: Db, run_id: str, phase: str, attempt: int) -> list[TaskRecord]:
    rows = db.query(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ? AND phase = ? AND attempt = ? "
        "ORDER BY key",
        (run_id, phase, attempt),
    )
    return [task_from_row(row) for row in rows]


def select_changed_tasks(db: Db, run_id: str, since: int) -> tuple[list[TaskChange], int]:
    """The run's tasks stamped at or after revision ``since`` (migration 6), and the cursor
    for the next read.

    SQLite numbers changes in commit order, so the cursor is one past the highest revision
    read. PostgreSQL stamps transaction ids, which commit out of order: the cursor is the
    oldest transaction still running before this read (every older one is visible now), so
    rows stamped since are read again next time rather than missed.
    """
    horizon = None
    if db.dialect == "postgresql":
        horizon = int(db.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")[0][0])
    rows = db.query(
        "SELECT id, phase, attempt, key, agent, iteration, status, error, revision "
        "FROM tasks WHERE run_id = ? AND revision >= ?",
        (run_id, since),
    )
    tasks = [change_from_row(row) for row in rows]
    if horizon is not None:
        return tasks, max(since, horizon)
    return tasks, max([since - 1, *(int(row[-1]) for row in rows)]) + 1


def select_task(db: Db, task_id: str) -> TaskRecord | None:
    rows = db.query(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
    return task_from_row(rows[0]) if rows else None


def claimable(
    db: Db, run_id: str | None, now: float, limit: int, lock: str
) -> list[tuple[TaskRecord, object | None, float]]:
    """Pending tasks whose time has come, of one run or of every running run, oldest first,
    each with the checkpoint it resumes from (None for a fresh start) and its lease duration:
    read whole here, so a claim need not read what it leased back (``leased``)."""
    # From the `tasks_claim` index (migrations 9 and 12), which holds the pending tasks in the
    # claim order: one run's claim reads `limit` entries instead of sorting all its pending
    # tasks; a claim across runs starts from the running runs, never walking the tasks of
    # finished ones. The status is spelled in the SQL: the index is partial (pending only),
    # and a bound parameter would not tell the planner it may use it.
    scope = (
        "JOIN runs r ON r.id = t.run_id WHERE t.run_id = ? AND r.status = ?"
        if run_id
        else "WHERE t.run_id IN (SELECT id FROM runs WHERE status = ?)"
    )
    rows = db.query(
        f"SELECT {_CLAIMED_COLUMNS}, t.checkpoint, t.lease_seconds FROM tasks t {scope} "
        f"AND t.status = '{TaskStatus.PENDING.value}' AND t.not_before <= ? "
        f"ORDER BY t.created_at, t.run_id, t.phase, t.key LIMIT ?{lock}",
        (
            *([run_id] if run_id else []),
            RunStatus.RUNNING.value,
            now,
            limit,
        ),
    )
    return [
        (
            task_from_row(row),
            q.load_json(row[-2], f"tasks row {row[0]!r}") if row[-2] else None,
            float(row[-1]),
        )
        for row in rows
    ]


def any_claimable(db: Db, run_id: str, now: float) -> bool:
    """Whether a task of ``run_id`` waits to be claimed (pending, its time come)."""
    rows = db.query(  # the status spelled in the SQL, as `claimable` does
        f"SELECT 1 FROM tasks WHERE run_id = ? AND status = '{TaskStatus.PENDING.value}' "
        "AND not_before <= ? LIMIT 1",
        (run_id, now),
    )
    return bool(rows)


def select_throttled(db: Db, run_id: str | None) -> frozenset[str]:
    """Running runs (or just ``run_id``) whose claims are capped at half a process's
    concurrency: their options carry ``THROTTLED_OPTION`` (``stores.usage`` sets and clears
    it with the budget events). Here rather than beside the run options because claims, in
    ``SqlStore`` (which ``stores.options`` and ``stores.usage`` import), read it."""
    # Matched here rather than by ``LIKE ?``: SQLite prepares a statement whose LIKE pattern
    # is bound again at every execution, which made this read cost 6 lookups by key; a
    # claim makes it in every step that starts tasks.
    sql = (
        "SELECT o.run_id, o.options FROM run_options o JOIN runs r ON r.id = o.run_id "
        "WHERE r.status = ?"
    )
    params: list[object] = [RunStatus.RUNNING.value]
    if run_id is not None:
        sql += " AND o.run_id = ?"
        params.append(run_id)
    marker = f'"{THROTTLED_OPTION}":true'  # as canonical JSON spells it
    return frozenset(str(row[0]) for row in db.query(sql, params) if marker in str(row[1]))


def select_leased(db: Db, task_id: str) -> tuple[TaskRecord, str | None] | None:
    """The task and its lease token (None unless it is running), in one read."""
    return select_leased_many(db, [task_id]).get(task_id)


def select_leased_many(db: Db, task_ids: Sequence[str]) -> dict[str, tuple[TaskRecord, str | None]]:
    """``select_leased`` of several tasks in one read, by task id (missing ones left out).

    On PostgreSQL the rows stay locked until commit (in id order, so two writers cannot wait
    on each other), so the reaper cannot hand a task to another worker between this check of
    its token and the caller's write. SQLite's one writer already excludes that."""
    lock = " ORDER BY id FOR UPDATE" if db.dialect == "postgresql" else ""
    return {
        task_id: (task, token if task.status is TaskStatus.RUNNING else None)
        for task_id, (task, token) in _tasks_with(db, "lease_token", task_ids, lock).items()
    }


def lease_tasks(db: Db, leases: Sequence[tuple[str, str, float]], *, owner: str, at: str) -> None:
    """Lease each (task id, token, expires at) to ``owner``."""
    revision = db.next_task_revision()
    db.query_many(
        "UPDATE tasks SET status = ?, lease_owner = ?, lease_token = ?, "
        "lease_expires_at = ?, tries = tries + 1, started_at = ?, revision = ? WHERE id = ?",
        [
            (TaskStatus.RUNNING.value, owner, token, expires_at, at, revision, task_id)
            for task_id, token, expires_at in leases
        ],
    )


def leased(task: TaskRecord, *, owner: str, expires_at: float, at: str) -> TaskRecord:
    """``task`` as ``lease_tasks`` leaves it, leased to ``owner`` until ``expires_at``.
    Spelled out rather than ``dataclasses.replace``d, which costs twice as much (a
    claim makes one per task it takes)."""
    return TaskRecord(
        id=task.id,
        run_id=task.run_id,
        phase=task.phase,
        attempt=task.attempt,
        key=task.key,
        agent=task.agent,
        iteration=task.iteration,
        status=TaskStatus.RUNNING,
        tries=task.tries + 1,
        lease_owner=owner,
        lease_expires_at=expires_at,
        not_before=task.not_before,
        error=task.error,
        created_at=task.created_at,
        started_at=at,
        finished_at=task.finished_at,
        stalls=task.stalls,
        batch_scale=task.batch_scale,
        timeout_scale=task.timeout_scale,
        model_shift=task.model_shift,
    )


def _tasks_with(
    db: Db, column: str, task_ids: Sequence[str], suffix: str = ""
) -> dict[str, tuple[TaskRecord, Any]]:
    """Tasks by id, each with the value of one more ``column``, in one read."""
    if not task_ids:
        return {}
    marks = ", ".join("?" * len(task_ids))
    rows = db.query(
        f"SELECT {TASK_COLUMNS}, {column} FROM tasks WHERE id IN ({marks}){suffix}",
        tuple(task_ids),
    )
    return {str(row[0]): (task_from_row(row), row[-1]) for row in rows}


def finish_task(
    db: Db, task_id: str, status: TaskStatus, at: str, *, error: str | None, not_before: float = 0.0
) -> None:
    finish_tasks(db, [task_id], status, at, error=error, not_before=not_before)


def finish_tasks(
    db: Db,
    task_ids: Sequence[str],
    status: TaskStatus,
    at: str,
    *,
    error: str | None,
    not_before: float = 0.0,
) -> None:
    """Move each task to ``status``, dropping its lease."""
    finished = at if status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED) else None
    text = q.plain_text(error)
    revision = db.next_task_revision()
    db.query_many(
        "UPDATE tasks SET status = ?, error = ?, finished_at = ?, not_before = ?, "
        "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, revision = ? "
        "WHERE id = ?",
        [(status.value, text, finished, not_before, revision, task_id) for task_id in task_ids],
    )
