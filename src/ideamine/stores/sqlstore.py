"""The ``Store`` methods, written once over the shared queries.

A dialect subclass supplies ``_transaction`` (run a function in one transaction on a worker
thread, translating driver errors), ``migrate``, ``close``, ``wait_for_work`` and
``claim_lock`` (the locking clause of the claim query). Coordination between processes lives
in ``stores/coordination.py``; the SQL in ``queries.py``, ``outputs.py`` and there; what an
output write adds in ``output_writes.py``.
"""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from ideamine.canonical import canonical_json
from ideamine.clock import Clock, iso
from ideamine.engine.budget import throttled_room
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus, check_transition
from ideamine.errors import FinishingRefusedError, StoreError
from ideamine.stores import output_writes as ow
from ideamine.stores import outputs as o
from ideamine.stores import queries as q
from ideamine.stores import task_queries as tq
from ideamine.stores.checked import (
    fenced,
    needs_reclaim,
    reopen_phases,
    require_phase,
    require_run,
)
from ideamine.stores.coordination import Coordination, release_advance_query
from ideamine.stores.manifests import Manifests
from ideamine.stores.records import (
    ArtifactRecord,
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    EventRecord,
    Lease,
    LeasedAhead,
    ModelCallRecord,
    NewArtifact,
    NewRun,
    NewTask,
    OutputWrite,
    PhaseRecord,
    PhaseStart,
    ReadyAttempt,
    RunChanges,
    RunRecord,
    TaskRecord,
)

__all__ = ["SqlStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class SqlStore(Coordination):
    """Shared implementation of the ``Store`` protocol for SQL dialects."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._manifests = Manifests()  # what the dialect's `Db` hands to run reads

    @abstractmethod
    async def _transaction(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work`` in one transaction, translating driver errors into ``StoreError``."""

    claim_lock: str = ""  # appended to the claim query: " FOR UPDATE SKIP LOCKED" on PG

    @property
    def retried_writes(self) -> int:
        return 0  # a dialect whose commits can lose their reply counts them

    async def run_in_transaction(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work`` in one transaction. For store extensions inside ``ideamine.stores``
        (each module there keeps its own SQL); nothing outside ``stores`` may call it."""
        return await self._transaction(work)

    async def run_read(self, work: Callable[[q.Db], T]) -> T:
        """Run ``work``, which must only read (SQLite refuses a write there); for store
        extensions, like ``run_in_transaction``, and as cheap as the dialect allows."""
        return await self._read(work)

    def _now(self) -> str:
        return iso(self._clock.now())

    # -- runs -----------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> RunRecord:
        def work(db: q.Db) -> RunRecord:
            at = self._now()
            q.insert_run(db, run, at)
            q.upsert_run_config(db, run.id, run.config_files, run.config_compiled)
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
            return require_run(db, run.id)

        return await self._transaction(work)

    async def run_config(self, run_id: str) -> dict[str, str]:
        def work(db: q.Db) -> dict[str, str]:
            require_run(db, run_id)
            return q.select_run_config(db, run_id)

        return await self._read(work)

    async def compiled_config(self, run_id: str) -> tuple[dict[str, str], bytes | None]:
        def work(db: q.Db) -> tuple[dict[str, str], bytes | None]:
            require_run(db, run_id)
            return q.select_compiled_config(db, run_id)

        return await self._read(work)

    async def repin_run(
        self,
        run_id: str,
        *,
        manifest: Mapping[str, str],
        manifest_hash: str,
        files: Mapping[str, str],
        changes: Sequence[str],
        compiled: bytes | None = None,
    ) -> None:
        def work(db: q.Db) -> None:
            at = self._now()
            previous = require_run(db, run_id).manifest_hash
            q.repin_run(db, run_id, manifest, manifest_hash, at)
            q.upsert_run_config(db, run_id, files, compiled)
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
        return await self._read(lambda db: require_run(db, run_id))

    async def list_runs(self, limit: int = 50) -> list[RunRecord]:
        return await self._read(lambda db: q.select_runs(db, limit))

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
            # the run's lock before its rows, as a verdict takes them (one that completes the
            # run updates it): no deadlock, and the status is read as a verdict left it
            db.lock_run(run_id)
            run = require_run(db, run_id)
            check_transition(run.status, status)
            q.update_run(db, run_id, status, at, error=error, driver=driver or run.driver)
            q.append_event(db, run_id, event, at)

        await self._transaction(work)

    async def reopen_run(
        self, run_id: str, *, driver: str, dead_owners: Sequence[str], now: float
    ) -> list[str]:
        def work(db: q.Db) -> list[str]:
            at = self._now()
            db.lock_run(run_id)  # the run's lock before its rows, as every writer of a run
            run = require_run(db, run_id)
            if run.status is not RunStatus.RUNNING:
                check_transition(run.status, RunStatus.RUNNING)
            q.update_run(db, run_id, RunStatus.RUNNING, at, error=None, driver=driver)
            for owner in dead_owners:  # a dead process's advance lease would block us
                release_advance_query(db, run_id, owner)
            reopened = reopen_phases(db, run_id)
            reclaimed = [
                task
                for task in tq.select_tasks(db, run_id)
                if needs_reclaim(task, dead_owners, now)
                or (task.status is TaskStatus.FAILED and (task.phase, task.attempt) in reopened)
            ]
            for task in reclaimed:
                tq.finish_task(db, task.id, TaskStatus.PENDING, at, error=None)
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
        await self.start_phases(run_id, [PhaseStart(phase=phase, attempt=attempt, started=event)])

    async def start_phases(
        self,
        run_id: str,
        starts: Sequence[PhaseStart],
        *,
        claim: ClaimRequest | None = None,
        ahead: LeasedAhead | None = None,
    ) -> list[ClaimedTask]:
        at = ahead.at if ahead else self._now()
        chosen = ahead.leases if ahead else None
        return await self._transaction(
            lambda db: self._start_phases_in(db, run_id, starts, claim, at, chosen)
        )

    def _start_phases_in(
        self,
        db: q.Db,
        run_id: str,
        starts: Sequence[PhaseStart],
        claim: ClaimRequest | None,
        at: str,
        chosen: Mapping[str, Lease] | None = None,
    ) -> list[ClaimedTask]:
        """``start_phases`` inside the caller's transaction, stamped ``at``; ``chosen``: the
        leases the claim takes, chosen before the transaction (``lease_ahead``), written
        when it may take every new task (else the claim after the insert decides)."""
        for start in starts:
            q.insert_phase(db, run_id, start.phase, start.attempt, at)
            q.append_event(db, run_id, start.started, at)
        room = self._room(db, run_id, claim) if claim is not None else 0
        leases = (
            self._leases_as_inserted(db, run_id, starts, claim, room, chosen) if claim else None
        )
        for start in starts:
            if start.tasks:
                tq.insert_tasks(db, run_id, start.phase, start.attempt, start.tasks, at, leases)
            if start.created is not None:
                q.append_event(db, run_id, start.created, at)
        if claim is None:
            return []
        if leases is None:
            return self._claim_in(db, run_id, owner=claim.owner, now=claim.now, limit=room, at=at)
        claimed = _claimed_as_inserted(run_id, starts, leases, at)
        q.append_events_by_run(db, _started(claimed, claim.owner), at)
        return claimed

    def _leases_as_inserted(
        self,
        db: q.Db,
        run_id: str,
        starts: Sequence[PhaseStart],
        claim: ClaimRequest,
        room: int,
        chosen: Mapping[str, Lease] | None = None,
    ) -> Mapping[str, Lease] | None:
        """The leases of the new tasks, to be written as they are inserted (not inserted
        pending, then found and leased), when ``claim`` takes every one of them: the run is
        running, no task of it waits to be claimed before them, and its ``room`` (``_room``)
        holds them all. None when a claim after the insert must decide, in the store's claim
        order (a wide phase's first tasks, say). ``chosen`` (``lease_ahead``), when given,
        are the leases."""
        new = [task for start in starts for task in start.tasks]
        if not new or room < len(new) or tq.any_claimable(db, run_id, claim.now):
            return None
        if require_run(db, run_id).status is not RunStatus.RUNNING:
            return None
        return chosen if chosen is not None else _leases(new, claim)

    def lease_ahead(
        self, run_id: str, starts: Sequence[PhaseStart], claim: ClaimRequest
    ) -> LeasedAhead | None:
        new = [task for start in starts for task in start.tasks]
        if not new or claim.limit < len(new):
            return None
        at = self._now()
        leases = _leases(new, claim)
        return LeasedAhead(
            at=at, leases=leases, claimed=_claimed_as_inserted(run_id, starts, leases, at)
        )

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
            db.lock_run(run_id)  # the run's lock before its rows, as every writer of a run
            current = require_phase(db, run_id, phase, attempt)
            check_transition(current.status, status)
            finished = at if status in (PhaseStatus.PASSED, PhaseStatus.FAILED) else None
            q.update_phase(db, run_id, phase, attempt, status, finished, error)
            if finished:
                elapsed = self._clock.now() - datetime.fromisoformat(current.started_at).timestamp()
                q.insert_phase_metrics(
                    db, run_id, phase, attempt, status.value, round(elapsed * 1000, 3), at
                )
            if run_status is not None:
                run = require_run(db, run_id)
                check_transition(run.status, run_status)
                q.update_run(db, run_id, run_status, at, error=error, driver=run.driver)
            for event in events:
                q.append_event(db, run_id, event, at)

        await self._transaction(work)

    # -- tasks ----------------------------------------------------------------------------

    async def create_tasks(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        tasks: Sequence[NewTask],
        event: EventDraft,
        *,
        claim: ClaimRequest | None = None,
    ) -> list[ClaimedTask]:
        def work(db: q.Db) -> list[ClaimedTask]:
            at = self._now()
            tq.insert_tasks(db, run_id, phase, attempt, tasks, at)
            q.append_event(db, run_id, event, at)
            return self._claim_for(db, run_id, claim, at)

        return await self._transaction(work)

    def _claim_for(
        self, db: q.Db, run_id: str, claim: ClaimRequest | None, at: str
    ) -> list[ClaimedTask]:
        """The claim riding along with a write that created ``run_id``'s tasks, inside its
        transaction: up to ``claim.limit``, and a throttled run's room at most."""
        if claim is None:
            return []
        limit = self._room(db, run_id, claim)
        return self._claim_in(db, run_id, owner=claim.owner, now=claim.now, limit=limit, at=at)

    def _room(self, db: q.Db, run_id: str, claim: ClaimRequest) -> int:
        """How many of ``run_id``'s tasks ``claim`` may take: its limit, and a throttled
        run's room at most."""
        if run_id in tq.select_throttled(db, run_id):
            return min(claim.limit, throttled_room(claim.concurrency, claim.held))
        return claim.limit

    async def claim_tasks(
        self,
        run_id: str | None,
        *,
        owner: str,
        now: float,
        limit: int,
        lease_seconds: float | None = None,
    ) -> list[ClaimedTask]:
        if limit <= 0:
            return []
        return await self._transaction(
            lambda db: self._claim_in(
                db,
                run_id,
                owner=owner,
                now=now,
                limit=limit,
                at=self._now(),
                lease_seconds=lease_seconds,
            )
        )

    def _claim_in(
        self,
        db: q.Db,
        run_id: str | None,
        *,
        owner: str,
        now: float,
        limit: int,
        at: str,
        lease_seconds: float | None = None,
    ) -> list[ClaimedTask]:
        """``claim_tasks`` inside the caller's transaction, stamped ``at``."""
        if limit <= 0:
            return []
        found = tq.claimable(db, run_id, now, limit, self.claim_lock)
        # Lock every run involved in one order, so claimers spanning runs cannot deadlock.
        for locked in sorted({task.run_id for task, _, _ in found}):
            db.lock_run(locked)
        leases = [
            (task, uuid.uuid4().hex, now + (own if lease_seconds is None else lease_seconds))
            for task, _, own in found
        ]
        tq.lease_tasks(
            db, [(task.id, token, expires) for task, token, expires in leases], owner=owner, at=at
        )
        claimed = [
            ClaimedTask(
                task=tq.leased(task, owner=owner, expires_at=expires, at=at),
                lease_token=token,
                checkpoint=checkpoint,
            )
            for (task, token, expires), (_, checkpoint, _) in zip(leases, found, strict=True)
        ]
        q.append_events_by_run(db, _started(claimed, owner), at)
        return claimed

    async def append_event(self, run_id: str, event: EventDraft) -> None:
        def work(db: q.Db) -> None:
            require_run(db, run_id)
            q.append_event(db, run_id, event, self._now())

        await self._transaction(work)

    async def renew_lease(
        self, task_id: str, token: str, *, lease_seconds: float, now: float
    ) -> None:
        def work(db: q.Db) -> None:
            task = fenced(db, task_id, token)
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
            task = fenced(db, task_id, token)
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
        write = OutputWrite(
            task_id=task_id, token=token, output=output, calls=calls, payload=payload
        )
        [error] = await self.record_outputs([write])
        if error is not None:
            raise error

    async def record_outputs(self, writes: Sequence[OutputWrite]) -> list[StoreError | None]:
        def work(db: q.Db) -> list[StoreError | None]:
            errors, accepted = ow.vet(db, writes)
            ow.insert(db, accepted, self._now())
            return errors

        if not writes:
            return []
        return await self._transaction(work)

    async def record_outputs_claiming(
        self, writes: Sequence[OutputWrite], run_id: str, claim: ClaimRequest
    ) -> tuple[list[StoreError | None], list[ClaimedTask]]:
        def work(db: q.Db) -> tuple[list[StoreError | None], list[ClaimedTask]]:
            at = self._now()
            errors, accepted = ow.vet(db, writes)
            ow.insert(db, accepted, at)
            return errors, self._claim_for(db, run_id, claim, at)

        return await self._transaction(work)

    def _finish_in(self, db: q.Db, writes: Sequence[OutputWrite], at: str) -> None:
        """Record ``writes`` inside the caller's transaction, all or none (``record_fan_in``
        with ``finishing``).

        Raises:
            FinishingRefusedError: one was refused (a stale lease, an output already
                recorded, not JSON); nothing of them was written.
        """
        errors, accepted = ow.vet(db, writes)
        refused = [error for error in errors if error is not None]
        if refused:
            raise FinishingRefusedError(refused)
        ow.insert(db, accepted, at)

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
            task = fenced(db, task_id, token)
            for call in calls:
                o.insert_model_call(db, task.run_id, task_id, call, at)
            base = {"key": task.key, "agent": task.agent, "try": task.tries, "error": error}
            if retry_at is None:
                tq.finish_task(db, task_id, TaskStatus.FAILED, at, error=error)
                draft = EventDraft(
                    type="task.failed", phase=task.phase, task_id=task_id, payload=base
                )
            else:
                tq.finish_task(
                    db, task_id, TaskStatus.PENDING, at, error=error, not_before=retry_at
                )
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
                require_run(db, run_id),
                q.select_phases(db, run_id),
                tq.select_tasks(db, run_id),
            )

        return await self._read(work)

    async def phase_tasks(
        self, run_id: str, phase: str, attempt: int
    ) -> tuple[PhaseRecord, list[TaskRecord]]:
        def work(db: q.Db) -> tuple[PhaseRecord, list[TaskRecord]]:
            record = require_phase(db, run_id, phase, attempt)
            return record, tq.select_phase_tasks(db, run_id, phase, attempt)

        return await self._read(work)

    async def run_changes(self, run_id: str, since: int) -> RunChanges:
        def work(db: q.Db) -> RunChanges:
            tasks, cursor = tq.select_changed_tasks(db, run_id, since)
            return RunChanges(
                run=require_run(db, run_id),
                phases=q.select_phases(db, run_id),
                tasks=tasks,
                cursor=cursor,
            )

        return await self._read(work)

    async def outputs(self, run_id: str, phase: str, attempt: int) -> dict[str, object]:
        return await self._read(lambda db: o.select_outputs(db, run_id, phase, attempt))

    async def record_artifacts(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        event: EventDraft,
        tasks: Sequence[NewTask] = (),
        *,
        claim: ClaimRequest | None = None,
    ) -> ReadyAttempt:
        return await self._transaction(
            lambda db: self._ready_in(
                db, run_id, phase, attempt, artifacts, event, tasks, claim, self._now()
            )
        )

    def _ready_in(
        self,
        db: q.Db,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        event: EventDraft,
        tasks: Sequence[NewTask],
        claim: ClaimRequest | None,
        at: str,
        ids: Sequence[str] | None = None,
    ) -> ReadyAttempt:
        """``record_artifacts`` inside the caller's transaction, stamped ``at``; ``ids``, the
        artifacts' ids when the caller chose them (else new ones)."""
        # Another advancer's fan-in of this attempt may be in flight (its advance lease lapsed
        # while the network was cut): wait for it, then read the phase as it left it.
        db.lock_run(run_id)
        check_transition(require_phase(db, run_id, phase, attempt).status, PhaseStatus.READY)
        chosen = ids if ids is not None else [uuid.uuid4().hex for _ in artifacts]
        records = [
            o.insert_artifact(db, run_id, phase, attempt, artifact, artifact_id, at)
            for artifact, artifact_id in zip(artifacts, chosen, strict=True)
        ]
        q.update_phase(db, run_id, phase, attempt, PhaseStatus.READY, None, None)
        tq.insert_tasks(db, run_id, phase, attempt, tasks, at)
        by_type = {record.type: record.id for record in records}
        q.append_event(
            db,
            run_id,
            EventDraft(
                type=event.type, phase=event.phase, payload={**event.payload, "artifacts": by_type}
            ),
            at,
        )
        return ReadyAttempt(artifacts=records, claimed=self._claim_for(db, run_id, claim, at))

    async def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        return await self._read(lambda db: o.select_artifacts(db, run_id))

    async def blob(self, content_hash: str) -> object:
        return await self._read(lambda db: o.select_blob(db, content_hash))

    async def events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        return await self._read(lambda db: q.select_events(db, run_id, after_id, limit))

    async def model_calls(self, run_id: str) -> list[dict[str, object]]:
        return await self._read(lambda db: o.select_model_calls(db, run_id))


def _leases(tasks: Sequence[NewTask], claim: ClaimRequest) -> dict[str, Lease]:
    """A new lease of ``claim``'s for each of ``tasks``."""
    return {
        task.id: Lease(
            owner=claim.owner, token=uuid.uuid4().hex, expires_at=claim.now + task.lease_seconds
        )
        for task in tasks
    }


def _claimed_as_inserted(
    run_id: str, starts: Sequence[PhaseStart], leases: Mapping[str, Lease], at: str
) -> list[ClaimedTask]:
    """The new tasks ``leases`` names, as ``insert_tasks`` wrote them, by phase and key."""
    claimed = [
        ClaimedTask(
            task=tq.leased_as_inserted(run_id, start, task, lease, at),
            lease_token=lease.token,
            checkpoint=None,
        )
        for start in starts
        for task in start.tasks
        if (lease := leases.get(task.id)) is not None
    ]
    return sorted(claimed, key=lambda item: (item.task.phase, item.task.key))


def _started(claimed: Sequence[ClaimedTask], owner: str) -> list[tuple[str, EventDraft]]:
    """The ``task.started`` event of each task claimed, by run."""
    return [
        (
            item.task.run_id,
            EventDraft(
                type="task.started",
                phase=item.task.phase,
                task_id=item.task.id,
                payload={
                    "key": item.task.key,
                    "agent": item.task.agent,
                    "attempt": item.task.attempt,
                    "try": item.task.tries,
                    "owner": owner,
                },
            ),
        )
        for item in claimed
    ]
