"""What the dashboard shows of the quality loop, computed from records (no server, no
browser): gate rows (failing rubrics, evidence gaps apart from reasons, waivers, findings no
one may waive, phases waiting for answers), Q/A/V coverage per phase with the grounding of
the verdicts' summaries, and the Q/A/V assumptions with a person's later answer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.configs import write_callable_pipeline

from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.dashboard import quality
from ideamine.engine.states import PhaseStatus
from ideamine.stores.dossiers import GateEvaluationRecord
from ideamine.stores.knowledge import AnswerRecord, AssumptionRecord, QuestionRecord
from ideamine.stores.records import PhaseRecord

AT = "2026-11-26T01:00:00+00:00"


def _pipeline(tmp_path: Path) -> PipelineSpec:
    dag = {"intake": [], "prd": ["intake"], "security": ["prd"]}
    return load_pipeline(write_callable_pipeline(tmp_path / "cfg", dag, agents_per_phase=1))


def _verdict(phase: str, attempt: int, result: Mapping[str, Any]) -> GateEvaluationRecord:
    return GateEvaluationRecord(
        id=f"{phase}{attempt}",
        phase=phase,
        attempt=attempt,
        passed=bool(result["pass"]),
        score=float(result["score"]),
        threshold=float(result["threshold"]),
        result=result,
        created_at=AT,
    )


def _phase(name: str, attempt: int, status: PhaseStatus) -> PhaseRecord:
    return PhaseRecord(
        run_id="r", phase=name, attempt=attempt, status=status, started_at=AT,
        finished_at=AT, error=None,
    )  # fmt: skip


def _question(qid: str, status: str) -> QuestionRecord:
    phase, attempt = qid.split(".")[:2]
    return QuestionRecord(
        id=qid, run_id="r", phase=phase, attempt=int(attempt), iteration=1, rank=1,
        text=f"question {qid}?", topic="topic", status=status, created_at=AT,
    )  # fmt: skip


GAP = "grounding: not measured (Q/A/V is off for this phase)"
FAILED = {
    "pass": False,
    "score": 0.62,
    "threshold": 0.8,
    "rubrics": {
        "coverage": {"score": 0.5, "weight": 0.5},
        "grounding": {"score": None, "weight": 0.5},
    },
    "reasons": ["guard coverage failed (medium): NFRs.nfrs has 2 nfrs", f"evidence gap: {GAP}"],
    "evidence_gaps": [GAP],
    "issues": [{"kind": "coverage", "severity": "medium", "description": "2 nfrs"}],
    "evidence": {"qav": {"questions": 4, "answered": 2, "accepted": 1, "mean_grounding": 0.5}},
}
SECRET = {
    "pass": False,
    "score": 0.0,
    "threshold": 0.9,
    "rubrics": {"secrets": {"score": 0.0, "weight": 1.0}},
    "reasons": ["critical guard failed: secrets_detected"],
    "issues": [{"kind": "security", "description": "1 secret(s) found", "waivable": False}],
}


def test_gate_rows_say_what_failed_what_is_a_gap_and_what_can_be_waived(tmp_path: Path) -> None:
    verdicts = [_verdict("prd", 1, FAILED), _verdict("security", 1, SECRET)]
    phases = [_phase("prd", 1, PhaseStatus.FAILED), _phase("security", 1, PhaseStatus.FAILED)]
    rows = {r.phase: r for r in quality.gate_rows(_pipeline(tmp_path), verdicts, [], phases)}
    assert rows["intake"].state == "not judged" and not rows["intake"].waivable
    prd = rows["prd"]
    assert prd.state == "failed" and prd.waivable and prd.blocked == ()
    assert prd.scores == {"coverage": 0.5, "grounding": None}
    assert prd.failing == ("coverage",)  # the gap is not a failing score
    assert prd.reasons == ("guard coverage failed (medium): NFRs.nfrs has 2 nfrs",)
    assert prd.gaps == (GAP,)
    security = rows["security"]
    assert security.waivable and security.blocked == ("1 secret(s) found",)


def test_a_waived_gate_a_retried_phase_and_a_phase_waiting_for_answers(tmp_path: Path) -> None:
    waiver = {"reason": "accepted for the beta", "expires_at": "2030-01-31T23:59:59+00:00"}
    history = [{"phase": "prd", "attempt": 1, "waiver": waiver}]
    verdicts = [_verdict("prd", 1, FAILED), _verdict("security", 1, SECRET)]
    phases = [
        _phase("prd", 1, PhaseStatus.PASSED),
        _phase("security", 1, PhaseStatus.FAILED),
        _phase("security", 2, PhaseStatus.RUNNING),  # retried: nothing to waive now
        _phase("intake", 1, PhaseStatus.READY),
    ]
    pipeline = _pipeline(tmp_path)
    rows = {
        r.phase: r
        for r in quality.gate_rows(pipeline, verdicts, history, phases, asking=["intake"])
    }
    assert rows["prd"].state == "waived" and rows["prd"].waiver == waiver
    assert not rows["prd"].waivable and rows["prd"].failing == ()
    assert rows["security"].state == "failed" and not rows["security"].waivable
    assert rows["intake"].state == "asking"


def test_a_hand_written_verdict_without_reasons_shows_its_issues(tmp_path: Path) -> None:
    result = {
        "pass": False,
        "score": 0.62,
        "threshold": 0.8,
        "rubrics": {"consistency": 0.41, "grounding": 0.9},
        "issues": [{"type": "contradictions", "severity": "high", "description": "US-3 vs NFR-2"}],
    }
    (row,) = [
        r
        for r in quality.gate_rows(_pipeline(tmp_path), [_verdict("prd", 1, result)], [], [])
        if r.phase == "prd"
    ]
    assert row.reasons == ("high contradictions: US-3 vs NFR-2",)
    assert row.failing == ("consistency",) and not row.waivable  # no failed phase row


def test_qav_rows_count_by_status_and_weigh_grounding_by_answers(tmp_path: Path) -> None:
    questions = [
        _question("prd.1.Q1.1", "accepted"),
        _question("prd.1.Q1.2", "rejected"),
        _question("prd.1.Q1.3", "unknown"),
        _question("prd.2.Q1.1", "answered"),
        _question("prd.2.Q1.2", "open"),
    ]
    second = {**FAILED, "evidence": {"qav": {"answered": 6, "mean_grounding": 1.0}}}
    verdicts = [_verdict("prd", 1, FAILED), _verdict("prd", 2, second)]
    assumptions = [
        AssumptionRecord(
            question_id="prd.1.Q1.3", phase="prd", attempt=1, text="assumed", reason="unknown",
            created_at=AT,
        )
    ]  # fmt: skip
    order = ["intake", "prd", "security"]
    rows = quality.qav_rows(
        _pipeline(tmp_path), order, questions, {"prd": 1}, assumptions, verdicts
    )
    prd = rows[1]
    assert (prd.asked, prd.accepted, prd.rejected, prd.unknown, prd.open, prd.answered) == (
        5, 1, 1, 1, 1, 1,
    )  # fmt: skip
    assert prd.frames == 1 and prd.assumptions == 1 and prd.graded == 8
    assert prd.mean_grounding == round((0.5 * 2 + 1.0 * 6) / 8, 4)
    assert rows[0].mean_grounding is None and not rows[0].enabled  # max_questions 0
    total = quality.qav_total(rows)
    assert total.asked == 5 and total.mean_grounding == prd.mean_grounding


def test_assumptions_are_grouped_by_phase_with_a_persons_answer() -> None:
    made = [
        AssumptionRecord(
            question_id=qid, phase=qid.split(".")[0], attempt=1, text=f"assumed {qid}",
            reason="unknown", created_at=AT,
        )
        for qid in ("intake.1.Q1.1", "intake.1.Q1.2", "prd.1.Q1.1")
    ]  # fmt: skip
    answers = [
        AnswerRecord(
            question_id="intake.1.Q1.2", source="person", text="yes", citations=(),
            validation=None, accepted=True, created_at=AT,
        )
    ]  # fmt: skip
    questions = [_question("intake.1.Q1.1", "unknown"), _question("intake.1.Q1.2", "answered")]
    groups = quality.assumption_groups(made, questions, answers)
    assert [(phase, len(items)) for phase, items in groups] == [("intake", 2), ("prd", 1)]
    assert [item.answer for item in groups[0][1]] == [None, "yes"]
    assert quality.open_questions(questions) == {}
    assert quality.open_questions([_question("prd.1.Q1.1", "open")])["prd"][0].id == "prd.1.Q1.1"
