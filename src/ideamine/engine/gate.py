"""The gate: score a phase attempt's evidence, and decide what happens after a verdict.

Pure functions over plain data (guard reports as dictionaries, see
``ideamine.knowledge.guards.base.GuardReport.as_dict``), so a verdict can be replayed from
what the ledger holds.

score = Σ weight × rubric score over the rubrics measured; a rubric a guard could not measure
because the evidence cannot be produced here (an *evidence gap*, e.g. no advisory source for
the vulnerability scan) is left out and the other weights renormalised, and the gap is named
in the reasons; so is grounding when the phase's Q/A/V is off. Any other rubric nothing
measures scores 0. The gate passes when no critical guard
fails and score ≥ pass_threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ideamine.canonical import content_hash
from ideamine.config.model import GateSpec, PhaseSpec, PipelineSpec

__all__ = [
    "FIX_STRATEGIES",
    "JUDGED_GUARDS",
    "Decision",
    "calls_no_model",
    "decide",
    "failure_signature",
    "fix_strategy",
    "score_gate",
]

# Rubrics a guard type feeds when it reports an evidence gap (and so gives no score).
_GAP_RUBRICS: Mapping[str, tuple[str, ...]] = {
    "cve_count": ("vulnerabilities",),
    "deployment_health": ("deployment_health",),
    "monitoring": ("monitoring",),
    "canary_validation": ("canary",),
}

# SPEC §5 Gate: issue kind → auto-fix strategy.
FIX_STRATEGIES: Mapping[str, str] = {
    "grounding": "rerun-qav-stricter",
    "coverage": "add-missing-agents",
    "security": "rerun-security-scans",
    "contradictions": "stricter-validation",
    "ambiguity": "stricter-validation",
    "scope": "smaller-chunks",
    "tests": "fix-from-feedback",
}
ESCALATE = "escalate"
STRICT_GROUNDING = 0.9
CHUNK_SCALE = 0.7


JUDGED_GUARDS = frozenset({"contradictions"})  # guard types that may ask a model judge


def calls_no_model(pipeline: PipelineSpec, phase: PhaseSpec) -> bool:
    """Whether judging ``phase`` calls no model: its Q/A/V is off, and none of its guards
    asks the model judge (there is none on the offline model, and ``judge: false`` turns it
    off). Such a gate is judged in its fan-in's step (``runtime.gatestep``), not by a task."""
    if phase.qav.enabled and phase.qav.max_questions > 0:
        return False
    asks = any(
        guard.type in JUDGED_GUARDS and guard.config.get("judge", True) is not False
        for guard in phase.guards
    )
    if not asks:
        return True
    chain = pipeline.models_for(pipeline.agents[phase.agents[0]])
    return all(reference.startswith("offline:") for reference in chain)


def fix_strategy(kind: str) -> str:
    """The auto-fix strategy for an issue kind; anything unknown escalates."""
    return FIX_STRATEGIES.get(kind, ESCALATE)


def score_gate(
    gate: GateSpec,
    reports: Sequence[Mapping[str, Any]],
    *,
    grounding: float | None,
    attempt: int,
    ungrounded: str = "Q/A/V is off for this phase",
) -> dict[str, Any]:
    """The GateResult (SPEC §3) for one attempt, as a JSON-ready dictionary.

    ``grounding`` is None when Q/A/V measured nothing; ``ungrounded`` says why."""
    rubrics, gaps = _rubric_scores(gate, reports)
    notes = (
        []
        if grounding is not None or "grounding" not in rubrics
        else [f"grounding not measured ({ungrounded})"]
    )
    if grounding is not None and "grounding" in rubrics:
        rubrics["grounding"] = {
            **rubrics["grounding"],
            "score": round(grounding, 4),
            "sources": ["qav"],
        }
    measured = {name: r for name, r in rubrics.items() if r["score"] is not None}
    weight = sum(r["weight"] for r in measured.values())
    failed = [r for r in reports if not r["passed"]]
    if weight > 0:
        score = sum(r["weight"] * r["score"] for r in measured.values()) / weight
    else:  # nothing measured (no guard, Q/A/V off): the guards' verdicts alone decide
        score = 0.0 if failed else 1.0
        notes.append("no rubric is measured: only the guards' pass or fail decides")
    critical = [r for r in failed if r["severity"] == "critical"]
    passed = not critical and score >= gate.pass_threshold - 1e-9
    issues = _issues(reports, rubrics, gate)
    reasons = [*_reasons(reports, rubrics, gaps, score, gate.pass_threshold, critical), *notes]
    return {
        "pass": passed,
        "score": round(score, 4),
        "threshold": gate.pass_threshold,
        "attempt": attempt,
        "rubrics": rubrics,
        "reasons": reasons,
        "issues": issues,
        "evidence_gaps": gaps,
    }


def _rubric_scores(
    gate: GateSpec, reports: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each rubric's weight, score (None when left out) and sources; and the evidence gaps."""
    gap_rubrics = {
        rubric
        for report in reports
        if report.get("evidence_gap")
        for rubric in _GAP_RUBRICS.get(str(report["type"]), ())
    }
    gaps = [
        f"{report['type']}: {'; '.join(report.get('reasons', ())) or 'no evidence'}"
        for report in reports
        if report.get("evidence_gap")
    ]
    rubrics: dict[str, dict[str, Any]] = {}
    for name, weight in sorted(gate.rubrics.items()):
        values = [
            float(report["scores"][name]) for report in reports if name in report.get("scores", {})
        ]
        sources = [str(r["type"]) for r in reports if name in r.get("scores", {})]
        score: float | None
        if values:
            score = round(sum(values) / len(values), 4)
        elif name in gap_rubrics or name == "grounding":
            score = None  # an evidence gap, or Q/A/V measured nothing: left out and named
        else:
            score = 0.0
        rubrics[name] = {"weight": weight, "score": score, "sources": sources}
    return rubrics, gaps


def _issues(
    reports: Sequence[Mapping[str, Any]], rubrics: Mapping[str, Mapping[str, Any]], gate: GateSpec
) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    for report in reports:
        if report["passed"]:
            continue
        listed = report.get("issues") or [
            {
                "kind": "quality",
                "severity": report["severity"],
                "description": "; ".join(report.get("reasons", ())) or f"{report['type']} failed",
            }
        ]
        for issue in listed:
            issues.append(
                {
                    "guard": report["type"],
                    "kind": issue["kind"],
                    "severity": issue["severity"],
                    "description": issue["description"],
                    "missing_agents": list(issue.get("missing_agents", ())),
                    "waivable": bool(issue.get("waivable", True)),
                    "fix_strategy": fix_strategy(str(issue["kind"])),
                }
            )
    grounding = rubrics.get("grounding")
    if grounding and grounding["score"] is not None and grounding["score"] < gate.pass_threshold:
        issues.append(
            {
                "guard": "qav",
                "kind": "grounding",
                "severity": "medium",
                "description": f"grounding {grounding['score']:.2f} is below "
                f"{gate.pass_threshold:.2f}",
                "missing_agents": [],
                "waivable": True,
                "fix_strategy": fix_strategy("grounding"),
            }
        )
    return issues


def _reasons(
    reports: Sequence[Mapping[str, Any]],
    rubrics: Mapping[str, Mapping[str, Any]],
    gaps: Sequence[str],
    score: float,
    threshold: float,
    critical: Sequence[Mapping[str, Any]],
) -> list[str]:
    reasons = [
        f"guard {r['type']} failed ({r['severity']}): {'; '.join(r.get('reasons', ()))}"
        for r in reports
        if not r["passed"]
    ]
    reasons += [f"evidence gap: {gap}" for gap in gaps]
    reasons += [
        f"rubric {name} is not measured by any guard (scored 0)"
        for name, r in rubrics.items()
        if r["score"] == 0.0 and not r["sources"]
    ]
    if score < threshold:
        reasons.append(f"score {score:.3f} is below the pass threshold {threshold:.2f}")
    if critical:
        reasons.append("critical guard failed: " + ", ".join(str(r["type"]) for r in critical))
    return reasons


def failure_signature(result: Mapping[str, Any]) -> str:
    """What identifies a failure: its issues and rubric scores. Two attempts with the same
    signature made no progress."""
    return content_hash(
        {
            "issues": sorted(
                (str(i["guard"]), str(i["kind"]), str(i["description"])) for i in result["issues"]
            ),
            "rubrics": {name: r["score"] for name, r in result["rubrics"].items()},
        }
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What follows a verdict.

    ``outcome`` is ``pass`` (the phase passes), ``retry`` (attempt + 1 with ``strategies``,
    rerunning ``rerun`` agents — all of them when None — carrying the others' outputs) or
    ``escalate`` (the run needs a person: ``reason`` says why).
    """

    outcome: str
    reason: str = ""
    strategies: tuple[str, ...] = ()
    rerun: frozenset[str] | None = None
    min_grounding: float | None = None
    batch_scale: float = 1.0


def decide(
    phase: PhaseSpec,
    result: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None,
) -> Decision:
    """Pass, retry with an auto-fix, or escalate (SPEC §5 Gate)."""
    if result["pass"]:
        return Decision(outcome="pass")
    attempt = int(result["attempt"])
    if attempt >= phase.gate.max_attempts:
        return Decision(
            outcome="escalate",
            reason=f"gate failed {attempt} of {phase.gate.max_attempts} attempts",
        )
    if previous is not None and failure_signature(previous) == failure_signature(result):
        return Decision(
            outcome="escalate",
            reason=f"attempt {attempt} failed exactly like attempt {previous['attempt']} "
            "(same issues, same scores): no progress",
        )
    if not phase.gate.auto_fix:
        return Decision(outcome="escalate", reason="gate failed and auto_fix is off")
    strategies = tuple(sorted({str(i["fix_strategy"]) for i in result["issues"]}))
    if not strategies:
        strategies = ("fix-from-feedback",)  # a low score with no named issue
    if ESCALATE in strategies:
        kinds = sorted({str(i["kind"]) for i in result["issues"] if i["fix_strategy"] == ESCALATE})
        return Decision(outcome="escalate", reason=f"no automatic fix for: {', '.join(kinds)}")
    return Decision(
        outcome="retry",
        strategies=strategies,
        rerun=_rerun(phase, result, strategies),
        min_grounding=STRICT_GROUNDING if "rerun-qav-stricter" in strategies else None,
        batch_scale=CHUNK_SCALE if "smaller-chunks" in strategies else 1.0,
    )


def _rerun(
    phase: PhaseSpec, result: Mapping[str, Any], strategies: Sequence[str]
) -> frozenset[str] | None:
    """Agents the next attempt runs again; None means all of them."""
    agents: set[str] = set()
    for strategy in strategies:
        if strategy == "add-missing-agents":
            missing = {
                str(a)
                for i in result["issues"]
                if i["fix_strategy"] == strategy
                for a in i["missing_agents"]
            }
            if not missing:
                return None
            agents |= missing
        elif strategy == "rerun-security-scans":
            agents |= set(phase.evidence_agents) or set(phase.agents)
        elif strategy == "rerun-qav-stricter":
            continue  # the drafts stand; only the judge runs again, stricter
        else:
            return None
    known = agents & set(phase.agents)
    if strategies and not known and "rerun-qav-stricter" not in strategies:
        return None
    # evidence agents measure the others' output: they run again whenever anything does
    return frozenset(known | (set(phase.evidence_agents) if known else set()))
