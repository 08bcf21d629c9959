"""The contradictions guard: deterministic findings across artifacts, and a model judge that
fails closed (SPEC §10 criterion 4: a PRD with contradictions against max 0 fails)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ideamine.errors import BudgetExceededError
from ideamine.knowledge.guards import GuardInput, GuardReport, guard_for
from ideamine.knowledge.guards.quantities import facts, latency_ms

Check = Callable[..., GuardReport]


def artifacts() -> dict[str, Any]:
    """A small PRD phase whose statements agree."""
    return {
        "PRD": {
            "constraints": {"budget_usd": 5000, "timeline_days": 30, "compliance": []},
            "personas": ["Farah"],
            "release_criteria": ["p95 API latency is 1000 ms or less at 100 requests per second."],
            "requirements": [
                {
                    "id": "FR-01",
                    "title": "Sell produce",
                    "priority": "must",
                    "story_ids": ["US-001"],
                }
            ],
            "success_criteria": [
                {"id": "SC-01", "criterion": "Farmers list produce in 3 minutes."}
            ],
            "scope": {"in_scope": ["Sell produce"], "out_of_scope": ["Native mobile apps"]},
        },
        "UserStories": {
            "stories": [
                {"id": "US-001", "persona": "Farah", "persona_id": "P-01", "priority": "must"}
            ]
        },
        "NFRs": {
            "nfrs": [
                {"id": "NFR-01", "metric": "p95 API latency", "target": "<= 1 s"},
                {"id": "NFR-02", "metric": "throughput", "target": ">= 100 requests per second"},
            ]
        },
        "RTM": {
            "traceability_matrix": [
                {
                    "story_id": "US-001",
                    "requirement_ids": ["FR-01"],
                    "nfr_ids": ["NFR-01"],
                    "success_criteria_ids": ["SC-01"],
                }
            ]
        },
    }


UPSTREAM = {
    "IdeaSpec": {
        "constraints": {"budget_usd": 5000, "timeline_days": 30, "compliance": []},
        "success_criteria": ["95% of API requests complete in 1000 ms or less."],
    },
    "Personas": {"personas": [{"id": "P-01", "name": "Farah"}]},
}


def test_consistent_artifacts_pass_with_what_was_compared(guard_check: Check) -> None:
    report = guard_check("contradictions", artifacts(), upstream=UPSTREAM, config={"max": 0})
    assert report.passed and report.scores == {"consistency": 1.0}
    assert "0 contradiction(s), limit 0: compared" in report.reasons[0]
    assert "resolved 8 references" in report.reasons[0]


def test_an_nfr_latency_stated_two_ways_is_caught_naming_both(guard_check: Check) -> None:
    prd = artifacts()
    prd["NFRs"]["nfrs"][0]["target"] = "<= 200 ms"
    prd["PRD"]["release_criteria"] = ["The p95 latency of the API stays under 2 s at launch."]
    report = guard_check("contradictions", prd, upstream={}, config={"max": 0})
    assert not report.passed
    assert report.scores == {"consistency": 0.0}
    (finding,) = [r for r in report.reasons if "p95 latency" in r]
    assert "NFRs.nfrs[0].target says '<= 200 ms'" in finding
    assert "PRD.release_criteria[0] says 'The p95 latency of the API stays under 2 s" in finding
    assert report.issues[0].kind == "contradictions" and report.issues[0].severity == "high"


def test_budget_timeline_and_compliance_across_phases(guard_check: Check) -> None:
    prd = artifacts()
    prd["PRD"]["constraints"] = {"budget_usd": 8000, "timeline_days": 45, "compliance": ["GDPR"]}
    report = guard_check("contradictions", prd, upstream=UPSTREAM, config={"max": 0})
    text = " ".join(report.reasons)
    assert (
        "the budget (USD) is stated 2 ways: IdeaSpec.constraints.budget_usd says '5000'; "
        "PRD.constraints.budget_usd says '8000'" in text
    )
    assert "the timeline (days) is stated 2 ways" in text
    assert "the compliance regimes is stated 2 ways" in text
    assert len(report.issues) == 3


def test_references_to_nothing_scope_and_priority(guard_check: Check) -> None:
    prd = artifacts()
    prd["UserStories"]["stories"][0].update(persona="Zed", persona_id="P-09", priority="could")
    prd["PRD"]["requirements"][0]["story_ids"] = ["US-001", "US-404"]
    prd["PRD"]["scope"]["out_of_scope"].append("sell produce")
    prd["RTM"]["traceability_matrix"][0]["nfr_ids"] = ["NFR-07"]
    report = guard_check("contradictions", prd, upstream=UPSTREAM, config={"max": 0})
    text = " ".join(report.reasons)
    assert (
        "UserStories.stories[0].persona_id refers to persona 'P-09', which Personas does not define"
        in text
    )
    assert "UserStories.stories[0].persona refers to persona 'Zed'" in text
    assert "PRD.requirements[0].story_ids[1] refers to user story 'US-404'" in text
    assert "RTM.traceability_matrix[0].nfr_ids[0] refers to NFR 'NFR-07'" in text
    assert "'Sell produce' is in scope (PRD.scope.in_scope) and out of scope" in text
    assert "requirement FR-01 is 'must' but its story US-001 is 'could'" in text


def test_max_allows_some_and_scores_by_the_limit(guard_check: Check) -> None:
    prd = artifacts()
    prd["PRD"]["constraints"]["budget_usd"] = 1
    report = guard_check("contradictions", prd, upstream=UPSTREAM, config={"max": 1})
    assert report.passed and report.scores["consistency"] == pytest.approx(0.5)


def test_thresholds_and_endpoint_targets_are_not_the_p95_target() -> None:
    stated = facts(
        {
            "X": {
                "alerts": ["p95 latency > 1500 ms for 10 minutes"],
                "plan": ["GET /farmers p95 500 ms", "p95 stays within 1000 ms"],
            }
        }
    )
    assert [(f.quantity, f.value) for f in stated] == [("p95_latency_ms", 1000.0)]
    assert latency_ms("p95 1.5 seconds") == 1500.0
    assert latency_ms("between 200 ms and 300 ms") is None


# --- the model judge -----------------------------------------------------------------------


def judge_returning(reply: object) -> Callable[[str, Mapping[str, Any]], Any]:
    seen: list[Mapping[str, Any]] = []

    async def judge(instruction: str, payload: Mapping[str, Any]) -> Any:
        assert "contradictions" in instruction
        seen.append(payload)
        return reply

    judge.seen = seen  # type: ignore[attr-defined]
    return judge


def test_judge_that_finds_none_lets_a_consistent_phase_pass(guard_check: Check) -> None:
    judge = judge_returning({"contradictions": []})
    report = guard_check("contradictions", artifacts(), upstream=UPSTREAM, judge=judge)
    assert report.passed and "the model judge found 0 more" in report.reasons[0]
    (payload,) = judge.seen  # type: ignore[attr-defined]
    assert set(payload) == {"phase", "artifacts", "upstream", "found"}


def test_judge_findings_count_against_the_limit(guard_check: Check) -> None:
    reply = {
        "contradictions": [
            {"description": "Pricing says free, plan says paid", "locations": ["PRD.goals"]}
        ]
    }
    report = guard_check(
        "contradictions", artifacts(), upstream=UPSTREAM, judge=judge_returning(reply)
    )
    assert not report.passed
    assert "model judge: Pricing says free, plan says paid (PRD.goals)" in report.reasons


async def _raises(instruction: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    raise TimeoutError("provider timed out")


@pytest.mark.parametrize(
    "judge",
    [
        _raises,
        judge_returning(None),
        judge_returning("no contradictions"),
        judge_returning({"verdict": "fine"}),
        judge_returning({"contradictions": "none"}),
        judge_returning({"contradictions": [{"locations": ["PRD"]}]}),
        judge_returning({"contradictions": [{"description": "   "}]}),
        judge_returning({"contradictions": [42]}),
    ],
    ids=["raises", "none", "text", "no-key", "not-a-list", "no-description", "blank", "number"],
)
def test_a_judge_that_fails_or_talks_garbage_fails_closed(
    guard_check: Check, judge: Callable[..., Any]
) -> None:
    report = guard_check("contradictions", artifacts(), upstream=UPSTREAM, judge=judge)
    assert not report.passed
    assert report.score == 0.0 and report.scores == {"consistency": 0.0}
    assert report.severity == "high"
    assert "fails closed" in report.reasons[0] and "model judge" in report.reasons[0]


def test_judge_can_be_turned_off_in_config(guard_check: Check) -> None:
    report = guard_check(
        "contradictions", artifacts(), upstream=UPSTREAM, config={"judge": False}, judge=_raises
    )
    assert report.passed


def test_cancelling_the_judge_cancels_the_guard() -> None:
    async def hangs(instruction: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        await asyncio.sleep(3600)
        return {}

    async def scenario() -> None:
        given = GuardInput(
            phase="prd", artifacts=artifacts(), upstream={}, config={}, producers={}, judge=hangs
        )
        task = asyncio.create_task(guard_for("contradictions").check(given))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_budget_pause_during_the_judge_call_is_not_a_judge_failure() -> None:
    """The budget refusing the judge's call pauses the run: the guard must let it through
    (the task is handed back), not report a closed failure."""

    async def over_budget(instruction: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        raise BudgetExceededError(
            "r1",
            scope="phase",
            name="prd",
            resource="tokens",
            used=990,
            request=100,
            limit=1000,
            suggested=200,
        )

    given = GuardInput(
        phase="prd", artifacts=artifacts(), upstream={}, config={}, producers={}, judge=over_budget
    )
    with pytest.raises(BudgetExceededError):
        asyncio.run(guard_for("contradictions").check(given))
