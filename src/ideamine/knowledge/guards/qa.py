"""The qa phase's guards, over measured reports only (docs/evidence.md): test_pass_rate,
performance and accessibility.

**test_pass_rate** reads TestReport (end-to-end HTTP tests): ``passed / total`` must reach
``min_rate`` (0.95); rubric ``test_pass_rate``; failing cases are an issue of kind ``tests``
naming method, path, status and the expected status.

**performance** reads PerfReport (the load test): ``p95_ms`` ≤ ``max_latency_ms`` (1000),
``rps`` ≥ ``min_rps`` (100) and ``errors / requests`` ≤ ``max_error_rate`` (0.01). Rubric
``performance`` is the mean of min(1, limit / p95), min(1, rps / min_rps) and (1 if the error
rate holds, else limit / rate).

**accessibility** reads A11yAudit (static HTML checks): at most ``max_violations`` (0)
violations, against a standard at least as strict as ``standard`` (WCAG AA). Rubric
``accessibility`` is 1 − violations / checks made (or 1 / (1 + violations) when the pages do not
count their checks).

Each fails with "no evidence" (severity high) when its report is missing or unmeasured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport, Issue
from ideamine.knowledge.guards.evidence import no_evidence, unmeasured
from ideamine.knowledge.guards.reading import is_number, records
from ideamine.knowledge.guards.settings import COUNT, NUMBER, TEXT, settings
from ideamine.knowledge.guards.verdict import fraction, mean, shown

__all__ = ["check_accessibility", "check_performance", "check_test_pass_rate"]

RATE_KEYS = {"min_rate": NUMBER}
PERF_KEYS = {"max_latency_ms": NUMBER, "min_rps": NUMBER, "max_error_rate": NUMBER}
A11Y_KEYS = {"standard": TEXT, "max_violations": COUNT}


def _measured(
    given: GuardInput, type_: str, rubric: str, artifact: str
) -> GuardReport | Mapping[str, Any]:
    """The report, or a no-evidence verdict when it was not measured."""
    report = given.artifacts.get(artifact)
    problem = unmeasured(report, artifact)
    if problem:
        return no_evidence(type_, (rubric,), [problem])
    assert isinstance(report, Mapping)
    return report


def check_test_pass_rate(given: GuardInput) -> GuardReport:
    """The test_pass_rate guard."""
    cfg = settings("test_pass_rate", given.config, RATE_KEYS)
    report = _measured(given, "test_pass_rate", "test_pass_rate", "TestReport")
    if isinstance(report, GuardReport):
        return report
    total = int(report["total"]) if is_number(report.get("total")) else 0
    passed = int(report["passed"]) if is_number(report.get("passed")) else 0
    rate = fraction(passed, total)
    minimum = cfg.number("min_rate", 0.95)
    failing = [
        f"{c.get('method', '?')} {c.get('path', '?')} gave {c.get('status', '?')}, "
        f"expected {c.get('expected', '?')} ({c.get('name', '')})"
        for c in records(report, "cases")
        if c.get("passed") is not True
    ]
    head = f"end-to-end tests: {passed} of {total} passed ({rate:.2f}, minimum {minimum:.2f})"
    reasons = (head, *([f"failing: {shown(failing, 10)}"] if failing else []))
    ok = total > 0 and rate >= minimum - 1e-9
    return _report("test_pass_rate", "test_pass_rate", ok, rate, reasons, kind="tests")


def check_performance(given: GuardInput) -> GuardReport:
    """The performance guard."""
    cfg = settings("performance", given.config, PERF_KEYS)
    report = _measured(given, "performance", "performance", "PerfReport")
    if isinstance(report, GuardReport):
        return report
    limit, floor = cfg.number("max_latency_ms", 1000), cfg.number("min_rps", 100)
    max_errors = cfg.number("max_error_rate", 0.01)
    p95, rps = _number(report, "p95_ms"), _number(report, "rps")
    requests, errors = _number(report, "requests"), _number(report, "errors") or 0.0
    if p95 is None or rps is None or not requests:
        return no_evidence(
            "performance", ("performance",), ["PerfReport has no p95_ms, rps or requests"]
        )
    error_rate = errors / requests
    parts = [
        min(1.0, limit / p95) if p95 > 0 else 1.0,
        fraction(rps, floor) if floor > 0 else 1.0,
        1.0 if error_rate <= max_errors else fraction(max_errors, error_rate),
    ]
    reasons = (
        f"p95 {p95:g} ms (limit {limit:g} ms)",
        f"throughput {rps:g} rps (minimum {floor:g} rps)",
        f"error rate {error_rate:.4f} ({errors:g} of {requests:g} requests; limit {max_errors:g})",
    )
    ok = p95 <= limit and rps >= floor and error_rate <= max_errors
    return _report("performance", "performance", ok, mean(parts), reasons, kind="quality")


def check_accessibility(given: GuardInput) -> GuardReport:
    """The accessibility guard."""
    cfg = settings("accessibility", given.config, A11Y_KEYS)
    report = _measured(given, "accessibility", "accessibility", "A11yAudit")
    if isinstance(report, GuardReport):
        return report
    wanted = cfg.text("standard", "WCAG-AA")
    standard = str(report.get("standard", ""))
    violations = [
        f"{v.get('rule', '?')} on {v.get('page', '?')}: {v.get('detail', '')}"
        for v in records(report, "violations")
    ]
    limit = cfg.count("max_violations", 0)
    checks = sum(_checks(page) for page in records(report, "pages"))
    score = 1.0 - fraction(len(violations), checks) if checks else 1.0 / (1 + len(violations))
    weaker = _level(standard) < _level(wanted)
    reasons = [
        f"{len(violations)} accessibility violation(s) against {standard or 'no standard'} "
        f"(limit {limit}, {checks} checks)"
    ]
    reasons += [f"violations: {shown(violations, 10)}"] if violations else []
    reasons += [f"the audit's standard {standard!r} is weaker than {wanted!r}"] if weaker else []
    ok = len(violations) <= limit and not weaker
    return _report("accessibility", "accessibility", ok, score, tuple(reasons), kind="quality")


def _report(
    type_: str, rubric: str, ok: bool, score: float, reasons: tuple[str, ...], *, kind: str
) -> GuardReport:
    issues = () if ok else (Issue(kind=kind, severity="high", description="; ".join(reasons)),)
    return GuardReport(
        type=type_,
        passed=ok,
        score=score,
        reasons=reasons,
        severity="low" if ok else "high",
        scores={rubric: score},
        issues=issues,
    )


def _number(report: Mapping[str, Any], key: str) -> float | None:
    value = report.get(key)
    return float(value) if is_number(value) else None


def _checks(page: Mapping[str, Any]) -> int:
    checks = page.get("checks")
    if is_number(checks):
        return int(checks)
    return len(checks) if isinstance(checks, list) else 0


def _level(standard: str) -> int:
    """WCAG conformance level named in ``standard``: 3 AAA, 2 AA, 1 A, 0 none."""
    levels = re.findall(r"\bA{1,3}\b", standard.upper().replace("-", " "))
    return max((len(level) for level in levels), default=0)
