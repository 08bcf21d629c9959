"""Applying a judged attempt's verdict: pass, retry with an auto-fix, ask, or escalate.

The judge task's output holds the GateResult and the Q/A/V outcome; ``engine.gate.decide``
picks what follows; everything is written in one transaction with its events
(``stores.verdicts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ideamine.config.model import PhaseSpec, PipelineSpec
from ideamine.engine.fanout import branch_key
from ideamine.engine.gate import Decision, decide
from ideamine.engine.plan import GATE_KEY
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.errors import StoreCorruptError
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.knowledge import Knowledge
from ideamine.stores.options import RunOptions
from ideamine.stores.records import ClaimedTask, ClaimRequest, EventDraft, PhaseStart
from ideamine.stores.verdicts import NextAttempt, Verdict, VerdictStore

__all__ = ["Judged", "apply_verdict", "previous_result", "qav_events", "settle"]


async def apply_verdict(
    store: Store,
    pipeline: PipelineSpec,
    run_id: str,
    phase: str,
    attempt: int,
    *,
    starts: Sequence[PhaseStart] = (),
    claim: ClaimRequest | None = None,
    completes: bool = False,
) -> Judged:
    """Record the verdict of ``phase``'s ``attempt`` and what follows from it. Should it
    pass the phase, ``starts`` (the phases that its passing lets start) start in the same
    transaction, with ``claim``; or, ``completes``, the run completes in it."""
    spec = pipeline.phase(phase)
    judged = (await store.outputs(run_id, phase, attempt)).get(GATE_KEY)
    if not isinstance(judged, Mapping) or "result" not in judged:
        raise StoreCorruptError(
            f"run {run_id}: the gate judge's output of {phase} attempt {attempt} is missing",
            hint="run `ideamine verify` on the run; restore the database from a backup",
        )
    # the verdict as recorded: the GateResult with the EvidencePack it judged
    result: Mapping[str, Any] = {**judged["result"], "evidence": judged.get("evidence")}
    qav: Mapping[str, Any] | None = judged.get("qav")
    asked = [
        r
        for r in await Knowledge(store).questions(run_id)
        if (r.phase, r.attempt) == (phase, attempt)
    ]
    recorded = bool(asked)  # an earlier pass recorded the Q/A/V rows (a person was asked)
    events = [] if recorded else qav_events(phase, attempt, qav)
    options = await RunOptions(store).get(run_id)
    if recorded:
        open_ids = [r.id for r in asked if r.status == "open"]
    else:
        open_ids = list(qav.get("open_questions", ())) if qav else []
    if options.get("ask") and open_ids:
        await _ask(store, run_id, phase, attempt, qav if not recorded else None, events, open_ids)
        return Judged(claimed=[], stopped=True, passed=False)
    previous = await previous_result(store, run_id, phase, attempt)
    # Q/A/V rows an earlier pass recorded are in the store already
    verdict = settle(
        spec,
        run_id,
        attempt,
        result,
        previous,
        events,
        qav=None if recorded else qav,
        starts=starts,
        claim=claim,
        completes=completes,
    )
    claimed = await VerdictStore(store).record(verdict)
    return Judged.of(verdict, claimed)


def settle(
    spec: PhaseSpec,
    run_id: str,
    attempt: int,
    result: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    events: list[EventDraft],
    *,
    qav: Mapping[str, Any] | None = None,
    starts: Sequence[PhaseStart] = (),
    claim: ClaimRequest | None = None,
    completes: bool = False,
) -> Verdict:
    """The verdict on ``result`` (the attempt's GateResult with its evidence; ``previous``,
    the attempt before's): pass, retry with an auto-fix, or escalate, with its events after
    ``events``, and the Q/A/V rows of ``qav`` to record. A pass starts ``starts`` with
    ``claim``, or completes the run (``completes``: the phase is its last open one)."""
    decision = decide(spec, result, previous=previous)
    events.append(_gate_event(spec.name, attempt, result, decision))
    fields = _verdict(spec, run_id, attempt, result, decision, events)
    if decision.outcome == "pass":
        fields.update(starts=starts, claim=claim, completes=completes)
    return Verdict(**fields, qav=qav)


@dataclass(frozen=True, slots=True)
class Judged:
    """What applying a verdict did: the tasks it claimed, whether it took the run out of
    ``running`` (a person is asked, or the gate escalated), and whether it passed the phase."""

    claimed: list[ClaimedTask]
    stopped: bool
    passed: bool

    @classmethod
    def of(cls, verdict: Verdict, claimed: list[ClaimedTask]) -> Judged:
        """What recording ``verdict`` did, the tasks it claimed being ``claimed``."""
        passed = verdict.phase_status is PhaseStatus.PASSED
        return cls(
            claimed=claimed,
            stopped=verdict.run_status is not None or (passed and verdict.completes),
            passed=passed,
        )


def _verdict(
    spec: PhaseSpec,
    run_id: str,
    attempt: int,
    result: Mapping[str, Any],
    decision: Decision,
    events: list[EventDraft],
) -> dict[str, Any]:
    phase = spec.name
    common: dict[str, Any] = {
        "run_id": run_id,
        "phase": phase,
        "attempt": attempt,
        "result": result,
    }
    if decision.outcome == "pass":
        events.append(EventDraft(type="phase.completed", phase=phase, payload={"attempt": attempt}))
        return {**common, "phase_status": PhaseStatus.PASSED, "events": events}
    if decision.outcome == "retry":
        nxt = attempt + 1
        carry = _carried(spec, decision)
        return {
            **common,
            "phase_status": PhaseStatus.FAILED,
            "events": events,
            "error": f"gate failed (score {result['score']:.3f} < {result['threshold']:.2f}); "
            f"retrying with {', '.join(decision.strategies)}",
            "next_attempt": NextAttempt(
                attempt=nxt,
                carry=carry,
                event=EventDraft(
                    type="phase.started",
                    phase=phase,
                    payload={
                        "attempt": nxt,
                        "retry_of": attempt,
                        "strategies": list(decision.strategies),
                        "rerun": sorted(decision.rerun) if decision.rerun is not None else "all",
                        "depends_on": list(spec.depends_on),
                        "agents": list(spec.agents),
                        "fan_out": spec.fan_out.kind.value,
                    },
                ),
            ),
        }
    events.append(
        EventDraft(
            type="run.needs_attention",
            payload={"phase": phase, "attempt": attempt, "reason": decision.reason},
        )
    )
    return {
        **common,
        "phase_status": PhaseStatus.FAILED,
        "events": events,
        "error": decision.reason,
        "run_status": RunStatus.NEEDS_ATTENTION,
    }


def _carried(spec: PhaseSpec, decision: Decision) -> list[str]:
    """Branch keys of the agents the next attempt does not rerun (their outputs carry over)."""
    if decision.rerun is None:
        return []
    return [
        branch_key(index, agent)
        for index, agent in enumerate(spec.agents)
        if agent not in decision.rerun
    ]


def _gate_event(
    phase: str, attempt: int, result: Mapping[str, Any], decision: Decision
) -> EventDraft:
    passed = bool(result["pass"])
    payload: dict[str, Any] = {
        "attempt": attempt,
        "score": result["score"],
        "threshold": result["threshold"],
        "rubrics": {name: r["score"] for name, r in result["rubrics"].items()},
        "reasons": list(result["reasons"]),
        "evidence_gaps": list(result.get("evidence_gaps", ())),
    }
    if not passed:
        payload["issues"] = [
            {k: i[k] for k in ("guard", "kind", "severity", "description", "fix_strategy")}
            for i in result["issues"]
        ]
        payload["next"] = decision.outcome
        if decision.strategies:
            payload["strategies"] = list(decision.strategies)
    return EventDraft(
        type="phase.gate.passed" if passed else "phase.gate.failed", phase=phase, payload=payload
    )


def qav_events(phase: str, attempt: int, qav: Mapping[str, Any] | None) -> list[EventDraft]:
    """The knowledge events of one Q/A/V outcome (SPEC §4), in a stable order."""
    if not qav:
        return []
    events = [
        EventDraft(type="qav.question", phase=phase, payload={"attempt": attempt, **q})
        for q in qav["questions"]
    ]
    events += [
        EventDraft(
            type="qav.answer",
            phase=phase,
            payload={
                "attempt": attempt,
                "question_id": a["question_id"],
                "unknown": a["unknown"],
                "citations": len(a["citations"]),
            },
        )
        for a in qav["answers"]
    ]
    events += [
        EventDraft(type="qav.validation", phase=phase, payload={"attempt": attempt, **v})
        for v in qav["validations"]
    ]
    if qav["bindings"]:
        events.append(
            EventDraft(
                type="kmap.delta",
                phase=phase,
                payload={
                    "attempt": attempt,
                    "frame_ids": [f["id"] for f in qav["frames"]],
                    "bindings": [dict(b) for b in qav["bindings"]],
                    "count": len(qav["bindings"]),
                    "source": "qav",
                },
            )
        )
    events += [
        EventDraft(type="assumption.recorded", phase=phase, payload={"attempt": attempt, **a})
        for a in qav["assumptions"]
    ]
    return events


async def _ask(
    store: Store,
    run_id: str,
    phase: str,
    attempt: int,
    qav: Mapping[str, Any] | None,
    events: list[EventDraft],
    open_ids: Sequence[str],
) -> None:
    """``--ask``: keep the phase waiting for a person's answers; the run needs attention."""
    run = await store.get_run(run_id)
    events.append(
        EventDraft(
            type="run.needs_attention",
            payload={
                "phase": phase,
                "attempt": attempt,
                "reason": f"{len(open_ids)} question(s) wait for an answer",
                "questions": list(open_ids),
            },
        )
    )
    await VerdictStore(store).record(
        Verdict(
            run_id=run_id,
            phase=phase,
            attempt=attempt,
            result={},
            phase_status=PhaseStatus.READY,
            events=events,
            qav=qav,
            run_status=RunStatus.NEEDS_ATTENTION if run.status is RunStatus.RUNNING else None,
            open_questions=tuple(open_ids),
        )
    )


async def previous_result(
    store: Store, run_id: str, phase: str, attempt: int
) -> Mapping[str, Any] | None:
    """The GateResult of the attempt before ``attempt`` (None for a first attempt)."""
    if attempt <= 1:
        return None
    return await DossierStore(store).gate_result(run_id, phase, attempt - 1)
