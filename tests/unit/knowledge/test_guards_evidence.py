"""Tool-evidence guards (build, security, story-loop, qa) read only measured reports
(docs/evidence.md): each passes on good measurements, fails on bad ones naming them, and fails
with "no evidence" when the report is missing or was not produced by a tool that ran."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ideamine.knowledge.guards import GuardReport

Check = Callable[..., GuardReport]


def measured(**fields: Any) -> dict[str, Any]:
    """A report section with an executed evidence envelope."""
    envelope = {
        "tool": "pytest",
        "version": "8.3.3",
        "command": ["python", "-m", "pytest"],
        "exit_code": 0,
        "timed_out": False,
        "duration_ms": 12.5,
        "executed": True,
    }
    return {**fields, "evidence": envelope}


def build_report(**overrides: Any) -> dict[str, Any]:
    report = {
        "compile": measured(ok=True, errors=[]),
        "tests": measured(total=10, passed=10, failed=0, errors=0, skipped=0, failures=[]),
        "lint": measured(errors=0, warnings=2, findings=[]),
    }
    return {**report, **overrides}


def build_phase(**overrides: Any) -> dict[str, Any]:
    return {
        "BuildReport": build_report(**overrides),
        "CoverageReport": measured(measured=True, percent=84.5, target_percent=70),
        "RepoManifest": {"files": ["app/main.py", "app/storage.py", "README.md", "tests/t.py"]},
    }


def acceptance(*rows: tuple[str, str, str]) -> dict[str, Any]:
    stories = [{"story_id": s, "test": t, "outcome": o} for s, t, o in rows]
    passed = sum(1 for *_, o in rows if o == "passed")
    return measured(stories=stories, total=len(rows), passed=passed, failed=len(rows) - passed)


STORIES = {"UserStories": {"stories": [{"id": f"US-00{i}"} for i in range(1, 6)]}}
ALL_PASS = [(f"US-00{i}", f"test_{i}", "passed") for i in range(1, 6)]


def security_phase(**overrides: Any) -> dict[str, Any]:
    phase = {
        "VulnerabilityScan": measured(
            scanned=True,
            status="scanned",
            counts={"critical": 0, "high": 1, "medium": 3, "low": 5},
            vulnerabilities=[],
        ),
        "SecretsScanReport": measured(scanned=True, count=0, findings=[]),
        "SBOM": measured(
            bomFormat="CycloneDX",
            specVersion="1.5",
            requirements=["fastapi", "Pydantic_Core"],
            components=[
                {"name": "fastapi", "version": "0.115.0", "purl": "pkg:pypi/fastapi@0.115.0"},
                {"name": "pydantic-core", "version": "2.2", "purl": "pkg:pypi/pydantic-core@2.2"},
            ],
        ),
    }
    return {**phase, **overrides}


def qa_phase(**overrides: Any) -> dict[str, Any]:
    phase = {
        "TestReport": measured(
            total=20,
            passed=20,
            failed=0,
            cases=[
                {
                    "name": "list",
                    "method": "GET",
                    "path": "/farmers",
                    "status": 200,
                    "expected": 200,
                    "passed": True,
                }
            ],
        ),
        "PerfReport": measured(
            requests=6000, errors=6, duration_s=30, rps=200, p50_ms=40, p95_ms=180
        ),
        "A11yAudit": measured(
            standard="WCAG 2.1 AA", pages=[{"url": "/", "checks": 12}], violations=[]
        ),
    }
    return {**phase, **overrides}


# --- passing and failing measurements ------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "artifacts", "upstream", "rubrics"),
    [
        ("compilation", build_phase(), {}, {"compilation": 1.0}),
        ("test_coverage", build_phase(), {}, {"coverage": 0.845, "tests": 1.0}),
        ("lint", build_phase(), {}, {}),
        ("cve_count", security_phase(), {}, {"vulnerabilities": 1 - 1 / 3}),
        ("secrets_detected", security_phase(), {}, {"secrets": 1.0}),
        ("sbom_completeness", security_phase(), {}, {"sbom": 1.0}),
        (
            "acceptance_tests",
            {"AcceptanceTestResults": acceptance(*ALL_PASS)},
            {},
            {"acceptance_tests": 1.0},
        ),
        (
            "story_completion",
            {
                "AcceptanceTestResults": acceptance(*ALL_PASS),
                "ImplementedStories": {"items": [{"story_id": s} for s, *_ in ALL_PASS]},
            },
            STORIES,
            {"story_completion": 1.0},
        ),
        ("test_pass_rate", qa_phase(), {}, {"test_pass_rate": 1.0}),
        ("performance", qa_phase(), {}, {"performance": 1.0}),
        ("accessibility", qa_phase(), {}, {"accessibility": 1.0}),
    ],
)
def test_good_measurements_pass(
    guard_check: Check,
    type_: str,
    artifacts: dict[str, Any],
    upstream: dict[str, Any],
    rubrics: dict[str, float],
) -> None:
    report = guard_check(type_, artifacts, upstream=upstream)
    assert report.passed, report.reasons
    assert report.scores == pytest.approx(rubrics)
    assert not report.evidence_gap and not report.issues


def test_compilation_fails_naming_files(guard_check: Check) -> None:
    broken = measured(ok=False, errors=[{"file": "app/main.py", "message": "SyntaxError: line 3"}])
    report = guard_check("compilation", build_phase(compile=broken))
    assert not report.passed and report.severity == "critical"  # blocks the gate
    assert report.scores == pytest.approx({"compilation": 2 / 3})  # 2 of 3 Python files compile
    assert "app/main.py: SyntaxError: line 3" in report.reasons[0]


def test_failing_tests_are_an_issue_listing_names_and_messages(guard_check: Check) -> None:
    tests = measured(
        total=4,
        passed=2,
        failed=2,
        errors=0,
        skipped=0,
        failures=[
            {"name": "tests/test_orders.py::test_create", "message": "assert 500 == 201"},
            {"name": "tests/test_orders.py::test_list", "message": "KeyError: 'id'"},
        ],
    )
    artifacts = build_phase(tests=tests)
    artifacts["CoverageReport"]["percent"] = 55.0
    report = guard_check("test_coverage", artifacts)
    assert not report.passed and report.severity == "critical"  # failing tests block the gate
    assert report.scores == {"coverage": 0.55, "tests": 0.5}
    kinds = {issue.kind for issue in report.issues}
    assert kinds == {"tests"}
    failing = next(i for i in report.issues if "test_create" in i.description)
    assert "failed tests/test_orders.py::test_create: assert 500 == 201" in failing.description
    assert "failed tests/test_orders.py::test_list: KeyError: 'id'" in failing.description
    assert "coverage 55.0% is below the minimum 70%" in report.reasons[0]


def test_lint_fails_over_its_limits_naming_findings(guard_check: Check) -> None:
    lint = measured(
        errors=1,
        warnings=12,
        findings=[
            {
                "file": "app/main.py",
                "line": 7,
                "code": "F401",
                "message": "unused import",
                "severity": "error",
            }
        ],
    )
    report = guard_check("lint", build_phase(lint=lint))
    assert not report.passed and report.severity == "critical"  # errors over the limit block
    assert "1 error(s) (limit 0), 12 warning(s) (limit 10)" in report.reasons[0]
    assert "app/main.py:7 F401 unused import" in report.reasons[1]
    assert report.score == pytest.approx(1 - 0.7 * 1 - 0.3 * 1)


def test_critical_cves_fail_critical_and_cannot_be_waived(guard_check: Check) -> None:
    scan = measured(
        scanned=True,
        status="scanned",
        counts={"critical": 1, "high": 3, "medium": 0, "low": 0},
        vulnerabilities=[
            {
                "id": "GHSA-1",
                "package": "jinja2",
                "version": "2.0",
                "severity": "critical",
                "summary": "s",
            }
        ],
    )
    report = guard_check("cve_count", security_phase(VulnerabilityScan=scan))
    assert not report.passed and report.severity == "critical"
    assert report.scores == {"vulnerabilities": 0.0}
    critical = next(i for i in report.issues if i.severity == "critical")
    assert critical.kind == "security" and critical.waivable is False
    assert "GHSA-1 in jinja2 2.0" in critical.description
    high = next(i for i in report.issues if i.severity == "high")
    assert high.waivable and "3 high vulnerabilities, more than the limit 2" in high.description


def test_any_secret_is_critical_and_cannot_be_waived(guard_check: Check) -> None:
    secrets = measured(
        scanned=True,
        count=1,
        findings=[{"file": "app/config.py", "line": 4, "type": "AWS Access Key"}],
    )
    report = guard_check("secrets_detected", security_phase(SecretsScanReport=secrets))
    assert not report.passed and report.severity == "critical"
    (issue,) = report.issues
    assert issue.waivable is False and "app/config.py:4 (AWS Access Key)" in issue.description


def test_sbom_missing_components_fail(guard_check: Check) -> None:
    sbom = security_phase()["SBOM"]
    sbom["components"][1].pop("purl")
    report = guard_check("sbom_completeness", security_phase(SBOM=sbom))
    assert not report.passed and report.scores == {"sbom": 0.5}
    assert "missing or without version/purl: pydantic-core" in report.reasons


def test_acceptance_and_story_completion_fail_on_failing_stories(guard_check: Check) -> None:
    rows = [*ALL_PASS[:3], ("US-004", "test_4", "failed")]
    results = {"items": [acceptance(*rows[:2]), acceptance(*rows[2:])]}  # concat of iterations
    implemented = {"items": [{"story_id": s} for s, *_ in rows]}
    report = guard_check("acceptance_tests", {"AcceptanceTestResults": results})
    assert not report.passed and report.scores == {"acceptance_tests": 0.75}
    assert report.severity == "critical"  # blocks the gate whatever the other scores
    assert "US-004::test_4 failed" in report.reasons[1]
    done = guard_check(
        "story_completion",
        {"AcceptanceTestResults": results, "ImplementedStories": implemented},
        upstream=STORIES,
        producers={"ImplementedStories": ("StoryImplementerAgent",)},
    )
    assert not done.passed and done.scores == {"story_completion": 0.6}
    assert (
        "US-004 (acceptance tests fail)" in done.reasons[1]
        and "US-005 (not implemented)" in done.reasons[1]
    )
    assert done.issues[0].missing_agents == ("StoryImplementerAgent",)


def test_a_later_iteration_replaces_an_earlier_outcome(guard_check: Check) -> None:
    results = {
        "items": [acceptance(("US-001", "t", "failed")), acceptance(("US-001", "t", "passed"))]
    }
    assert guard_check("acceptance_tests", {"AcceptanceTestResults": results}).passed


def test_qa_guards_fail_on_bad_measurements(guard_check: Check) -> None:
    failing_case = {
        "name": "create",
        "method": "POST",
        "path": "/orders",
        "status": 500,
        "expected": 201,
        "passed": False,
    }
    phase = qa_phase(
        TestReport=measured(total=20, passed=18, failed=2, cases=[failing_case]),
        PerfReport=measured(requests=1000, errors=50, duration_s=30, rps=40, p95_ms=2500),
        A11yAudit=measured(
            standard="WCAG 2.1 A",
            pages=[{"url": "/", "checks": 10}],
            violations=[
                {"rule": "image-alt", "page": "/", "detail": "img without alt", "impact": "serious"}
            ],
        ),
    )
    rate = guard_check("test_pass_rate", phase)
    assert not rate.passed and rate.scores == {"test_pass_rate": 0.9}
    assert "POST /orders gave 500, expected 201 (create)" in rate.reasons[1]
    perf = guard_check("performance", phase)
    assert not perf.passed
    assert perf.reasons == (
        "p95 2500 ms (limit 1000 ms)",
        "throughput 40 rps (minimum 100 rps)",
        "error rate 0.0500 (50 of 1000 requests; limit 0.01)",
    )
    assert perf.scores["performance"] == pytest.approx((0.4 + 0.4 + 0.2) / 3)
    a11y = guard_check("accessibility", phase)
    assert not a11y.passed and a11y.scores == {"accessibility": 0.9}
    assert "image-alt on /: img without alt" in a11y.reasons[1]
    assert "weaker than 'WCAG-AA'" in a11y.reasons[2]


# --- no evidence ---------------------------------------------------------------------------

SECTIONS = {
    "compilation": ("BuildReport", "compile", build_phase),
    "test_coverage": ("CoverageReport", None, build_phase),
    "lint": ("BuildReport", "lint", build_phase),
    "cve_count": ("VulnerabilityScan", None, security_phase),
    "secrets_detected": ("SecretsScanReport", None, security_phase),
    "sbom_completeness": ("SBOM", None, security_phase),
    "acceptance_tests": (
        "AcceptanceTestResults",
        None,
        lambda: {"AcceptanceTestResults": acceptance(*ALL_PASS)},
    ),
    "story_completion": (
        "AcceptanceTestResults",
        None,
        lambda: {"AcceptanceTestResults": acceptance(*ALL_PASS)},
    ),
    "test_pass_rate": ("TestReport", None, qa_phase),
    "performance": ("PerfReport", None, qa_phase),
    "accessibility": ("A11yAudit", None, qa_phase),
}


def _unmeasure(section: dict[str, Any], how: str) -> dict[str, Any] | None:
    if how == "missing":
        return None
    if how == "measured-false":
        return {**section, "measured": False, "reason": "offline"}
    if how == "no-envelope":
        return {k: v for k, v in section.items() if k != "evidence"}
    if how == "not-executed":
        return {
            **section,
            "evidence": {**section["evidence"], "executed": False, "reason": "ruff not installed"},
        }
    return {**section, "evidence": {**section["evidence"], "timed_out": True}}


@pytest.mark.parametrize(
    "how", ["missing", "measured-false", "no-envelope", "not-executed", "timed-out"]
)
@pytest.mark.parametrize("type_", sorted(SECTIONS))
def test_no_evidence_fails_high_and_never_passes(guard_check: Check, type_: str, how: str) -> None:
    artifact, key, make = SECTIONS[type_]
    artifacts = make()
    section = artifacts[artifact][key] if key else artifacts[artifact]
    changed = _unmeasure(section, how)
    if key:
        artifacts[artifact] = {**artifacts[artifact], key: changed}
    elif changed is None:
        del artifacts[artifact]
    else:
        artifacts[artifact] = changed
    report = guard_check(type_, artifacts, upstream=STORIES)
    assert not report.passed and report.severity == "high"
    assert report.reasons[0].startswith("no evidence: ")
    assert artifact in report.reasons[0]
    assert all(score == 0.0 for score in report.scores.values())
    assert report.issues[0].kind == "evidence"


def test_the_offline_models_planned_reports_are_not_evidence(guard_check: Check) -> None:
    planned = {
        "scanned": False,
        "status": "not_run",
        "secrets_found": None,
        "reason": "No scanner has run",
    }
    report = guard_check("secrets_detected", {"SecretsScanReport": planned})
    assert not report.passed and "No scanner has run" in report.reasons[0]


# --- evidence gap: no advisory source ------------------------------------------------------

NOT_SCANNED = {
    "scanned": False,
    "status": "not_scanned",
    "source": None,
    "reason": "no advisory folder configured",
    "counts": None,
    "vulnerabilities": [],
}


def test_not_scanned_is_an_evidence_gap_that_passes_with_a_warning(guard_check: Check) -> None:
    report = guard_check("cve_count", {"VulnerabilityScan": NOT_SCANNED})
    assert report.passed and report.evidence_gap
    assert report.scores == {}  # the gate leaves the vulnerabilities rubric out
    assert "evidence gap (passes with a warning)" in report.reasons[0]
    assert "no advisory folder configured" in report.reasons[0]


def test_not_scanned_fails_critical_under_strict_evidence(guard_check: Check) -> None:
    report = guard_check("cve_count", {"VulnerabilityScan": NOT_SCANNED}, strict_evidence=True)
    assert not report.passed and report.evidence_gap and report.severity == "critical"
    assert report.issues[0].kind == "evidence" and report.issues[0].severity == "critical"
