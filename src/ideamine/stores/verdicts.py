"""Recording a gate verdict: everything it changes, with its events, in one transaction.

A verdict writes its gate evaluation row, the Q/A/V rows of the attempt (questions, answers,
bindings, knowledge frames, assumptions), the phase's new status, and then either the next
attempt (with the outputs of the agents it does not rerun carried over) or the run's new
status. A store extension: its SQL lives here, inside ``ideamine.stores`` (invariant 5).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ideamine.canonical import canonical_json, content_hash, sha256_hex
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus, check_transition
from ideamine.errors import RunStateError
from ideamine.stores import outputs as o
from ideamine.stores import queries as q
from ideamine.stores import task_queries as tq
from ideamine.stores.base import Store
from ideamine.stores.checked import require_phase, require_run
from ideamine.stores.knowledge import insert_qav
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    LeasedAhead,
    NewArtifact,
    NewTask,
    OutputWrite,
    PhaseRecord,
    PhaseStart,
    latest_attempts,
)
from ideamine.stores.sqlstore import SqlStore

__all__ = ["JudgedFanIn", "NextAttempt", "Verdict", "VerdictStore", "Waiver"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NextAttempt:
    """The attempt a failed gate starts, and the earlier attempt's tasks it keeps."""

    attempt: int
    carry: Sequence[str]  # branch keys whose outputs are carried over unchanged
    event: EventDraft  # phase.started of the new attempt


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    run_id: str
    phase: str
    attempt: int
    result: Mapping[str, Any]  # the GateResult
    phase_status: PhaseStatus  # PASSED, FAILED; READY keeps the phase waiting (questions)
    events: Sequence[EventDraft]
    qav: Mapping[str, Any] | None = None
    next_attempt: NextAttempt | None = None
    run_status: RunStatus | None = None
    error: str | None = None
    open_questions: Sequence[str] = ()  # ``--ask``: questions left open for a person
    # A passing verdict's follow-up, in its transaction: the phases it lets start (with
    # their first tasks), and the claim that rides along (``Store.start_phases``).
    starts: Sequence[PhaseStart] = ()
    claim: ClaimRequest | None = None
    # A passing verdict on the run's last open phase: the run completes in its transaction
    # (``run.completed``), unless it was paused or cancelled meanwhile.
    completes: bool = False
    # The claim's leases chosen before the transaction, its tasks handed out ahead of the
    # commit (``stores.ahead``): written as chosen, and the transaction stamped with its time.
    ahead: LeasedAhead | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgedFanIn:
    """A phase attempt fanned in and judged in one step (its gate calls no model): its
    artifacts with the ids its verdict's evidence names, its ``phase.ready`` event, and the
    gate task with the judge's output (its canonical JSON) and the payload of its
    ``task.succeeded`` event."""

    artifacts: Sequence[NewArtifact]
    artifact_ids: Sequence[str]
    ready: EventDraft
    judge: NewTask
    output_json: str
    payload: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    """A person's waiver of a phase's failed gate."""

    run_id: str
    phase: str
    reason: str
    expires_at: str  # ISO 8601


class VerdictStore:
    """Gate verdicts and waivers on a SQL store."""

    def __init__(self, store: Store) -> None:
        if not isinstance(store, SqlStore):
            raise TypeError("verdicts need a SQL store")
        self._store = store

    async def record(self, verdict: Verdict) -> list[ClaimedTask]:
        """Apply ``verdict`` atomically; a verdict already recorded for the attempt is a
        no-op (two advancers racing after a lost acknowledgement). A verdict that passes its
        phase then starts ``verdict.starts`` in the same transaction: the tasks claimed."""
        return await self._store.run_in_transaction(lambda db: self._record(db, verdict))

    async def record_fan_in(
        self,
        fanned: JudgedFanIn,
        verdict: Verdict,
        finishing: Sequence[OutputWrite] = (),
        at: str | None = None,
    ) -> list[ClaimedTask]:
        """Fan ``verdict``'s attempt in and apply the verdict, in one transaction: the
        outputs of its last tasks (``finishing``, not yet recorded), the artifacts, the gate
        task settled with the judge's output, the verdict and (should it pass) the phases it
        starts; the tasks claimed. It is stamped with the time its leases were chosen ahead
        (``verdict.ahead``), else ``at`` (a write a step held back, made before another
        stamped so: ``runtime.stepwrites``), else now.

        Raises:
            FinishingRefusedError: an output of ``finishing`` was refused; nothing was
                written.
            IllegalTransitionError: the attempt was fanned in already; nothing was written.
        """
        return await self._store.run_in_transaction(
            lambda db: self._record_fan_in(db, fanned, verdict, finishing, at)
        )

    def _record_fan_in(
        self,
        db: q.Db,
        fanned: JudgedFanIn,
        verdict: Verdict,
        finishing: Sequence[OutputWrite],
        at: str | None,
    ) -> list[ClaimedTask]:
        at = verdict.ahead.at if verdict.ahead else (at or self._store._now())
        run_id, phase, attempt = verdict.run_id, verdict.phase, verdict.attempt
        if finishing:
            self._store._finish_in(db, finishing, at)
        self._store._ready_in(
            db,
            run_id,
            phase,
            attempt,
            fanned.artifacts,
            fanned.ready,
            (),
            None,
            at,
            ids=fanned.artifact_ids,
        )
        judge = tq.insert_settled(db, run_id, phase, attempt, fanned.judge, at)
        digest = sha256_hex(fanned.output_json)
        o.insert_outputs(db, [(judge, fanned.output_json, digest)], at)
        payload = {"key": judge.key, "agent": judge.agent, **fanned.payload, "output_hash": digest}
        q.append_event(
            db,
            run_id,
            EventDraft(type="task.succeeded", phase=phase, task_id=judge.id, payload=payload),
            at,
        )
        return self._record(db, verdict, at)

    def _record(self, db: q.Db, verdict: Verdict, at: str | None = None) -> list[ClaimedTask]:
        at = at or (verdict.ahead.at if verdict.ahead else self._store._now())
        run_id, phase, attempt = verdict.run_id, verdict.phase, verdict.attempt
        db.lock_run(run_id)  # a verdict in flight elsewhere commits first: then it is seen
        current = require_phase(db, run_id, phase, attempt)
        if current.status is not PhaseStatus.READY:
            return []  # already judged
        if verdict.qav is not None:
            insert_qav(db, run_id, phase, attempt, verdict.qav, at)
        for question_id in verdict.open_questions:  # rows are keyed "<run>.<question id>"
            db.query(
                "UPDATE questions SET status = 'open' WHERE id = ?", (f"{run_id}.{question_id}",)
            )
        if verdict.phase_status is not PhaseStatus.READY:
            _insert_gate_row(db, verdict, at)
            check_transition(current.status, verdict.phase_status)
            q.update_phase(db, run_id, phase, attempt, verdict.phase_status, at, verdict.error)
            elapsed = (
                self._store._clock.now() - datetime.fromisoformat(current.started_at).timestamp()
            )
            q.insert_phase_metrics(
                db,
                run_id,
                phase,
                attempt,
                verdict.phase_status.value,
                round(elapsed * 1000, 3),
                at,
            )
        for event in verdict.events:
            q.append_event(db, run_id, event, at)
        if verdict.next_attempt is not None:
            _start_next(db, run_id, phase, attempt, verdict.next_attempt, at)
        if verdict.run_status is not None:
            run = require_run(db, run_id)
            check_transition(run.status, verdict.run_status)
            q.update_run(db, run_id, verdict.run_status, at, error=verdict.error, driver=run.driver)
        if verdict.phase_status is PhaseStatus.PASSED and verdict.completes:
            _complete(db, run_id, at)
        if verdict.phase_status is not PhaseStatus.PASSED or not verdict.starts:
            return []
        if require_run(db, run_id).status is not RunStatus.RUNNING:
            return []  # paused or cancelled meanwhile: its next step starts them, if any
        chosen = verdict.ahead.leases if verdict.ahead else None
        return self._store._start_phases_in(db, run_id, verdict.starts, verdict.claim, at, chosen)

    async def waive(self, waiver: Waiver) -> int:
        """Pass ``phase``'s failed gate on a person's word; returns the attempt waived.

        Raises:
            RunStateError: the phase's latest attempt did not fail its gate, or its failure
                includes an issue that can never be waived (critical CVEs, secrets).
        """
        return await self._store.run_in_transaction(lambda db: self._waive(db, waiver))

    def _waive(self, db: q.Db, waiver: Waiver) -> int:
        at = self._store._now()
        db.lock_run(waiver.run_id)  # before the phase's row, as a verdict takes them
        run = require_run(db, waiver.run_id)
        latest, verdict = _waivable_gate(db, waiver)
        db.query(
            "INSERT INTO waivers (id, run_id, phase, attempt, reason, expires_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                uuid.uuid4().hex,
                waiver.run_id,
                waiver.phase,
                latest.attempt,
                waiver.reason,
                waiver.expires_at,
                at,
            ),
        )
        check_transition(latest.status, PhaseStatus.PASSED)
        q.update_phase(
            db, waiver.run_id, waiver.phase, latest.attempt, PhaseStatus.PASSED, at, None
        )
        payload = {
            "attempt": latest.attempt,
            "reason": waiver.reason,
            "expires_at": waiver.expires_at,
            "score": verdict.get("score"),
            "threshold": verdict.get("threshold"),
        }
        q.append_event(
            db,
            waiver.run_id,
            EventDraft(type="phase.gate.waived", phase=waiver.phase, payload=payload),
            at,
        )
        q.append_event(
            db,
            waiver.run_id,
            EventDraft(
                type="phase.completed",
                phase=waiver.phase,
                payload={"attempt": latest.attempt, "waived": True},
            ),
            at,
        )
        if run.status is RunStatus.NEEDS_ATTENTION:
            q.update_run(db, waiver.run_id, RunStatus.RUNNING, at, error=None, driver=run.driver)
            q.append_event(
                db,
                waiver.run_id,
                EventDraft(
                    type="run.resumed", payload={"reason": f"gate of {waiver.phase} waived"}
                ),
                at,
            )
        return latest.attempt

    async def waivers(self, run_id: str) -> list[dict[str, Any]]:
        """The run's waivers, oldest first."""
        rows = await self._store.run_read(
            lambda db: db.query(
                "SELECT phase, attempt, reason, expires_at, created_at FROM waivers "
                "WHERE run_id = ? ORDER BY created_at, id",
                (run_id,),
            )
        )
        return [
            {
                "phase": r[0],
                "attempt": int(r[1]),
                "reason": r[2],
                "expires_at": r[3],
                "created_at": r[4],
            }
            for r in rows
        ]


def _waivable_gate(db: q.Db, waiver: Waiver) -> tuple[PhaseRecord, dict[str, Any]]:
    """The phase's latest attempt and its failed verdict, if a person may waive it.

    Raises:
        RunStateError: no failed gate, or it failed on what can never be waived.
    """
    latest = latest_attempts(q.select_phases(db, waiver.run_id)).get(waiver.phase)
    verdict = _gate_row(db, waiver.run_id, waiver.phase, latest.attempt) if latest else None
    if latest is None or latest.status is not PhaseStatus.FAILED or verdict is None:
        raise RunStateError(
            waiver.run_id,
            f"phase {waiver.phase} of run {waiver.run_id} has no failed gate to waive",
            hint="`ideamine status RUN` shows each phase's gate",
        )
    blocked = [i for i in verdict.get("issues", []) if not i.get("waivable", True)]
    if blocked:
        raise RunStateError(
            waiver.run_id,
            f"phase {waiver.phase}'s gate failed on what can never be waived: "
            + "; ".join(str(i["description"]) for i in blocked),
            hint="fix the finding (critical CVEs and secrets cannot be waived), then "
            f"`ideamine retry-phase {waiver.run_id} {waiver.phase}`",
        )
    return latest, verdict


def _gate_row(db: q.Db, run_id: str, phase: str, attempt: int) -> dict[str, Any] | None:
    rows = db.query(
        "SELECT result FROM gate_evaluations WHERE run_id = ? AND phase = ? AND attempt = ? "
        "ORDER BY created_at DESC, id DESC LIMIT 1",
        (run_id, phase, attempt),
    )
    if not rows:
        return None
    loaded = q.load_json(str(rows[0][0]), f"gate evaluation of {run_id}/{phase}/{attempt}")
    return dict(loaded) if isinstance(loaded, dict) else None


def _complete(db: q.Db, run_id: str, at: str) -> None:
    """The run completes with the verdict that passed its last phase, as ``FinishRun`` would
    complete it a step later: a run paused or cancelled meanwhile is left as it is."""
    run = require_run(db, run_id)
    if run.status is not RunStatus.RUNNING:
        return
    totals = o.call_totals(o.select_model_calls(db, run_id))
    q.update_run(db, run_id, RunStatus.COMPLETED, at, error=None, driver=run.driver)
    q.append_event(db, run_id, EventDraft(type="run.completed", payload=totals), at)


def _insert_gate_row(db: q.Db, verdict: Verdict, at: str) -> None:
    result = verdict.result
    db.query(
        "INSERT INTO gate_evaluations (id, run_id, phase, attempt, passed, score, threshold, "
        "result, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            uuid.uuid4().hex,
            verdict.run_id,
            verdict.phase,
            verdict.attempt,
            1 if result["pass"] else 0,
            float(result["score"]),
            float(result["threshold"]),
            canonical_json(result),
            at,
        ),
    )


def _start_next(db: q.Db, run_id: str, phase: str, attempt: int, nxt: NextAttempt, at: str) -> None:
    q.insert_phase(db, run_id, phase, nxt.attempt, at)
    q.append_event(db, run_id, nxt.event, at)
    earlier = {
        t.key: t for t in tq.select_tasks(db, run_id) if t.phase == phase and t.attempt == attempt
    }
    kept = o.select_outputs(db, run_id, phase, attempt)
    for key in nxt.carry:
        task = earlier.get(key)
        if task is None or key not in kept:
            continue
        new_id = f"{run_id}.{phase}.{nxt.attempt}.{key}"
        tq.insert_tasks(
            db,
            run_id,
            phase,
            nxt.attempt,
            [
                NewTask(
                    id=new_id,
                    key=key,
                    agent=task.agent,
                    iteration=task.iteration,
                    input={"carried_from": task.id},
                )
            ],
            at,
        )
        db.query(
            "UPDATE tasks SET status = ?, finished_at = ?, revision = ? WHERE id = ?",
            (TaskStatus.SUCCEEDED.value, at, db.next_task_revision(), new_id),
        )
        carried = tq.select_task(db, new_id)
        assert carried is not None  # inserted just above, in this transaction
        o.insert_output(db, carried, kept[key], at)
    q.append_event(
        db,
        run_id,
        EventDraft(
            type="phase.progress",
            phase=phase,
            payload={
                "attempt": nxt.attempt,
                "carried": sorted(k for k in nxt.carry if k in kept),
                "carried_hash": content_hash(sorted(nxt.carry)),
            },
        ),
        at,
    )
