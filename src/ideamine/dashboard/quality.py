"""What the dashboard shows of the quality loop, computed from the store's records: Q/A/V
coverage per phase, the assumptions a run went on with, each gate's latest verdict with its
failing rubrics, reasons, evidence gaps and waiver, and what a person can do for a run that
needs attention (answer its open questions, waive its failed gates). Pure functions, so they
are easy to test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ideamine.config.model import PipelineSpec
from ideamine.engine.states import PhaseStatus
from ideamine.stores.dossiers import GateEvaluationRecord
from ideamine.stores.knowledge import AnswerRecord, AssumptionRecord, QuestionRecord
from ideamine.stores.records import PhaseRecord, latest_attempts

__all__ = [
    "AssumptionItem",
    "GateRow",
    "QavRow",
    "assumption_groups",
    "gate_rows",
    "open_questions",
    "qav_rows",
    "qav_total",
]

GAP_PREFIX = "evidence gap: "


@dataclass(frozen=True, slots=True, kw_only=True)
class QavRow:
    """One phase's Q/A/V coverage over all its attempts. ``mean_grounding`` is the mean
    grounding of the answered (not UNKNOWN) answers its verdicts judged, ``None`` when
    none was."""

    phase: str
    asked: int
    accepted: int
    rejected: int
    unknown: int
    open: int  # waiting for a person (``run --ask``)
    answered: int  # by a person
    frames: int  # accepted answers bound to knowledge frames
    assumptions: int
    graded: int  # answers whose grounding the verdicts measured
    mean_grounding: float | None
    min_grounding: float | None  # the phase's setting (None for the total)
    enabled: bool = True


def qav_rows(
    pipeline: PipelineSpec | None,
    order: Sequence[str],
    questions: Sequence[QuestionRecord],
    frames: Mapping[str, int],
    assumptions: Sequence[AssumptionRecord],
    verdicts: Sequence[GateEvaluationRecord],
) -> list[QavRow]:
    """A row per phase in ``order``; ``frames`` counts bindings by phase."""
    specs = {spec.name: spec.qav for spec in pipeline.phases} if pipeline else {}
    rows = []
    for phase in order:
        asked = [q for q in questions if q.phase == phase]
        status = [q.status for q in asked]
        spec = specs.get(phase)
        graded, grounding = _grounding([v for v in verdicts if v.phase == phase])
        rows.append(
            QavRow(
                phase=phase,
                asked=len(asked),
                accepted=status.count("accepted"),
                rejected=status.count("rejected"),
                unknown=status.count("unknown"),
                open=status.count("open"),
                answered=status.count("answered"),
                frames=frames.get(phase, 0),
                assumptions=sum(1 for a in assumptions if a.phase == phase),
                graded=graded,
                mean_grounding=grounding,
                min_grounding=spec.min_grounding if spec else None,
                enabled=bool(spec is None or (spec.enabled and spec.max_questions > 0)),
            )
        )
    return rows


def _grounding(verdicts: Sequence[GateEvaluationRecord]) -> tuple[int, float | None]:
    """How many answers the verdicts' Q/A/V graded, and their mean grounding (weighted by
    each verdict's answers)."""
    total, weight = 0.0, 0
    for verdict in verdicts:
        summary = _qav_summary(verdict.result)
        answered = summary.get("answered")
        mean = summary.get("mean_grounding")
        if isinstance(answered, int) and answered > 0 and isinstance(mean, int | float):
            total += float(mean) * answered
            weight += answered
    return weight, (round(total / weight, 4) if weight else None)


def _qav_summary(result: Mapping[str, object]) -> Mapping[str, object]:
    evidence = result.get("evidence")
    summary = evidence.get("qav") if isinstance(evidence, Mapping) else None
    return summary if isinstance(summary, Mapping) else {}


def qav_total(rows: Sequence[QavRow]) -> QavRow:
    """The run's totals; grounding weighted by the answers each phase graded."""
    graded = sum(r.graded for r in rows)
    grounding = sum((r.mean_grounding or 0.0) * r.graded for r in rows) / graded if graded else None
    return QavRow(
        phase="all phases",
        asked=sum(r.asked for r in rows),
        accepted=sum(r.accepted for r in rows),
        rejected=sum(r.rejected for r in rows),
        unknown=sum(r.unknown for r in rows),
        open=sum(r.open for r in rows),
        answered=sum(r.answered for r in rows),
        frames=sum(r.frames for r in rows),
        assumptions=sum(r.assumptions for r in rows),
        graded=graded,
        mean_grounding=round(grounding, 4) if grounding is not None else None,
        min_grounding=None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRow:
    """A phase's gate: its threshold and rubrics, and its latest verdict if any.

    ``state`` is ``passed``, ``failed``, ``waived``, ``asking`` (the verdict waits for a
    person's answers) or ``not judged``; ``waivable`` says a waiver may be asked for now
    (the phase's latest attempt failed its gate); ``blocked`` lists the issues no one may
    waive (secrets, critical CVEs)."""

    phase: str
    threshold: float
    rubrics: Mapping[str, float]  # rubric → weight
    verdict: GateEvaluationRecord | None
    state: str
    attempts: int  # verdicts recorded for the phase
    scores: Mapping[str, float | None]  # rubric → score; None: not measured (evidence gap)
    failing: tuple[str, ...]  # rubrics scoring below the threshold of a failed verdict
    reasons: tuple[str, ...]
    gaps: tuple[str, ...]
    blocked: tuple[str, ...] = ()
    waiver: Mapping[str, Any] | None = None
    waivable: bool = False
    qav: Mapping[str, object] = field(default_factory=dict)


def gate_rows(
    pipeline: PipelineSpec | None,
    verdicts: Sequence[GateEvaluationRecord],
    history: Sequence[Mapping[str, Any]],
    phases: Sequence[PhaseRecord],
    asking: Sequence[str] = (),
) -> list[GateRow]:
    """A row per phase of ``pipeline``: ``history`` is ``service_quality.gate_history``
    (for the waivers), ``phases`` every phase attempt, ``asking`` the phases whose questions
    wait for answers."""
    latest: dict[str, GateEvaluationRecord] = {}
    for judged in verdicts:
        if judged.phase not in latest or judged.attempt >= latest[judged.phase].attempt:
            latest[judged.phase] = judged
    waivers = {(h["phase"], h["attempt"]): h["waiver"] for h in history if h.get("waiver")}
    current = latest_attempts(phases)
    rows = []
    for spec in pipeline.phases if pipeline else ():
        verdict = latest.get(spec.name)
        waiver = waivers.get((spec.name, verdict.attempt)) if verdict else None
        record = current.get(spec.name)
        rows.append(
            _gate_row(
                spec.name,
                spec.gate.pass_threshold,
                spec.gate.rubrics,
                verdict,
                waiver,
                attempts=sum(1 for v in verdicts if v.phase == spec.name),
                failed_now=bool(
                    verdict
                    and record
                    and record.status is PhaseStatus.FAILED
                    and record.attempt == verdict.attempt
                ),
                asking=spec.name in asking,
            )
        )
    return rows


def _gate_row(
    phase: str,
    threshold: float,
    rubrics: Mapping[str, float],
    verdict: GateEvaluationRecord | None,
    waiver: Mapping[str, Any] | None,
    *,
    attempts: int,
    failed_now: bool,
    asking: bool,
) -> GateRow:
    result: Mapping[str, object] = verdict.result if verdict else {}
    scores = _scores(result.get("rubrics") or result.get("rubric_scores"))
    threshold = verdict.threshold if verdict else threshold
    failed = verdict is not None and not verdict.passed and waiver is None
    reasons, gaps = _reasons(result)
    return GateRow(
        phase=phase,
        threshold=threshold,
        rubrics=dict(rubrics),
        verdict=verdict,
        state=_state(verdict, waiver, asking=asking),
        attempts=attempts,
        scores=scores,
        failing=_failing(scores, threshold) if failed else (),
        reasons=reasons,
        gaps=gaps,
        blocked=_blocked(result) if failed else (),
        waiver=waiver,
        waivable=failed and failed_now,
        qav=_qav_summary(result),
    )


def _failing(scores: Mapping[str, float | None], threshold: float) -> tuple[str, ...]:
    return tuple(sorted(r for r, s in scores.items() if s is not None and s < threshold))


def _state(
    verdict: GateEvaluationRecord | None, waiver: Mapping[str, Any] | None, *, asking: bool
) -> str:
    if asking:
        return "asking"
    if verdict is None:
        return "not judged"
    if waiver is not None:
        return "waived"
    return "passed" if verdict.passed else "failed"


def _scores(value: object) -> dict[str, float | None]:
    """Rubric scores as numbers, or a rubric's ``{"score": …}``; a null score is a gap."""
    if not isinstance(value, Mapping):
        return {}
    found: dict[str, float | None] = {}
    for key, given in value.items():
        score = given.get("score") if isinstance(given, Mapping) else given
        if isinstance(score, int | float) and not isinstance(score, bool):
            found[str(key)] = float(score)
        elif score is None:
            found[str(key)] = None
    return found


def _texts(value: object) -> list[str]:
    return [str(item) for item in value if item] if isinstance(value, list | tuple) else []


def _reasons(result: Mapping[str, object]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The verdict's reasons (issues of hand-made rows too) and its evidence gaps, apart."""
    gaps = _texts(result.get("evidence_gaps"))
    reasons = []
    for reason in _texts(result.get("reasons")):
        if reason.startswith(GAP_PREFIX) and reason.removeprefix(GAP_PREFIX) in gaps:
            continue  # shown with the gaps
        reasons.append(reason)
    if not reasons:  # a verdict without reasons: say what its issues were
        for issue in _issues(result):
            kind = issue.get("kind") or issue.get("type") or ""
            reasons.append(f"{issue.get('severity', '')} {kind}: {issue.get('description', '')}")
    return tuple(r.strip() for r in reasons), tuple(gaps)


def _issues(result: Mapping[str, object]) -> list[Mapping[str, object]]:
    issues = result.get("issues")
    return [i for i in issues if isinstance(i, Mapping)] if isinstance(issues, list) else []


def _blocked(result: Mapping[str, object]) -> tuple[str, ...]:
    return tuple(
        str(i.get("description", "")) for i in _issues(result) if i.get("waivable", True) is False
    )


def open_questions(questions: Sequence[QuestionRecord]) -> dict[str, list[QuestionRecord]]:
    """The questions waiting for a person, by phase, in the order they were asked."""
    found: dict[str, list[QuestionRecord]] = {}
    for question in questions:
        if question.status == "open":
            found.setdefault(question.phase, []).append(question)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class AssumptionItem:
    """An assumption Q/A/V recorded, and the person's answer if one came later."""

    question_id: str | None
    topic: str
    text: str
    reason: str  # unknown, rejected
    answer: str | None


def assumption_groups(
    assumptions: Sequence[AssumptionRecord],
    questions: Sequence[QuestionRecord],
    answers: Sequence[AnswerRecord],
) -> list[tuple[str, list[AssumptionItem]]]:
    """The Q/A/V assumptions by phase, in the order they were recorded."""
    topics = {q.id: q.topic for q in questions}
    people = {a.question_id: a.text for a in answers if a.source == "person"}
    groups: dict[str, list[AssumptionItem]] = {}
    for made in assumptions:
        qid = made.question_id
        groups.setdefault(made.phase, []).append(
            AssumptionItem(
                question_id=qid,
                topic=topics.get(qid, "") if qid else "",
                text=made.text,
                reason=made.reason,
                answer=people.get(qid) if qid else None,
            )
        )
    return list(groups.items())
