"""The guard seam: registry, report shape, config checking, and the shipped YAMLs' guards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import ideamine.knowledge.guards as guards_package
from ideamine.errors import UsageError
from ideamine.knowledge.guards import GUARD_TYPES, GuardReport, Issue, guard_for
from ideamine.knowledge.guards.registry import GUARDS

PHASES = Path(__file__).parents[3] / "src" / "ideamine" / "config" / "defaults" / "phases"
Check = Callable[..., GuardReport]


def test_every_guard_type_is_registered_and_named_by_its_type() -> None:
    assert set(GUARDS) == GUARD_TYPES
    for name in GUARD_TYPES:
        assert guard_for(name).type == name


def test_every_guard_in_the_shipped_phase_yamls_exists() -> None:
    used = {
        guard["type"]
        for path in PHASES.glob("*.yaml")
        for guard in yaml.safe_load(path.read_text(encoding="utf-8"))["guards"]
    }
    assert used <= GUARD_TYPES
    assert len(used) == len(GUARD_TYPES) - 1  # all but schema, which the runtime makes moot


def test_every_shipped_guard_config_is_accepted(guard_check: Check) -> None:
    """Config keys and value kinds of every shipped phase YAML are known to their guards; on
    no artifacts at all no guard passes except by an evidence gap (or, for contradictions,
    because nothing contradicts anything)."""
    for path in sorted(PHASES.glob("*.yaml")):
        for guard in yaml.safe_load(path.read_text(encoding="utf-8"))["guards"]:
            report = guard_check(guard["type"], {}, config=guard.get("config") or {})
            vacuous = report.type == "contradictions"
            assert not report.passed or report.evidence_gap or vacuous, (path.name, report.reasons)


def test_unknown_guard_type_names_it_and_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        guard_for("spellcheck")
    assert "'spellcheck'" in str(caught.value)
    assert "completeness" in str(caught.value) and "canary_validation" in str(caught.value)


def test_public_names_are_exported() -> None:
    for name in guards_package.__all__:
        assert hasattr(guards_package, name)


def test_report_as_dict_is_what_the_gate_reads() -> None:
    issue = Issue(kind="security", severity="critical", description="CVE-1", waivable=False)
    report = GuardReport(
        type="cve_count",
        passed=False,
        score=0.123456,
        reasons=("1 critical",),
        severity="critical",
        scores={"vulnerabilities": 0.0},
        issues=(issue,),
    )
    assert report.as_dict() == {
        "type": "cve_count",
        "passed": False,
        "score": 0.1235,
        "reasons": ["1 critical"],
        "severity": "critical",
        "scores": {"vulnerabilities": 0.0},
        "issues": [
            {
                "kind": "security",
                "severity": "critical",
                "description": "CVE-1",
                "missing_agents": [],
                "waivable": False,
            }
        ],
        "evidence_gap": False,
    }


def test_values_outside_the_contract_are_refused() -> None:
    with pytest.raises(ValueError, match="issue kind"):
        Issue(kind="vibes", severity="low", description="x")
    with pytest.raises(ValueError, match="outside 0–1"):
        GuardReport(type="x", passed=True, score=1.5, reasons=(), severity="low", scores={})
    with pytest.raises(ValueError, match="rubric score"):
        GuardReport(type="x", passed=True, score=1, reasons=(), severity="low", scores={"a": 2})


def test_an_unknown_config_key_is_a_usage_error_naming_guard_and_keys(guard_check: Check) -> None:
    with pytest.raises(UsageError) as caught:
        guard_check("test_coverage", {}, config={"min_precent": 70})
    assert "test_coverage" in str(caught.value) and "min_precent" in str(caught.value)
    assert "min_percent" in caught.value.hint


@pytest.mark.parametrize(
    ("type_", "config"),
    [
        ("clarity", {"min_score": "high"}),
        ("coverage", {"min_stories": -1}),
        ("completeness", {"fields": "title"}),
        ("completeness", {}),
        ("lint", {"max_errors": True}),
        ("version_validation", {"scheme": "calver"}),
        ("brand_compliance", {"contrast_pairs": ["text"]}),
        ("schema", {"schemas": {"X": {"type": 12}}}),
    ],
)
def test_a_config_value_of_the_wrong_kind_is_a_usage_error(
    guard_check: Check, type_: str, config: dict[str, object]
) -> None:
    with pytest.raises(UsageError, match=type_):
        guard_check(type_, {"X": {}}, config=config)
