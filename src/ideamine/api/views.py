"""JSON bodies of API responses: the CLI's ``--json`` views (``ideamine.cli.views``) plus
what the API adds (project, progress, budgets, gate verdicts, question counts, links), and the
response models that document the quality loop's endpoints in the OpenAPI document. Field
names are a stable interface."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, Field, JsonValue

from ideamine.cli.views import run_summary, run_view
from ideamine.service_api import RunDetail
from ideamine.stores.knowledge import QuestionRecord
from ideamine.stores.records import RunRecord

__all__ = [
    "AnswerReceipt",
    "GatesView",
    "Problem",
    "QuestionsView",
    "WaiveReceipt",
    "gate_summaries",
    "problems",
    "question_counts",
    "run_detail_view",
    "run_links",
    "run_list_view",
]

QUESTION_STATUSES = ("accepted", "rejected", "unknown", "open", "answered")


def run_links(run_id: str) -> dict[str, str]:
    base = f"/runs/{run_id}"
    return {
        "self": base,
        "events": f"{base}/events",
        "stream": f"{base}/events/stream",
        "artifacts": f"{base}/artifacts",
        "questions": f"{base}/questions",
        "gates": f"{base}/gates",
        "dossier": f"{base}/dossier?format=html",
        "dashboard": f"/dashboard/runs/{run_id}",
    }


def run_list_view(detail: RunDetail) -> dict[str, object]:
    """A run as listed by ``GET /runs``: ``ideamine runs --json`` plus progress and cost."""
    return {
        **run_summary(detail.run),
        **_extra(detail.run),
        "progress": round(detail.progress, 4),
        "tokens": detail.tokens,
        "cost_usd": detail.cost_usd,
    }


def run_detail_view(
    detail: RunDetail,
    *,
    gates: Sequence[Mapping[str, Any]] = (),
    questions: Sequence[QuestionRecord] = (),
) -> dict[str, object]:
    """A run as ``GET /runs/{id}`` returns it: ``ideamine status --json`` plus budgets, each
    phase's latest gate verdict (``gates`` is ``service_quality.gate_history``) and the
    count of the run's questions by status."""
    view = run_view(detail.run, detail.phases, detail.tasks, detail.calls, detail.order)
    budgets = [asdict(b) for b in detail.budgets]
    return {
        **view,
        **_extra(detail.run),
        "progress": round(detail.progress, 4),
        "budgets": {
            "phases": budgets,
            "tokens_used": detail.tokens,
            "tokens_budget": sum(b.tokens_budget for b in detail.budgets),
            "usd_used": detail.cost_usd,
            "usd_budget": round(sum(b.usd_budget for b in detail.budgets), 6),
        },
        "gates": gate_summaries(gates, detail.order),
        "questions": question_counts(questions),
        "links": run_links(detail.run.id),
    }


def gate_summaries(
    history: Sequence[Mapping[str, Any]], order: Sequence[str]
) -> list[dict[str, object]]:
    """Each judged phase's latest verdict, in pipeline order: passed or waived, score against
    threshold, reasons and evidence gaps, and how many verdicts the phase had."""
    latest: dict[str, Mapping[str, Any]] = {}
    for verdict in history:  # oldest first within a phase's attempts
        known = latest.get(verdict["phase"])
        if known is None or verdict["attempt"] >= known["attempt"]:
            latest[verdict["phase"]] = verdict
    counts = Counter(str(v["phase"]) for v in history)
    ranked = {name: index for index, name in enumerate(order)}
    phases = sorted(latest, key=lambda name: (ranked.get(name, len(ranked)), name))
    return [
        {
            "phase": name,
            "attempt": latest[name]["attempt"],
            "verdicts": counts[name],
            "passed": latest[name]["passed"],
            "waived": latest[name].get("waiver") is not None,
            "score": latest[name]["score"],
            "threshold": latest[name]["threshold"],
            "reasons": list(latest[name].get("reasons", [])),
            "evidence_gaps": list(latest[name].get("evidence_gaps", [])),
        }
        for name in phases
    ]


def question_counts(questions: Sequence[QuestionRecord]) -> dict[str, int]:
    """How many questions the run was asked, and how many are in each status (``open``:
    waiting for a person's answer)."""
    statuses = Counter(q.status for q in questions)
    return {"asked": len(questions)} | {status: statuses[status] for status in QUESTION_STATUSES}


def _extra(run: RunRecord) -> dict[str, object]:
    return {
        "project": run.project,
        "source": run.source,
        "driver": run.driver,
        "constraints": dict(run.constraints),
    }


# Response models: they document the quality loop's endpoints (and check what they return).


class QuestionView(BaseModel):
    """A question the Q/A/V loop asked about a phase attempt."""

    id: str = Field(description="`<phase>.<attempt>.Q<iteration>.<rank>`, unique in the run.")
    run_id: str
    phase: str
    attempt: int
    iteration: int
    rank: int
    text: str
    topic: str
    status: str = Field(
        description="`accepted`, `rejected` or `unknown` (the answer agent's answer, as "
        "validated); `open`: waits for a person (runs started with `ask`); `answered`: a "
        "person answered it."
    )
    created_at: str


class AnswerView(BaseModel):
    """An answer: the answer agent's (with its validation) or a person's."""

    question_id: str
    source: str = Field(description="`agent` or `person`.")
    text: str
    citations: list[dict[str, JsonValue]] = Field(
        description="Where the answer's words come from: `{artifact, path, quote}` or "
        "`{frame, quote}`."
    )
    validation: dict[str, JsonValue] | None = Field(
        description="The validator's scores (grounding, completeness, specificity, "
        "consistency), mean, verdict and reasons; null for a person's answer."
    )
    accepted: bool
    created_at: str


class AssumptionView(BaseModel):
    """What the run went on with for a question left without an accepted answer."""

    question_id: str | None
    phase: str
    attempt: int
    text: str
    reason: str = Field(description="`unknown` or `rejected`.")
    created_at: str


class QuestionsView(BaseModel):
    """Every question the run's Q/A/V loop asked, every answer, every assumption."""

    questions: list[QuestionView]
    answers: list[AnswerView]
    assumptions: list[AssumptionView]
    open: int = Field(description="How many questions wait for a person's answer.")

    model_config = {
        "json_schema_extra": {
            "example": {
                "questions": [
                    {
                        "id": "intake.1.Q1.4",
                        "run_id": "61d69dac6374",
                        "phase": "intake",
                        "attempt": 1,
                        "iteration": 1,
                        "rank": 4,
                        "text": "Is it confirmed that the budget is $5,000 (IdeaSpec)?",
                        "topic": "budget 5000",
                        "status": "open",
                        "created_at": "2026-11-26T01:13:45.887060+00:00",
                    }
                ],
                "answers": [
                    {
                        "question_id": "intake.1.Q1.4",
                        "source": "agent",
                        "text": "UNKNOWN",
                        "citations": [],
                        "validation": {
                            "accepted": False,
                            "mean": 0.0,
                            "reasons": ["unknown: nothing in the artifacts or frames answers it"],
                            "scores": {
                                "grounding": 0.0,
                                "completeness": 0.0,
                                "specificity": 0.0,
                                "consistency": 0.0,
                            },
                        },
                        "accepted": False,
                        "created_at": "2026-11-26T01:13:45.887060+00:00",
                    }
                ],
                "assumptions": [
                    {
                        "question_id": "intake.1.Q1.4",
                        "phase": "intake",
                        "attempt": 1,
                        "text": "Is it confirmed that the budget is $5,000 (IdeaSpec)? "
                        "Unanswered: the run goes on without an answer.",
                        "reason": "unknown",
                        "created_at": "2026-11-26T01:13:45.887060+00:00",
                    }
                ],
                "open": 1,
            }
        }
    }


class AnswerReceipt(BaseModel):
    """A person's answer was recorded."""

    question_id: str
    resumed: bool = Field(
        description="True when it was the last open question: the run is running again "
        "(this server drives it)."
    )
    open: int = Field(description="Questions still waiting for an answer.")

    model_config = {
        "json_schema_extra": {
            "example": {"question_id": "intake.1.Q1.4", "resumed": False, "open": 2}
        }
    }


class WaiverView(BaseModel):
    """A person's waiver of a failed gate."""

    phase: str
    attempt: int
    reason: str
    expires_at: str
    created_at: str


class GateView(BaseModel):
    """One gate verdict on a phase attempt."""

    phase: str
    attempt: int
    passed: bool = Field(description="The verdict itself; a waived gate stays `false`.")
    score: float
    threshold: float
    result: dict[str, JsonValue] = Field(
        description="The GateResult: `rubrics` (score, weight, sources; a null score is an "
        "evidence gap), `reasons`, `evidence_gaps`, `issues` (guard, kind, severity, "
        "description, fix_strategy, waivable) and the `evidence` it judged (guards' reports, "
        "the Q/A/V summary `qav`, metrics)."
    )
    created_at: str
    waiver: WaiverView | None = Field(description="Set when a person waived this verdict.")


class GatesView(BaseModel):
    """Every gate verdict of a run, oldest first within each phase."""

    gates: list[GateView]
    note: str | None = Field(description="Says why the list is empty.")

    model_config = {
        "json_schema_extra": {
            "example": {
                "gates": [
                    {
                        "phase": "prd",
                        "attempt": 1,
                        "passed": False,
                        "score": 0.8333,
                        "threshold": 0.9,
                        "result": {
                            "pass": False,
                            "score": 0.8333,
                            "threshold": 0.9,
                            "rubrics": {
                                "coverage": {
                                    "score": 0.8333,
                                    "weight": 1.0,
                                    "sources": ["coverage"],
                                }
                            },
                            "reasons": ["guard coverage failed (medium): NFRs.nfrs has 2 nfrs"],
                            "evidence_gaps": [],
                            "issues": [
                                {
                                    "guard": "coverage",
                                    "kind": "coverage",
                                    "severity": "medium",
                                    "description": "NFRs.nfrs has 2 nfrs, fewer than 3",
                                    "fix_strategy": "add-missing-agents",
                                    "waivable": True,
                                }
                            ],
                        },
                        "created_at": "2026-11-26T01:18:24.218154+00:00",
                        "waiver": {
                            "phase": "prd",
                            "attempt": 1,
                            "reason": "accepted for the beta; NFRs follow in the next release",
                            "expires_at": "2027-01-31T23:59:59+00:00",
                            "created_at": "2026-11-26T01:30:00.000000+00:00",
                        },
                    }
                ],
                "note": None,
            }
        }
    }


class WaiveReceipt(BaseModel):
    """The failed gate of the phase's latest attempt was waived; the run goes on."""

    run_id: str
    phase: str
    attempt: int = Field(description="The attempt whose gate was waived.")

    model_config = {
        "json_schema_extra": {"example": {"run_id": "555ec306b1e6", "phase": "prd", "attempt": 1}}
    }


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """Every error: a code, a message, what to do next, and the ids it concerns."""

    error: str
    message: str
    hint: str
    run_id: str | None = None
    fields: list[FieldProblem] | None = None


def problems(
    described: Mapping[int, tuple[str, Mapping[str, object]]],
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for errors: status → (when it happens, an example body)."""
    return {
        status: {
            "model": Problem,
            "description": description,
            "content": {"application/json": {"example": dict(example)}},
        }
        for status, (description, example) in described.items()
    }
