"""Coordination between processes: which runs are live, who advances a run, and taking
back the tasks of processes that stopped heartbeating (with the unsticker's remedy).

``Coordination`` is a base of ``SqlStore``; the SQL lives here, written once for both dialects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from ideamine.clock import Clock, iso
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus, check_transition
from ideamine.engine.unstick import Remedy, Strategy
from ideamine.errors import RunStateError
from ideamine.stores import queries as q
from ideamine.stores import task_queries as tq
from ideamine.stores.checked import escalate, fenced, require_run
from ideamine.stores.queries import RUN_READ, Db, run_from_row
from ideamine.stores.records import EventDraft, RunRecord, TaskRecord, latest_attempts

__all__ = ["Coordination"]

T = TypeVar("T")


class Coordination(ABC):
    """The ``Store`` methods that let many processes share runs."""

    _clock: Clock

    @abstractmethod
    async def _transaction(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work`` in one transaction (each dialect provides it)."""

    async def _read(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work``, which only reads, in a transaction of its own; a dialect may do it
        more cheaply (SQLite reads a snapshot on the caller's thread)."""
        return await self._transaction(work)

    def _now(self) -> str:
        return iso(self._clock.now())

    async def active_runs(self, limit: int = 1000) -> list[RunRecord]:
        return await self._read(lambda db: select_active_runs(db, limit))

    async def hold_advance(self, run_id: str, *, owner: str, seconds: float, now: float) -> bool:
        return await self._transaction(
            lambda db: hold_advance_query(db, run_id, owner, now + seconds, now)
        )

    async def start_run(
        self, run_id: str, event: EventDraft, *, driver: str, seconds: float, now: float
    ) -> bool:
        def work(db: q.Db) -> bool:
            at = self._now()
            db.lock_run(run_id)  # the run's lock before its rows, as every writer of a run
            run = require_run(db, run_id)
            check_transition(run.status, RunStatus.RUNNING)
            q.update_run(db, run_id, RunStatus.RUNNING, at, error=None, driver=driver)
            q.append_event(db, run_id, event, at)
            return hold_advance_query(db, run_id, driver, now + seconds, now)

        return await self._transaction(work)

    async def release_advance(self, run_id: str, *, owner: str) -> None:
        await self._transaction(lambda db: release_advance_query(db, run_id, owner))

    async def expired_tasks(self, *, now: float, limit: int = 100) -> list[TaskRecord]:
        return await self._read(lambda db: select_expired(db, now, limit, ""))

    async def reclaim_task(
        self, task: TaskRecord, *, now: float, remedy: Remedy, cause: str
    ) -> bool:
        def work(db: q.Db) -> bool:
            at = self._now()
            status = (
                TaskStatus.SKIPPED
                if remedy.strategy is Strategy.SKIP_OPTIONAL
                else TaskStatus.PENDING
            )
            settings = (remedy.batch_scale, remedy.timeout_scale, remedy.model_shift)
            if not reclaim(db, task.id, status, now, settings):
                return False  # renewed or taken meanwhile
            q.append_event(
                db,
                task.run_id,
                EventDraft(
                    type="phase.stalled",
                    phase=task.phase,
                    task_id=task.id,
                    payload={
                        "key": task.key,
                        "cause": cause,
                        "owner": task.lease_owner,
                        "stalls": task.stalls + 1,
                    },
                ),
                at,
            )
            q.append_event(
                db,
                task.run_id,
                EventDraft(
                    type="task.retry",
                    phase=task.phase,
                    task_id=task.id,
                    payload={
                        "key": task.key,
                        "strategy": remedy.strategy.value,
                        "batch_scale": remedy.batch_scale,
                        "timeout_scale": remedy.timeout_scale,
                        "model_shift": remedy.model_shift,
                    },
                ),
                at,
            )
            if remedy.strategy is Strategy.ESCALATE:
                escalate(db, task.run_id, f"task {task.key} stalled {task.stalls + 1} times", at)
            return True

        return await self._transaction(work)

    async def release_task(self, task_id: str, token: str, *, reason: str) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            task = fenced(db, task_id, token)
            tq.finish_task(db, task_id, TaskStatus.PENDING, at, error=None)
            _released(db, task, reason, at)

        await self._transaction(work)

    async def release_unrun(
        self, run_id: str, *, owner: str, running: Collection[str], reason: str
    ) -> list[str]:
        def work(db: q.Db) -> list[str]:
            at = self._now()
            unrun = [
                task
                for task in tq.select_tasks(db, run_id)
                if task.status is TaskStatus.RUNNING
                and task.lease_owner == owner
                and task.id not in running
            ]
            if not unrun:
                return []
            tq.finish_tasks(db, [task.id for task in unrun], TaskStatus.PENDING, at, error=None)
            for task in unrun:
                _released(db, task, reason, at)
            return [task.id for task in unrun]

        return await self._transaction(work)

    async def retry_phase(self, run_id: str, phase: str, *, reason: str) -> int:
        def work(db: q.Db) -> int:
            at = self._now()
            run = require_run(db, run_id)
            latest = latest_attempts(q.select_phases(db, run_id)).get(phase)
            if latest is None or latest.status is PhaseStatus.PASSED:
                state = "has not started" if latest is None else "has passed"
                raise RunStateError(
                    run_id,
                    f"phase {phase} of run {run_id} {state}; "
                    "only a failed or running phase can be retried",
                    hint="`ideamine status RUN` shows each phase",
                )
            if latest.status is not PhaseStatus.FAILED:
                q.update_phase(
                    db,
                    run_id,
                    phase,
                    latest.attempt,
                    PhaseStatus.FAILED,
                    at,
                    "superseded by a retry",
                )
            q.insert_phase(db, run_id, phase, latest.attempt + 1, at)
            q.append_event(
                db,
                run_id,
                EventDraft(
                    type="phase.started",
                    phase=phase,
                    payload={"attempt": latest.attempt + 1, "reason": reason},
                ),
                at,
            )
            if run.status is not RunStatus.RUNNING:
                check_transition(run.status, RunStatus.RUNNING)
                q.update_run(db, run_id, RunStatus.RUNNING, at, error=None, driver=run.driver)
                q.append_event(
                    db,
                    run_id,
                    EventDraft(
                        type="run.resumed",
                        payload={
                            "reason": f"retry of phase {phase}",
                            "previous_status": run.status.value,
                        },
                    ),
                    at,
                )
            return latest.attempt + 1

        return await self._transaction(work)


def select_active_runs(db: Db, limit: int) -> list[RunRecord]:
    rows = db.query(
        f"SELECT {RUN_READ} FROM runs WHERE status IN (?, ?) ORDER BY created_at, id LIMIT ?",
        (RunStatus.CREATED.value, RunStatus.RUNNING.value, limit),
    )
    return [run_from_row(db, row) for row in rows]


def hold_advance_query(db: Db, run_id: str, owner: str, until: float, now: float) -> bool:
    """Take or renew the run's advance lease unless someone else holds an unexpired one."""
    rows = db.query(
        "UPDATE runs SET advance_owner = ?, advance_expires_at = ? WHERE id = ? AND "
        "(advance_owner IS NULL OR advance_owner = ? OR advance_expires_at < ?) RETURNING id",
        (owner, until, run_id, owner, now),
    )
    return bool(rows)


def release_advance_query(db: Db, run_id: str, owner: str) -> None:
    db.query(
        "UPDATE runs SET advance_owner = NULL, advance_expires_at = NULL "
        "WHERE id = ? AND advance_owner = ?",
        (run_id, owner),
    )


def select_expired(db: Db, now: float, limit: int, lock: str) -> list[TaskRecord]:
    # The status written into the statement, not bound: only then may the planner use the
    # partial index `tasks_leased` (migration 10), which holds running tasks in expiry order.
    rows = db.query(
        f"SELECT {tq.TASK_COLUMNS} FROM tasks t WHERE status = '{TaskStatus.RUNNING.value}' "
        f"AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?{lock}",
        (now, limit),
    )
    return [tq.task_from_row(row) for row in rows]


def reclaim(
    db: Db,
    task_id: str,
    status: TaskStatus,
    now: float,
    settings: Sequence[float],
) -> bool:
    """Take an expired task back (only if its lease is still expired): a zombie holding the
    old token can no longer write, since the token is cleared."""
    rows = db.query(
        "UPDATE tasks SET status = ?, lease_owner = NULL, lease_token = NULL, "
        "lease_expires_at = NULL, stalls = stalls + 1, batch_scale = ?, timeout_scale = ?, "
        "model_shift = ?, revision = ? "
        "WHERE id = ? AND status = ? AND lease_expires_at < ? RETURNING id",
        (status.value, *settings, db.next_task_revision(), task_id, TaskStatus.RUNNING.value, now),
    )
    return bool(rows)


def _released(db: q.Db, task: TaskRecord, reason: str, at: str) -> None:
    """The ``task.retry`` event of a task handed back unfinished."""
    q.append_event(
        db,
        task.run_id,
        EventDraft(
            type="task.retry",
            phase=task.phase,
            task_id=task.id,
            payload={"key": task.key, "strategy": "released", "reason": reason},
        ),
        at,
    )
