"""The gate: scoring guard reports against rubrics, and what follows a verdict."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tests.unit.engine.factories import phase_spec, pipeline_spec

from ideamine.config.model import FanOutKind, GateSpec, GuardSpec, PhaseSpec, PipelineSpec, QavSpec
from ideamine.engine.fanout import next_tasks
from ideamine.engine.gate import (
    calls_no_model,
    decide,
    failure_signature,
    fix_strategy,
    score_gate,
)
from ideamine.engine.snapshot import TaskState
from ideamine.engine.states import TaskStatus

PRD_GATE = GateSpec(
    pass_threshold=0.8,
    max_attempts=5,
    auto_fix=True,
    rubrics={"completeness": 0.25, "consistency": 0.25, "grounding": 0.3, "coverage": 0.2},
)


def report(
    type_: str,
    scores: dict[str, float],
    *,
    passed: bool = True,
    severity: str = "medium",
    issues: list[dict[str, Any]] | None = None,
    gap: bool = False,
) -> dict[str, Any]:
    return {
        "type": type_,
        "passed": passed,
        "score": min(scores.values(), default=0.0),
        "reasons": [] if passed else [f"{type_} is short"],
        "severity": severity,
        "scores": scores,
        "issues": issues or [],
        "evidence_gap": gap,
    }


def prd_phase(**gate: Any) -> PhaseSpec:
    spec = phase_spec("prd", agents=("StoryCutterAgent", "PRDWriterAgent", "NFRsAgent"))
    return replace(spec, gate=replace(PRD_GATE, **gate))


def test_score_is_the_weighted_sum_of_rubric_scores() -> None:
    reports = [
        report("completeness", {"completeness": 1.0}),
        report("contradictions", {"consistency": 1.0}),
        report("coverage", {"coverage": 0.5}),
    ]
    result = score_gate(PRD_GATE, reports, grounding=0.9, attempt=1)
    assert result["score"] == pytest.approx(0.25 + 0.25 + 0.3 * 0.9 + 0.2 * 0.5)
    assert result["pass"] is True
    assert result["rubrics"]["grounding"] == {"weight": 0.3, "score": 0.9, "sources": ["qav"]}


def test_a_contradiction_fails_the_gate_below_the_threshold_with_its_reason() -> None:
    issue = {"kind": "contradictions", "severity": "high", "description": "p95 200 ms vs 2 s"}
    reports = [
        report("completeness", {"completeness": 1.0}),
        report("contradictions", {"consistency": 0.0}, passed=False, issues=[issue]),
        report("coverage", {"coverage": 1.0}),
    ]
    result = score_gate(PRD_GATE, reports, grounding=1.0, attempt=1)
    assert result["pass"] is False
    assert result["score"] == pytest.approx(0.75) and result["score"] < 0.8
    assert any("contradictions" in reason for reason in result["reasons"])
    assert result["issues"][0]["fix_strategy"] == "stricter-validation"


def test_a_failed_critical_guard_fails_the_gate_whatever_the_score() -> None:
    reports = [
        report("completeness", {"completeness": 1.0}),
        report("contradictions", {"consistency": 1.0}),
        report("coverage", {"coverage": 1.0}, passed=False, severity="critical"),
    ]
    result = score_gate(PRD_GATE, reports, grounding=1.0, attempt=1)
    assert result["score"] == 1.0 and result["pass"] is False
    assert "critical guard failed: coverage" in result["reasons"]


def test_a_rubric_nothing_measures_scores_zero_and_says_so() -> None:
    result = score_gate(PRD_GATE, [], grounding=1.0, attempt=1)
    assert result["rubrics"]["coverage"]["score"] == 0.0
    assert "rubric coverage is not measured by any guard (scored 0)" in result["reasons"]
    assert result["score"] == pytest.approx(0.3)


def test_an_evidence_gap_is_left_out_of_the_score_and_named() -> None:
    gate = GateSpec(
        pass_threshold=0.9,
        max_attempts=5,
        auto_fix=True,
        rubrics={"vulnerabilities": 0.4, "secrets": 0.3, "sbom": 0.15, "grounding": 0.15},
    )
    reports = [
        report("cve_count", {}, gap=True),
        report("secrets_detected", {"secrets": 1.0}),
        report("sbom_completeness", {"sbom": 1.0}),
    ]
    result = score_gate(gate, reports, grounding=1.0, attempt=1)
    assert result["rubrics"]["vulnerabilities"]["score"] is None
    assert result["score"] == 1.0 and result["pass"] is True
    assert result["evidence_gaps"] and result["evidence_gaps"][0].startswith("cve_count")


def test_a_strict_evidence_gap_fails_the_gate() -> None:
    gate = GateSpec(pass_threshold=0.5, max_attempts=5, auto_fix=True, rubrics={"secrets": 1.0})
    strict_gap = report("cve_count", {}, passed=False, severity="critical", gap=True)
    result = score_gate(
        gate, [strict_gap, report("s", {"secrets": 1.0})], grounding=None, attempt=1
    )
    assert result["pass"] is False
    assert "critical guard failed: cve_count" in result["reasons"]


def test_nothing_measured_leaves_the_verdict_to_the_guards() -> None:
    gate = GateSpec(pass_threshold=0.9, max_attempts=1, auto_fix=False, rubrics={"grounding": 1.0})
    passed = score_gate(gate, [], grounding=None, attempt=1, ungrounded="Q/A/V is off")
    assert passed["pass"] is True and passed["score"] == 1.0
    assert "grounding not measured (Q/A/V is off)" in passed["reasons"]
    assert passed["evidence_gaps"] == []  # not a gap in the evidence: nothing to ground
    failed = score_gate(gate, [report("lint", {}, passed=False)], grounding=None, attempt=1)
    assert failed["pass"] is False and failed["score"] == 0.0


def test_low_grounding_is_an_issue_fixed_by_stricter_qav() -> None:
    reports = [report(n, {r: 1.0}) for n, r in [("c", "completeness"), ("x", "consistency")]]
    reports.append(report("coverage", {"coverage": 1.0}))
    result = score_gate(PRD_GATE, reports, grounding=0.2, attempt=1)
    assert result["pass"] is False
    assert [i["fix_strategy"] for i in result["issues"]] == ["rerun-qav-stricter"]
    decision = decide(prd_phase(), result, previous=None)
    assert decision.outcome == "retry" and decision.rerun == frozenset()
    assert decision.min_grounding == 0.9


@pytest.mark.parametrize(
    ("kind", "strategy"),
    [
        ("grounding", "rerun-qav-stricter"),
        ("coverage", "add-missing-agents"),
        ("security", "rerun-security-scans"),
        ("contradictions", "stricter-validation"),
        ("ambiguity", "stricter-validation"),
        ("scope", "smaller-chunks"),
        ("tests", "fix-from-feedback"),
        ("quality", "escalate"),
    ],
)
def test_issue_kinds_map_to_the_spec_strategies(kind: str, strategy: str) -> None:
    assert fix_strategy(kind) == strategy


def _coverage_failure(attempt: int, missing: list[str]) -> dict[str, Any]:
    issue = {
        "kind": "coverage",
        "severity": "medium",
        "description": "2 NFRs, fewer than 3",
        "missing_agents": missing,
    }
    reports = [
        report("completeness", {"completeness": 0.6}),
        report("contradictions", {"consistency": 1.0}),
        report("coverage", {"coverage": 0.0}, passed=False, issues=[issue]),
    ]
    result = score_gate(PRD_GATE, reports, grounding=1.0, attempt=attempt)
    assert result["pass"] is False  # 0.15 + 0.25 + 0.3 + 0 < 0.8
    return result


def test_missing_coverage_reruns_only_the_missing_agent() -> None:
    decision = decide(prd_phase(), _coverage_failure(1, ["NFRsAgent"]), previous=None)
    assert decision.outcome == "retry"
    assert decision.strategies == ("add-missing-agents",)
    assert decision.rerun == frozenset({"NFRsAgent"})


def test_the_same_failure_twice_escalates_before_max_attempts() -> None:
    first, second = _coverage_failure(1, ["NFRsAgent"]), _coverage_failure(2, ["NFRsAgent"])
    assert failure_signature(first) == failure_signature(second)
    decision = decide(prd_phase(), second, previous=first)
    assert decision.outcome == "escalate"
    assert "no progress" in decision.reason


def test_max_attempts_escalates() -> None:
    decision = decide(prd_phase(max_attempts=2), _coverage_failure(2, ["NFRsAgent"]), previous=None)
    assert decision.outcome == "escalate"
    assert decision.reason == "gate failed 2 of 2 attempts"


def test_an_issue_with_no_automatic_fix_escalates() -> None:
    reports = [report("version_validation", {"completeness": 0.0}, passed=False)]
    result = score_gate(PRD_GATE, reports, grounding=1.0, attempt=1)
    decision = decide(prd_phase(), result, previous=None)
    assert decision.outcome == "escalate" and "quality" in decision.reason


def test_auto_fix_off_escalates_at_once() -> None:
    decision = decide(prd_phase(auto_fix=False), _coverage_failure(1, ["X"]), previous=None)
    assert decision.outcome == "escalate"


def test_a_passing_result_passes() -> None:
    result = score_gate(
        PRD_GATE,
        [report(n, {n: 1.0}) for n in ("completeness", "consistency", "coverage")],
        grounding=1.0,
        attempt=3,
    )
    assert decide(prd_phase(), result, previous=None).outcome == "pass"


def test_evidence_agents_start_after_every_other_agent_is_done() -> None:
    spec = replace(
        phase_spec("build", agents=("Code", "Tests", "Tool"), kind=FanOutKind.BATCH, limit=2),
        evidence_agents=frozenset({"Tool"}),
    )
    first = next_tasks(spec, (), loop_done=False)
    assert [plan.agent for plan in first] == ["Code", "Tests"]
    running = (
        TaskState(key="00.Code", agent="Code", iteration=1, status=TaskStatus.SUCCEEDED),
        TaskState(key="01.Tests", agent="Tests", iteration=1, status=TaskStatus.RUNNING),
    )
    assert next_tasks(spec, running, loop_done=False) == []
    done = (*running[:1], replace(running[1], status=TaskStatus.SUCCEEDED))
    assert [plan.key for plan in next_tasks(spec, done, loop_done=False)] == ["02.Tool"]


# -- which gates are judged in their fan-in's step ------------------------------------------


def _gated(
    *, qav: tuple[bool, int] = (False, 0), guards: tuple[GuardSpec, ...] = (), model: str
) -> tuple[PipelineSpec, PhaseSpec]:
    enabled, questions = qav
    spec = replace(
        phase_spec("prd", agents=("NFRsAgent",)),
        guards=guards,
        qav=QavSpec(enabled=enabled, max_questions=questions, min_grounding=0.5, max_iterations=1),
    )
    return pipeline_spec([spec], default_model=model), spec


@pytest.mark.parametrize("model", ["offline:template", "openai:gpt-4o-mini"])
def test_a_gate_without_qav_or_a_judged_guard_calls_no_model(model: str) -> None:
    pipeline, spec = _gated(guards=(GuardSpec(type="coverage"),), model=model)
    assert calls_no_model(pipeline, spec)


@pytest.mark.parametrize("qav", [(True, 3), (True, 1)])
def test_a_gate_that_asks_questions_calls_a_model(qav: tuple[bool, int]) -> None:
    pipeline, spec = _gated(qav=qav, model="offline:template")
    assert not calls_no_model(pipeline, spec)


def test_qav_turned_on_with_no_questions_to_ask_calls_no_model() -> None:
    pipeline, spec = _gated(qav=(True, 0), model="offline:template")
    assert calls_no_model(pipeline, spec)


def test_the_contradictions_guard_calls_the_phase_model_unless_offline_or_turned_off() -> None:
    judged = GuardSpec(type="contradictions", config={"max": 0})
    real, real_spec = _gated(guards=(judged,), model="openai:gpt-4o-mini")
    offline, offline_spec = _gated(guards=(judged,), model="offline:template")
    unjudged = GuardSpec(type="contradictions", config={"judge": False})
    off, off_spec = _gated(guards=(unjudged,), model="openai:gpt-4o-mini")
    assert not calls_no_model(real, real_spec)
    assert calls_no_model(offline, offline_spec)
    assert calls_no_model(off, off_spec)


def test_a_fallback_chain_with_any_real_model_calls_a_model() -> None:
    judged = GuardSpec(type="contradictions")
    pipeline, spec = _gated(guards=(judged,), model="offline:template")
    chained = replace(pipeline, default_models=("offline:template", "openai:gpt-4o-mini"))
    assert not calls_no_model(chained, spec)
