"""The ``Store`` methods, written once over the shared queries.

A dialect subclass supplies ``_transaction`` (run a function in one transaction on a worker
thread, translating driver errors) and ``_claimable`` (how to pick a task to claim).
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from ideamine.canonical import canonical_json
from ideamine.clock import Clock, iso
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus, check_transition
from ideamine.engine.unstick import Remedy, Strategy
from ideamine.errors import OutputExistsError, RunNotFoundError, RunStateError, StaleLeaseError
from ideamine.stores import queries as q
from ideamine.stores.records import (
    ArtifactRecord,
    ClaimedTask,
    EventDraft,
    EventRecord,
    ModelCallRecord,
    NewArtifact,
    NewRun,
    NewTask,
    PhaseRecord,
    RunRecord,
    TaskRecord,
    latest_attempts,
)

__all__ = ["SqlStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class SqlStore(ABC):
    """Shared implementation of the ``Store`` protocol for SQL dialects."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    @abstractmethod
    async def _transaction(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work`` in one transaction, translating driver errors into ``StoreError``."""

    claim_lock: str = ""  # appended to the claim query: " FOR UPDATE SKIP LOCKED" on PG

    async def run_in_transaction(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work`` in one transaction. For store extensions inside ``ideamine.stores``
        (each module there keeps its own SQL); nothing outside ``stores`` may call it."""
        return await self._transaction(work)

    def _now(self) -> str:
        return iso(self._clock.now())

    # -- runs -----------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> RunRecord:
        def work(db: q.Db) -> RunRecord:
            at = self._now()
            q.insert_run(db, run, at)
            q.upsert_run_config(db, run.id, run.config_files)
            q.append_event(
                db,
                run.id,
                EventDraft(
                    type="run.created",
                    payload={
                        "idea_chars": len(run.idea),
                        "source": run.source,
                        "manifest_hash": run.manifest_hash,
                    },
                ),
                at,
            )
            return _require_run(db, run.id)

        return await self._transaction(work)

    async def run_config(self, run_id: str) -> dict[str, str]:
        def work(db: q.Db) -> dict[str, str]:
            _require_run(db, run_id)
            return q.select_run_config(db, run_id)

        return await self._transaction(work)

    async def repin_run(
        self,
        run_id: str,
        *,
        manifest: Mapping[str, str],
        manifest_hash: str,
        files: Mapping[str, str],
        changes: Sequence[str],
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            previous = _require_run(db, run_id).manifest_hash
            q.repin_run(db, run_id, manifest, manifest_hash, at)
            q.upsert_run_config(db, run_id, files)
            q.append_event(
                db,
                run_id,
                EventDraft(
                    type="run.repinned",
                    payload={"from": previous, "to": manifest_hash, "changes": list(changes)},
                ),
                at,
            )

        await self._transaction(work)

    async def get_run(self, run_id: str) -> RunRecord:
        return await self._transaction(lambda db: _require_run(db, run_id))

    async def list_runs(self, limit: int = 50) -> list[RunRecord]:
        return await self._transaction(lambda db: q.select_runs(db, limit))

    async def set_run_status(
        self,
        run_id: str,
        status: RunStatus,
        event: EventDraft,
        *,
        error: str | None = None,
        driver: str | None = None,
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            run = _require_run(db, run_id)
            check_transition(run.status, status)
            q.update_run(db, run_id, status, at, error=error, driver=driver or run.driver)
            q.append_event(db, run_id, event, at)

        await self._transaction(work)

    async def reopen_run(
        self, run_id: str, *, driver: str, dead_owners: Sequence[str], now: float
    ) -> list[str]:
        def work(db: q.Db) -> list[str]:
            at = self._now()
            run = _require_run(db, run_id)
            if run.status is not RunStatus.RUNNING:
                check_transition(run.status, RunStatus.RUNNING)
            q.update_run(db, run_id, RunStatus.RUNNING, at, error=None, driver=driver)
            for owner in dead_owners:  # a dead process's advance lease would block us
                q.release_advance(db, run_id, owner)
            reopened = _reopen_phases(db, run_id)
            reclaimed = [
                task
                for task in q.select_tasks(db, run_id)
                if _needs_reclaim(task, dead_owners, now)
                or (task.status is TaskStatus.FAILED and (task.phase, task.attempt) in reopened)
            ]
            for task in reclaimed:
                q.finish_task(db, task.id, TaskStatus.PENDING, at, error=None)
                q.append_event(
                    db,
                    run_id,
                    EventDraft(
                        type="task.retry",
                        phase=task.phase,
                        task_id=task.id,
                        payload={
                            "key": task.key,
                            "strategy": "resume",
                            "previous_status": task.status.value,
                            "previous_owner": task.lease_owner,
                        },
                    ),
                    at,
                )
            q.append_event(
                db,
                run_id,
                EventDraft(
                    type="run.resumed",
                    payload={
                        "driver": driver,
                        "reclaimed": len(reclaimed),
                        "reopened_phases": sorted(name for name, _ in reopened),
                        "previous_status": run.status.value,
                    },
                ),
                at,
            )
            return [task.id for task in reclaimed]

        return await self._transaction(work)

    # -- phases ---------------------------------------------------------------------------

    async def start_phase(self, run_id: str, phase: str, attempt: int, event: EventDraft) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            q.insert_phase(db, run_id, phase, attempt, at)
            q.append_event(db, run_id, event, at)

        await self._transaction(work)

    async def set_phase_status(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        status: PhaseStatus,
        events: Sequence[EventDraft],
        *,
        error: str | None = None,
        run_status: RunStatus | None = None,
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            current = _require_phase(db, run_id, phase, attempt)
            check_transition(current.status, status)
            finished = at if status in (PhaseStatus.PASSED, PhaseStatus.FAILED) else None
            q.update_phase(db, run_id, phase, attempt, status, finished, error)
            if finished:
                elapsed = self._clock.now() - datetime.fromisoformat(current.started_at).timestamp()
                q.insert_phase_metrics(
                    db, run_id, phase, attempt, status.value, round(elapsed * 1000, 3), at
                )
            if run_status is not None:
                run = _require_run(db, run_id)
                check_transition(run.status, run_status)
                q.update_run(db, run_id, run_status, at, error=error, driver=run.driver)
            for event in events:
                q.append_event(db, run_id, event, at)

        await self._transaction(work)

    # -- coordination between processes ---------------------------------------------------

    async def active_runs(self, limit: int = 1000) -> list[RunRecord]:
        return await self._transaction(lambda db: q.select_active_runs(db, limit))

    async def hold_advance(self, run_id: str, *, owner: str, seconds: float, now: float) -> bool:
        return await self._transaction(
            lambda db: q.hold_advance(db, run_id, owner, now + seconds, now)
        )

    async def release_advance(self, run_id: str, *, owner: str) -> None:
        await self._transaction(lambda db: q.release_advance(db, run_id, owner))

    async def expired_tasks(self, *, now: float, limit: int = 100) -> list[TaskRecord]:
        return await self._transaction(lambda db: q.select_expired(db, now, limit, ""))

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
            if not q.reclaim(db, task.id, status, now, settings):
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
                _escalate(db, task.run_id, f"task {task.key} stalled {task.stalls + 1} times", at)
            return True

        return await self._transaction(work)

    async def release_task(self, task_id: str, token: str, *, reason: str) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            task = _fenced(db, task_id, token)
            q.finish_task(db, task_id, TaskStatus.PENDING, at, error=None)
            q.append_event(
                db,
                task.run_id,
                EventDraft(
                    type="task.retry",
                    phase=task.phase,
                    task_id=task_id,
                    payload={"key": task.key, "strategy": "released", "reason": reason},
                ),
                at,
            )

        await self._transaction(work)

    async def retry_phase(self, run_id: str, phase: str, *, reason: str) -> int:
        def work(db: q.Db) -> int:
            at = self._now()
            run = _require_run(db, run_id)
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

    # -- tasks ----------------------------------------------------------------------------

    async def create_tasks(
        self, run_id: str, phase: str, attempt: int, tasks: Sequence[NewTask], event: EventDraft
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            q.insert_tasks(db, run_id, phase, attempt, tasks, at)
            q.append_event(db, run_id, event, at)

        await self._transaction(work)

    async def claim_tasks(
        self,
        run_id: str | None,
        *,
        owner: str,
        now: float,
        limit: int,
        lease_seconds: float | None = None,
    ) -> list[ClaimedTask]:
        def work(db: q.Db) -> list[ClaimedTask]:
            at = self._now()
            claimed = []
            found = q.claimable(db, run_id, now, limit, self.claim_lock)
            # Lock every run involved in one order, so claimers spanning runs cannot deadlock.
            for locked in sorted({q.run_of_task(db, task_id) for task_id, _ in found}):
                db.lock_run(locked)
            for task_id, own_lease in found:
                token = uuid.uuid4().hex
                lease = own_lease if lease_seconds is None else lease_seconds
                q.lease_task(db, task_id, owner=owner, token=token, expires_at=now + lease, at=at)
                task = q.select_task(db, task_id)
                assert task is not None
                q.append_event(
                    db,
                    task.run_id,
                    EventDraft(
                        type="task.started",
                        phase=task.phase,
                        task_id=task.id,
                        payload={
                            "key": task.key,
                            "agent": task.agent,
                            "attempt": task.attempt,
                            "try": task.tries,
                            "owner": owner,
                        },
                    ),
                    at,
                )
                claimed.append(
                    ClaimedTask(
                        task=task, lease_token=token, checkpoint=q.checkpoint_of(db, task_id)
                    )
                )
            return claimed

        if limit <= 0:
            return []
        return await self._transaction(work)

    async def append_event(self, run_id: str, event: EventDraft) -> None:
        def work(db: q.Db) -> None:
            _require_run(db, run_id)
            q.append_event(db, run_id, event, self._now())

        await self._transaction(work)

    async def renew_lease(
        self, task_id: str, token: str, *, lease_seconds: float, now: float
    ) -> None:
        def work(db: q.Db) -> None:
            task = _fenced(db, task_id, token)
            db.query(
                "UPDATE tasks SET lease_expires_at = ? WHERE id = ?", (now + lease_seconds, task_id)
            )
            q.append_event(
                db,
                task.run_id,
                EventDraft(
                    type="task.heartbeat",
                    phase=task.phase,
                    task_id=task_id,
                    payload={"key": task.key, "lease_expires_at": now + lease_seconds},
                ),
                self._now(),
            )

        await self._transaction(work)

    async def save_checkpoint(self, task_id: str, token: str, data: object) -> None:
        def work(db: q.Db) -> None:
            task = _fenced(db, task_id, token)
            text = canonical_json(data)
            db.query("UPDATE tasks SET checkpoint = ? WHERE id = ?", (text, task_id))
            q.append_event(
                db,
                task.run_id,
                EventDraft(
                    type="task.checkpoint",
                    phase=task.phase,
                    task_id=task_id,
                    payload={"key": task.key, "bytes": len(text.encode())},
                ),
                self._now(),
            )

        await self._transaction(work)

    async def record_output(
        self,
        task_id: str,
        token: str,
        output: object,
        calls: Sequence[ModelCallRecord],
        payload: Mapping[str, object],
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            task = _fenced(db, task_id, token)
            if q.output_exists(db, task):
                raise OutputExistsError(task_id)
            q.insert_output(db, task, output, at)
            for call in calls:
                q.insert_model_call(db, task.run_id, task_id, call, at)
            q.finish_task(db, task_id, TaskStatus.SUCCEEDED, at, error=None)
            q.append_event(
                db,
                task.run_id,
                EventDraft(
                    type="task.succeeded",
                    phase=task.phase,
                    task_id=task_id,
                    payload={"key": task.key, "agent": task.agent, **payload},
                ),
                at,
            )

        await self._transaction(work)

    async def fail_task(
        self,
        task_id: str,
        token: str,
        *,
        error: str,
        retry_at: float | None,
        strategy: str,
        calls: Sequence[ModelCallRecord] = (),
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            task = _fenced(db, task_id, token)
            for call in calls:
                q.insert_model_call(db, task.run_id, task_id, call, at)
            base = {"key": task.key, "agent": task.agent, "try": task.tries, "error": error}
            if retry_at is None:
                q.finish_task(db, task_id, TaskStatus.FAILED, at, error=error)
                draft = EventDraft(
                    type="task.failed", phase=task.phase, task_id=task_id, payload=base
                )
            else:
                q.finish_task(db, task_id, TaskStatus.PENDING, at, error=error, not_before=retry_at)
                draft = EventDraft(
                    type="task.retry",
                    phase=task.phase,
                    task_id=task_id,
                    payload={**base, "strategy": strategy, "retry_at": iso(retry_at)},
                )
            q.append_event(db, task.run_id, draft, at)

        await self._transaction(work)

    # -- reads and artifacts --------------------------------------------------------------

    async def run_rows(self, run_id: str) -> tuple[RunRecord, list[PhaseRecord], list[TaskRecord]]:
        def work(db: q.Db) -> tuple[RunRecord, list[PhaseRecord], list[TaskRecord]]:
            return (
                _require_run(db, run_id),
                q.select_phases(db, run_id),
                q.select_tasks(db, run_id),
            )

        return await self._transaction(work)

    async def outputs(self, run_id: str, phase: str, attempt: int) -> dict[str, object]:
        return await self._transaction(lambda db: q.select_outputs(db, run_id, phase, attempt))

    async def record_artifacts(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        event: EventDraft,
    ) -> list[ArtifactRecord]:
        def work(db: q.Db) -> list[ArtifactRecord]:
            at = self._now()
            check_transition(_require_phase(db, run_id, phase, attempt).status, PhaseStatus.READY)
            records = [
                q.insert_artifact(db, run_id, phase, attempt, artifact, uuid.uuid4().hex, at)
                for artifact in artifacts
            ]
            q.update_phase(db, run_id, phase, attempt, PhaseStatus.READY, None, None)
            ids = {record.type: record.id for record in records}
            q.append_event(
                db,
                run_id,
                EventDraft(
                    type=event.type, phase=event.phase, payload={**event.payload, "artifacts": ids}
                ),
                at,
            )
            return records

        return await self._transaction(work)

    async def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        return await self._transaction(lambda db: q.select_artifacts(db, run_id))

    async def blob(self, content_hash: str) -> object:
        return await self._transaction(lambda db: q.select_blob(db, content_hash))

    async def events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        return await self._transaction(lambda db: q.select_events(db, run_id, after_id, limit))

    async def model_calls(self, run_id: str) -> list[dict[str, object]]:
        return await self._transaction(lambda db: q.select_model_calls(db, run_id))


def _escalate(db: q.Db, run_id: str, reason: str, at: str) -> None:
    run = _require_run(db, run_id)
    if run.status is RunStatus.RUNNING:
        q.update_run(db, run_id, RunStatus.NEEDS_ATTENTION, at, error=reason, driver=run.driver)
        q.append_event(
            db, run_id, EventDraft(type="run.needs_attention", payload={"reason": reason}), at
        )


def _require_run(db: q.Db, run_id: str) -> RunRecord:
    run = q.select_run(db, run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def _require_phase(db: q.Db, run_id: str, phase: str, attempt: int) -> PhaseRecord:
    for record in q.select_phases(db, run_id):
        if record.phase == phase and record.attempt == attempt:
            return record
    raise RunNotFoundError(f"{run_id}/{phase}#{attempt}")


def _fenced(db: q.Db, task_id: str, token: str) -> TaskRecord:
    """The task, if ``token`` is still its lease token (invariant 3); else reject and log."""
    current = q.lease_token_of(db, task_id)
    task = q.select_task(db, task_id)
    if task is None or current is None or current != token:
        log.warning("rejected a write for task %s: stale lease token", task_id)
        raise StaleLeaseError(task_id)
    return task


def _needs_reclaim(task: TaskRecord, dead_owners: Sequence[str], now: float) -> bool:
    if task.status is not TaskStatus.RUNNING:
        return False
    expired = task.lease_expires_at is not None and task.lease_expires_at < now
    return expired or task.lease_owner in dead_owners


def _reopen_phases(db: q.Db, run_id: str) -> set[tuple[str, int]]:
    """Failed latest phase attempts go back to running so their failed tasks can retry."""
    latest = latest_attempts(q.select_phases(db, run_id)).values()
    reopened = {(r.phase, r.attempt) for r in latest if r.status is PhaseStatus.FAILED}
    for name, attempt in reopened:
        q.update_phase(db, run_id, name, attempt, PhaseStatus.RUNNING, None, None)
    return reopened
