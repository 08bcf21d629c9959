"""The critique phase's guards: risk_coverage and assumption_validation.

**risk_coverage** reads RiskRegister.risks: the mean of (risks / ``min_risks``, capped), the
share of ``categories`` (technical, business, user) with at least one risk, and the share of
risks with a substantive mitigation and an owner. It passes when there are at least
``min_risks`` risks, every category is covered and every risk is mitigated; it feeds rubric
``risk_coverage``.

**assumption_validation** reads RevisedAssumptions.assumptions: an assumption is *challenged*
when its status is ``challenged`` (or it states a ``challenge``) and it names a
``validation_method``. The score is the mean of (challenged / ``min_challenged``, capped), the
share of challenged assumptions that say how to validate them, and the share of the IdeaSpec's
recorded assumptions (``A-01``…) that some revised assumption takes up (``source``). It passes
when at least ``min_challenged`` are challenged and every intake assumption is taken up; it
feeds rubric ``assumption_quality``.

Both report shortfalls as issues of kind ``coverage`` naming the agents producing the artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.reading import pool, records, thinness
from ideamine.knowledge.guards.settings import COUNT, NAMES, NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["check_assumption_validation", "check_risk_coverage"]

RISK_KEYS = {"min_risks": COUNT, "categories": NAMES, "min_score": NUMBER}
ASSUMPTION_KEYS = {"min_challenged": COUNT, "min_score": NUMBER}
CATEGORIES = ("technical", "business", "user")


def check_risk_coverage(given: GuardInput) -> GuardReport:
    """The risk_coverage guard."""
    cfg = settings("risk_coverage", given.config, RISK_KEYS)
    risks = records(given.artifacts.get("RiskRegister"), "risks")
    need = cfg.count("min_risks", 3)
    categories = cfg.names("categories", CATEGORIES)
    checks = [_risk_count(risks, need), _categories(risks, categories), _mitigated(risks)]
    return scored(
        "risk_coverage",
        checks,
        rubrics=("risk_coverage",),
        min_score=cfg.number("min_score", 1.0),
        severity="medium",
        kind="coverage",
        missing_agents=given.producers.get("RiskRegister", ()),
        also_failed=any(c.score < 1 for c in checks),
    )


def _risk_count(risks: list[Mapping[str, Any]], need: int) -> Check:
    problem = (
        f"RiskRegister lists {len(risks)} risks, fewer than {need}" if len(risks) < need else ""
    )
    score = fraction(len(risks), need) if need else 1.0
    return Check(name="count", score=score, problem=problem, note=f"{len(risks)} risks")


def _categories(risks: list[Mapping[str, Any]], categories: tuple[str, ...]) -> Check:
    seen = {str(r.get("category", "")).lower() for r in risks}
    missing = [c for c in categories if c.lower() not in seen]
    return Check(
        name="categories",
        score=fraction(len(categories) - len(missing), len(categories)) if categories else 1.0,
        problem=f"no risk in categor{'y' if len(missing) == 1 else 'ies'} {shown(missing)}"
        if missing
        else "",
        note=f"categories {', '.join(categories)} covered",
    )


def _mitigated(risks: list[Mapping[str, Any]]) -> Check:
    if not risks:
        return Check(name="mitigated", score=0.0, problem="RiskRegister has no risk to mitigate")
    bare = [
        str(r.get("id", f"risks[{i}]"))
        for i, r in enumerate(risks)
        if thinness(r.get("mitigation"), min_chars=10, min_items=1)
        or thinness(r.get("owner"), min_chars=2, min_items=1)
    ]
    return Check(
        name="mitigated",
        score=fraction(len(risks) - len(bare), len(risks)),
        problem=f"{len(bare)} risk(s) lack a mitigation or an owner: {shown(bare)}" if bare else "",
        note="every risk has a mitigation and an owner",
    )


def check_assumption_validation(given: GuardInput) -> GuardReport:
    """The assumption_validation guard."""
    cfg = settings("assumption_validation", given.config, ASSUMPTION_KEYS)
    revised = records(given.artifacts.get("RevisedAssumptions"), "assumptions")
    challenged = [a for a in revised if _challenged(a)]
    need = cfg.count("min_challenged", 5)
    intake = records(pool(given.artifacts, given.upstream).get("IdeaSpec"), "assumptions")
    checks = [
        _challenge_count(challenged, need),
        _validated(challenged),
        _taken_up(intake, revised),
    ]
    return scored(
        "assumption_validation",
        checks,
        rubrics=("assumption_quality",),
        min_score=cfg.number("min_score", 1.0),
        severity="medium",
        kind="coverage",
        missing_agents=given.producers.get("RevisedAssumptions", ()),
        also_failed=checks[0].score < 1 or checks[2].score < 1,
    )


def _challenged(assumption: Mapping[str, Any]) -> bool:
    status = str(assumption.get("status", "")).lower()
    stated = thinness(assumption.get("challenge"), min_chars=10, min_items=1) is None
    return status == "challenged" or (status == "" and stated)


def _challenge_count(challenged: list[Mapping[str, Any]], need: int) -> Check:
    return Check(
        name="count",
        score=fraction(len(challenged), need) if need else 1.0,
        problem=f"{len(challenged)} assumptions challenged, fewer than {need}"
        if len(challenged) < need
        else "",
        note=f"{len(challenged)} assumptions challenged",
    )


def _validated(challenged: list[Mapping[str, Any]]) -> Check:
    if not challenged:
        return Check(name="validated", score=0.0, problem="no assumption is challenged")
    untestable = [
        str(a.get("id", f"assumptions[{i}]"))
        for i, a in enumerate(challenged)
        if thinness(a.get("validation_method"), min_chars=10, min_items=1)
    ]
    return Check(
        name="validated",
        score=fraction(len(challenged) - len(untestable), len(challenged)),
        problem=f"{len(untestable)} challenged assumption(s) say not how to validate them: "
        + shown(untestable)
        if untestable
        else "",
        note="each says how to validate it",
    )


def _taken_up(intake: list[Mapping[str, Any]], revised: list[Mapping[str, Any]]) -> Check:
    ids = [str(a["id"]) for a in intake if "id" in a]
    sources = {str(a.get("source", "")) for a in revised}
    dropped = [i for i in ids if i not in sources]
    return Check(
        name="taken_up",
        score=1.0 if not ids else fraction(len(ids) - len(dropped), len(ids)),
        problem=f"intake assumptions no revised assumption takes up: {shown(dropped)}"
        if dropped
        else "",
        note=f"all {len(ids)} intake assumptions revisited",
    )
