"""The beta phase's guards: deployment_health, monitoring and canary_validation.

They need a real deployment, which the offline pipeline cannot make. When the beta artifacts
say nothing was deployed or observed (``executed: false``, ``status: planned``, no data) the
guard reports an *evidence gap*: it passes with a warning, or fails critical under
``strict_evidence``. A report that claims a deployment without an executed ``evidence``
envelope is *no evidence* and fails (severity high).

**deployment_health** reads DeploymentReport.health (a number 0–1, ``{"score": …}``,
``{"passed": n, "total": m}`` or ``{"checks": [{"passed": bool}, …]}``); it must reach
``min_score`` (0.95). Rubric ``deployment_health``.

**monitoring** checks MonitoringDashboard.dashboards: every configured dashboard (error_rate,
latency, throughput, availability) exists with a query and a threshold — a structural fact
scored as that share (rubric ``monitoring``) even before deployment. Whether the dashboards
receive data needs a deployment: no ``data`` is an evidence gap; measured ``data`` must name
every configured dashboard.

**canary_validation** checks the canary rule in CanaryResults and the DeploymentPlan: it must
last at least ``duration_minutes`` (15) and abort above ``max_error_rate`` (0.01); a laxer rule
fails. An observed canary must have run that long with an error rate within the limit. Rubric
``canary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport, Issue
from ideamine.knowledge.guards.evidence import evidence_gap, no_evidence, unmeasured
from ideamine.knowledge.guards.reading import at, is_number, pool, records, thinness
from ideamine.knowledge.guards.settings import NAMES, NUMBER, settings
from ideamine.knowledge.guards.verdict import fraction, mean, shown

__all__ = ["check_canary_validation", "check_deployment_health", "check_monitoring"]

HEALTH_KEYS = {"min_score": NUMBER}
MONITOR_KEYS = {"dashboards": NAMES}
CANARY_KEYS = {"duration_minutes": NUMBER, "max_error_rate": NUMBER}
DASHBOARDS = ("error_rate", "latency", "throughput", "availability")
_NOT_RUN = frozenset({"planned", "pending", "not_deployed", "not_run", "skipped"})


def _not_run(report: Mapping[str, Any]) -> bool:
    """The report says the thing was not done (as opposed to claiming it without evidence)."""
    envelope = report.get("evidence")
    if isinstance(envelope, Mapping) and envelope.get("executed") is False:
        return True
    status = str(report.get("status", report.get("decision", ""))).lower()
    return report.get("executed") is False or status in _NOT_RUN


def _why(report: Mapping[str, Any], default: str) -> str:
    reason = report.get("reason")
    return reason if isinstance(reason, str) and reason else default


def _verdict(type_: str, rubric: str, ok: bool, score: float, reasons: list[str]) -> GuardReport:
    issues = () if ok else (Issue(kind="quality", severity="high", description="; ".join(reasons)),)
    return GuardReport(
        type=type_,
        passed=ok,
        score=score,
        reasons=tuple(reasons),
        severity="low" if ok else "high",
        scores={rubric: score},
        issues=issues,
    )


def check_deployment_health(given: GuardInput) -> GuardReport:
    """The deployment_health guard."""
    cfg = settings("deployment_health", given.config, HEALTH_KEYS)
    report = given.artifacts.get("DeploymentReport")
    if isinstance(report, Mapping) and _not_run(report):
        why = _why(report, "the report says nothing was deployed")
        return evidence_gap("deployment_health", given, f"DeploymentReport: {why}")
    problem = unmeasured(report, "DeploymentReport")
    health = _health(report.get("health")) if isinstance(report, Mapping) else None
    if problem or health is None:
        return no_evidence(
            "deployment_health",
            ("deployment_health",),
            [problem or "DeploymentReport has no health measurement"],
        )
    minimum = cfg.number("min_score", 0.95)
    ok = health >= minimum - 1e-9
    return _verdict(
        "deployment_health",
        "deployment_health",
        ok,
        health,
        [f"deployment health {health:.2f} (minimum {minimum:.2f})"],
    )


def _health(value: object) -> float | None:
    if is_number(value):
        return max(0.0, min(1.0, float(value)))
    if not isinstance(value, Mapping):
        return None
    if is_number(value.get("score")):
        return _health(value["score"])
    if is_number(value.get("passed")) and is_number(value.get("total")):
        return fraction(float(value["passed"]), float(value["total"]))
    checks = records(value, "checks")
    return (
        fraction(sum(1 for c in checks if c.get("passed") is True), len(checks)) if checks else None
    )


def check_monitoring(given: GuardInput) -> GuardReport:
    """The monitoring guard."""
    cfg = settings("monitoring", given.config, MONITOR_KEYS)
    wanted = cfg.names("dashboards", DASHBOARDS)
    found = given.artifacts.get("MonitoringDashboard")
    board: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    structure, reasons = _dashboards(board, wanted)
    if len(reasons) > 1:
        return _verdict("monitoring", "monitoring", False, structure, reasons)
    if board.get("data") is None or _not_run(board):
        why = _why(board, "the dashboards have no data: nothing is deployed to observe")
        scores = {"monitoring": structure}
        gap = f"MonitoringDashboard: {why}"
        return evidence_gap("monitoring", given, gap, scores=scores, extra=reasons)
    problem = unmeasured(board, "MonitoringDashboard")
    if problem:
        return no_evidence("monitoring", ("monitoring",), [problem])
    data = board["data"] if isinstance(board["data"], Mapping) else {}
    silent = [n for n in wanted if data.get(n) is None]
    score = mean((structure, fraction(len(wanted) - len(silent), len(wanted)) if wanted else 1.0))
    reasons += [f"no data for: {shown(silent)}"] if silent else []
    return _verdict("monitoring", "monitoring", not silent, score, reasons)


def _dashboards(board: Mapping[str, Any], wanted: tuple[str, ...]) -> tuple[float, list[str]]:
    """The share of ``wanted`` dashboards defined completely, and what is wrong (after a
    summary line)."""
    defined = {str(d.get("name")): d for d in records(board, "dashboards")}
    bad = [n for n in wanted if n not in defined or _incomplete(defined[n])]
    done = len(wanted) - len(bad)
    head = f"{done} of {len(wanted)} dashboards defined with a query and a threshold"
    reasons = [head, *([f"missing or incomplete: {shown(bad)}"] if bad else [])]
    return (fraction(done, len(wanted)) if wanted else 1.0), reasons


def _incomplete(dashboard: Mapping[str, Any]) -> bool:
    return bool(thinness(dashboard.get("query"), min_chars=5, min_items=1)) or not is_number(
        dashboard.get("threshold")
    )


def check_canary_validation(given: GuardInput) -> GuardReport:
    """The canary_validation guard."""
    cfg = settings("canary_validation", given.config, CANARY_KEYS)
    minutes, max_rate = cfg.number("duration_minutes", 15), cfg.number("max_error_rate", 0.01)
    results = given.artifacts.get("CanaryResults")
    results = results if isinstance(results, Mapping) else {}
    known = pool(given.artifacts, given.upstream)
    lax = _lax_rules(results, known.get("DeploymentPlan"), minutes, max_rate)
    if not results or lax:
        why = lax or ["CanaryResults is missing"]
        return _verdict("canary_validation", "canary", False, 0.0 if not results else 0.5, why)
    if _not_run(results) or results.get("observed") is None:
        return evidence_gap(
            "canary_validation",
            given,
            f"CanaryResults: {_why(results, 'no canary traffic was observed')}",
        )
    problem = unmeasured(results, "CanaryResults")
    if problem:
        return no_evidence("canary_validation", ("canary",), [problem])
    return _observed(results["observed"], minutes, max_rate)


def _lax_rules(
    results: Mapping[str, Any], plan: object, minutes: float, max_rate: float
) -> list[str]:
    rules = [
        ("CanaryResults.rule", at(results, "rule")),
        ("DeploymentPlan.canary", at(plan, "canary")),
    ]
    problems = []
    for where, rule in rules:
        if not isinstance(rule, Mapping):
            continue
        duration, rate = rule.get("duration_minutes"), rule.get("max_error_rate")
        if is_number(duration) and duration < minutes:
            problems.append(f"{where} lasts {duration} minutes, shorter than {minutes:g}")
        if is_number(rate) and rate > max_rate:
            problems.append(f"{where} tolerates error rate {rate}, above {max_rate:g}")
    return problems


def _observed(observed: object, minutes: float, max_rate: float) -> GuardReport:
    seen = observed if isinstance(observed, Mapping) else {}
    duration, rate = seen.get("duration_minutes"), seen.get("error_rate")
    if not is_number(duration) or not is_number(rate):
        return no_evidence(
            "canary_validation",
            ("canary",),
            ["CanaryResults.observed lacks duration_minutes or error_rate"],
        )
    ok = duration >= minutes and rate <= max_rate
    score = mean(
        (fraction(duration, minutes), 1.0 if rate <= max_rate else fraction(max_rate, rate))
    )
    reasons = [
        f"canary observed {duration:g} minutes (minimum {minutes:g}) at error rate {rate:g} "
        f"(limit {max_rate:g})"
    ]
    return _verdict("canary_validation", "canary", ok, score, reasons)
