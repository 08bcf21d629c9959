"""The build phase's guards, over tool evidence only (docs/evidence.md): compilation,
test_coverage and lint.

**compilation** reads BuildReport.compile (``python -m compileall``): passes when ``ok`` and no
file failed (``must_compile``); rubric ``compilation`` scores the share of the workspace's
Python files (RepoManifest.files) that compiled.

**test_coverage** reads CoverageReport (coverage.py) and BuildReport.tests (pytest): passes
when ``percent`` ≥ ``min_percent`` (70) and the tests' pass rate ≥ ``min_pass_rate`` (1: every
test passes). Rubric ``coverage`` scores percent / 100, rubric ``tests`` the pass rate; failing
tests are an issue of kind ``tests`` listing each test's name and message.

**lint** reads BuildReport.lint (ruff): passes with at most ``max_errors`` (0) errors and
``max_warnings`` (10) warnings. It feeds no rubric of the shipped build gate; its score is
1 − 0.7·min(1, errors / (max_errors + 1)) − 0.3·min(1, warnings / (max_warnings + 1)).

Each guard fails with "no evidence" (severity high) when its section is missing or was not
produced by a tool that ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.evidence import no_evidence, unmeasured
from ideamine.knowledge.guards.reading import at, is_number, records
from ideamine.knowledge.guards.settings import COUNT, FLAG, NUMBER, settings
from ideamine.knowledge.guards.verdict import fraction, report, shown

__all__ = ["check_compilation", "check_lint", "check_test_coverage"]

COMPILE_KEYS = {"must_compile": FLAG}
COVERAGE_KEYS = {"min_percent": NUMBER, "min_pass_rate": NUMBER}
LINT_KEYS = {"max_errors": COUNT, "max_warnings": COUNT}


def check_compilation(given: GuardInput) -> GuardReport:
    """The compilation guard."""
    cfg = settings("compilation", given.config, COMPILE_KEYS)
    must = cfg.flag("must_compile", True)
    section = at(given.artifacts.get("BuildReport"), "compile")
    problem = unmeasured(section, "BuildReport.compile")
    if problem:
        return no_evidence("compilation", ("compilation",), [problem])
    errors = [f"{e.get('file', '?')}: {e.get('message', '')}" for e in records(section, "errors")]
    ok = section.get("ok") is True and not errors
    files = at(given.artifacts.get("RepoManifest"), "files") or ()
    sources = [f for f in files if str(f).endswith(".py")]
    score = fraction(len(sources) - len(errors), len(sources)) if sources else float(ok)
    failed = f"{len(errors) or 'some'} file(s) fail to compile" + (
        f": {shown(errors)}" if errors else ""
    )
    return report(
        "compilation",
        passed=ok or not must,
        score=score,
        reasons=[f"every Python file compiles ({len(sources)} in the workspace)" if ok else failed],
        scores={"compilation": score},
        kind="quality",
        severity="critical",  # code that does not compile fails the build gate outright
    )


def check_test_coverage(given: GuardInput) -> GuardReport:
    """The test_coverage guard."""
    cfg = settings("test_coverage", given.config, COVERAGE_KEYS)
    min_percent, min_rate = cfg.number("min_percent", 70), cfg.number("min_pass_rate", 1.0)
    coverage = given.artifacts.get("CoverageReport")
    tests = at(given.artifacts.get("BuildReport"), "tests")
    missing = [unmeasured(coverage, "CoverageReport"), unmeasured(tests, "BuildReport.tests")]
    if any(missing):
        return no_evidence("test_coverage", ("coverage", "tests"), [p for p in missing if p])
    assert isinstance(coverage, Mapping)
    percent = float(coverage["percent"]) if is_number(coverage.get("percent")) else 0.0
    rate, failing = _test_results(tests)
    short = percent < min_percent
    reasons = [
        f"coverage {percent:.1f}% {'is below' if short else 'meets'} the minimum {min_percent:g}%",
        f"tests: {tests.get('passed', 0)} of {tests.get('total', 0)} passed",
        *failing,
    ]
    problems = ([reasons[0]] if short else []) + (reasons[1:] if rate < min_rate else [])
    return report(
        "test_coverage",
        passed=not problems,
        score=min(percent / 100, rate),
        reasons=reasons,
        scores={"coverage": min(1.0, percent / 100), "tests": rate},
        kind="tests",
        # a workspace that fails its own tests fails the build gate whatever the score
        severity="critical" if rate < min_rate else "medium",
        problems=problems,
    )


def _test_results(tests: Mapping[str, Any]) -> tuple[float, list[str]]:
    """The pass rate and one sentence per failing test."""
    total = int(tests.get("total") or 0)
    passed = int(tests.get("passed") or 0)
    skipped = int(tests.get("skipped") or 0)
    failures = records(tests, "failures")
    failing = [f"failed {f.get('name', '?')}: {f.get('message', '')}".strip() for f in failures]
    if isinstance(tests.get("problem"), str) and tests["problem"]:
        failing.append(f"pytest: {tests['problem']}")
    if total == 0:
        return 0.0, ["no test ran (total 0)"]
    broken = total - passed - skipped
    if broken > len(failing):
        failing.append(f"{broken - len(failing)} more test(s) failed or errored without details")
    return fraction(passed, total - skipped), failing


def check_lint(given: GuardInput) -> GuardReport:
    """The lint guard."""
    cfg = settings("lint", given.config, LINT_KEYS)
    max_errors, max_warnings = cfg.count("max_errors", 0), cfg.count("max_warnings", 10)
    section = at(given.artifacts.get("BuildReport"), "lint")
    problem = unmeasured(section, "BuildReport.lint")
    if problem:
        return no_evidence("lint", (), [problem])
    errors, warnings = int(section.get("errors") or 0), int(section.get("warnings") or 0)
    excess = 0.7 * min(1.0, errors / (max_errors + 1))
    excess += 0.3 * min(1.0, warnings / (max_warnings + 1))
    findings = [
        f"{f.get('file', '?')}:{f.get('line', '?')} {f.get('code', '')} {f.get('message', '')}"
        for f in records(section, "findings")
    ]
    head = (
        f"lint: {errors} error(s) (limit {max_errors}), "
        f"{warnings} warning(s) (limit {max_warnings})"
    )
    return report(
        "lint",
        passed=errors <= max_errors and warnings <= max_warnings,
        score=max(0.0, 1.0 - excess),
        reasons=[head, *([f"findings: {shown(findings)}"] if findings else [])],
        scores={},
        kind="quality",
        # lint feeds no rubric: errors over the limit block the gate, warnings only warn
        severity="critical" if errors > max_errors else "medium",
    )
