"""Use cases of the quality loop, shared by the CLI, the HTTP API and the dashboard: a run's
questions and the answers a person gives them, waivers of failed gates, and gate history.
No printing and no HTTP here: errors come from ``ideamine.errors`` and the caller maps them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.errors import RunStateError, UsageError
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.knowledge import Knowledge, QuestionRecord
from ideamine.stores.records import EventDraft, latest_attempts
from ideamine.stores.verdicts import VerdictStore, Waiver

__all__ = [
    "answer_question",
    "check_waiver",
    "gate_history",
    "open_questions",
    "parse_expiry",
    "waive_phase",
]

MIN_REASON_CHARS = 10
MAX_ANSWER_CHARS = 5000
_DURATION = re.compile(r"^(\d+)([dhw])$")


def parse_expiry(value: str, *, now: datetime | None = None) -> str:
    """A waiver's expiry from ``30d`` / ``12h`` / ``2w`` or an ISO date or time, as ISO 8601 UTC.

    Raises:
        UsageError: not a duration or date, or not in the future.
    """
    now = now or datetime.now(UTC)
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        hours = {"h": 1, "d": 24, "w": 24 * 7}[unit] * amount
        expires = now + timedelta(hours=hours)
    else:
        try:
            expires = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(
                f"--expires {value!r} is neither a duration nor a date",
                hint="use e.g. 30d, 12h, 2w or 2027-01-31",
            ) from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    if expires <= now:
        raise UsageError(
            f"--expires {value!r} is not in the future", hint="a waiver must expire later"
        )
    return expires.astimezone(UTC).isoformat(timespec="seconds")


async def waive_phase(store: Store, run_id: str, phase: str, *, reason: str, expires: str) -> int:
    """Pass ``phase``'s failed gate on a person's justification; returns the attempt.

    Raises:
        RunNotFoundError; UsageError: the reason is too short or the expiry bad;
        RunStateError: no failed gate, or it failed on a critical CVE or a secret.
    """
    reason, expires_at = check_waiver(reason, expires)
    await store.get_run(run_id)  # RunNotFoundError first
    return await VerdictStore(store).waive(
        Waiver(run_id=run_id, phase=phase, reason=reason, expires_at=expires_at)
    )


def check_waiver(reason: str, expires: str) -> tuple[str, str]:
    """A waiver's justification and expiry (ISO 8601 UTC), checked before any store is read.

    Raises:
        UsageError: the reason is shorter than 10 characters, or the expiry is bad or past.
    """
    if len(reason.strip()) < MIN_REASON_CHARS:
        raise UsageError(
            "a waiver needs a justification",
            hint=f'--reason "why this is acceptable" (at least {MIN_REASON_CHARS} characters)',
        )
    return reason.strip(), parse_expiry(expires)


async def open_questions(store: Store, run_id: str) -> list[QuestionRecord]:
    """The run's questions that wait for a person (``run --ask``), oldest first."""
    await store.get_run(run_id)
    return [q for q in await Knowledge(store).questions(run_id) if q.status == "open"]


async def answer_question(store: Store, run_id: str, question_id: str, text: str) -> bool:
    """Record a person's answer; True when it was the run's last open question and the run
    can go on (it is set running again, so a worker or ``ideamine resume`` continues it).

    Raises:
        RunNotFoundError; UsageError: an empty or over-long answer, or no such open question.
    """
    text = text.strip()
    if not text or len(text) > MAX_ANSWER_CHARS:
        raise UsageError(
            "an answer must be 1 to 5,000 characters",
            hint='ideamine answer RUN QUESTION "the answer"',
        )
    waiting = {q.id for q in await open_questions(store, run_id)}
    if question_id not in waiting:
        listed = ", ".join(sorted(waiting)) or "none"
        raise UsageError(
            f"run {run_id} has no open question {question_id!r}",
            hint=f"open questions: {listed} (`ideamine questions {run_id}`)",
        )
    await Knowledge(store).answer_question(
        run_id,
        question_id,
        text,
        EventDraft(
            type="qav.answer",
            phase=question_id.split(".", 1)[0],
            payload={"question_id": question_id, "source": "person", "unknown": False},
        ),
    )
    if waiting - {question_id}:
        return False
    return await _continue(store, run_id)


async def _continue(store: Store, run_id: str) -> bool:
    """Set a run that only waited for answers running again."""
    run, phases, _ = await store.run_rows(run_id)
    failed = [p for p in latest_attempts(phases).values() if p.status is PhaseStatus.FAILED]
    if run.status is not RunStatus.NEEDS_ATTENTION or failed:
        return False
    try:
        await store.set_run_status(
            run_id,
            RunStatus.RUNNING,
            EventDraft(type="run.resumed", payload={"reason": "every open question answered"}),
        )
    except RunStateError:
        return False
    return True


async def gate_history(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every gate verdict of the run with its waiver, if any, by phase and attempt."""
    await store.get_run(run_id)
    waivers = {(w["phase"], w["attempt"]): w for w in await VerdictStore(store).waivers(run_id)}
    return [
        {
            "phase": v.phase,
            "attempt": v.attempt,
            "passed": v.passed,
            "score": v.score,
            "threshold": v.threshold,
            "reasons": list(v.result.get("reasons", [])),  # type: ignore[call-overload]
            "evidence_gaps": list(v.result.get("evidence_gaps", [])),  # type: ignore[call-overload]
            "waiver": waivers.get((v.phase, v.attempt)),
            "at": v.created_at,
        }
        for v in await DossierStore(store).gate_evaluations(run_id)
    ]
