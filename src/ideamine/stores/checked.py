"""Reads that check what they find, shared by the store modules: the run or phase must
exist, and a task write must carry the current lease token (invariant 3)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.errors import RunNotFoundError, StaleLeaseError
from ideamine.stores import queries as q
from ideamine.stores import task_queries as tq
from ideamine.stores.records import EventDraft, PhaseRecord, RunRecord, TaskRecord, latest_attempts

__all__ = [
    "escalate",
    "fenced",
    "needs_reclaim",
    "reopen_phases",
    "require_phase",
    "require_run",
    "stale",
]

log = logging.getLogger("ideamine.stores.sqlstore")


def escalate(db: q.Db, run_id: str, reason: str, at: str) -> None:
    run = require_run(db, run_id)
    if run.status is RunStatus.RUNNING:
        q.update_run(db, run_id, RunStatus.NEEDS_ATTENTION, at, error=reason, driver=run.driver)
        q.append_event(
            db, run_id, EventDraft(type="run.needs_attention", payload={"reason": reason}), at
        )


def require_run(db: q.Db, run_id: str) -> RunRecord:
    run = q.select_run(db, run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def require_phase(db: q.Db, run_id: str, phase: str, attempt: int) -> PhaseRecord:
    record = q.select_phase(db, run_id, phase, attempt)
    if record is not None:
        return record
    raise RunNotFoundError(f"{run_id}/{phase}#{attempt}")


def fenced(db: q.Db, task_id: str, token: str) -> TaskRecord:
    """The task, if ``token`` is still its lease token (invariant 3); else reject and log."""
    found = tq.select_leased(db, task_id)
    if found is None or found[1] != token:  # no token unless the task is running
        raise stale(task_id)
    return found[0]


def stale(task_id: str) -> StaleLeaseError:
    """The rejection of a write about ``task_id`` with a stale lease token, logged."""
    log.warning("rejected a write for task %s: stale lease token", task_id)
    return StaleLeaseError(task_id)


def needs_reclaim(task: TaskRecord, dead_owners: Sequence[str], now: float) -> bool:
    if task.status is not TaskStatus.RUNNING:
        return False
    expired = task.lease_expires_at is not None and task.lease_expires_at < now
    return expired or task.lease_owner in dead_owners


def reopen_phases(db: q.Db, run_id: str) -> set[tuple[str, int]]:
    """Failed latest phase attempts go back to running so their failed tasks can retry."""
    latest = latest_attempts(q.select_phases(db, run_id)).values()
    reopened = {(r.phase, r.attempt) for r in latest if r.status is PhaseStatus.FAILED}
    for name, attempt in reopened:
        q.update_phase(db, run_id, name, attempt, PhaseStatus.RUNNING, None, None)
    return reopened
