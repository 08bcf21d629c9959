"""The Q/A/V validator: computed scores, the SPEC §5 thresholds, UNKNOWN never accepted."""

from __future__ import annotations

from typing import Any

import pytest

from ideamine.agents.passages import json_path, leaves, resolve_path
from ideamine.knowledge.frames import Frame
from ideamine.knowledge.validator import (
    Answer,
    Citation,
    Question,
    Validation,
    idea_vocabulary,
    quantities,
    validate,
)

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
ARTIFACTS: dict[str, Any] = {
    "IdeaSpec": {
        "title": "Local Farmers Marketplace",
        "description": "A marketplace where local farmers sell produce to nearby restaurants.",
        "target_users": ["farmers", "restaurants"],
        "constraints": {"budget_usd": 5000, "timeline_days": 30},
        "assumptions": [{"id": "A-02", "statement": "The budget is $5,000."}],
    },
    "IdeationResult": {
        "features": [
            {"id": "F-01", "name": "Sell produce", "description": "sell produce to restaurants"},
        ]
    },
    "Odd": {"files": {"src/app.py": "print('hi')"}},
}
VOCABULARY = idea_vocabulary(IDEA, ARTIFACTS)


def ask(text: str, topic: str) -> Question:
    return Question(id="critique.1.Q1.1", iteration=1, rank=1, text=text, topic=topic)


def reply(text: str, *citations: Citation, unknown: bool = False) -> Answer:
    return Answer(question_id="critique.1.Q1.1", text=text, citations=citations, unknown=unknown)


def check(question: Question, answer: Answer, **options: Any) -> Validation:
    options.setdefault("vocabulary", VOCABULARY)
    return validate(question, answer, artifacts=ARTIFACTS, **options)


DESCRIPTION = Citation(
    artifact="IdeaSpec",
    path="description",
    quote="local farmers sell produce to nearby restaurants",
)


def test_a_quote_that_is_not_in_the_artifact_gives_grounding_zero() -> None:
    made_up = Citation(artifact="IdeaSpec", path="description", quote="farmers deliver by drone")
    verdict = check(
        ask("Who are the farmers?", "farmers"), reply("Farmers deliver by drone.", made_up)
    )
    assert verdict.scores.grounding == 0.0
    assert not verdict.accepted
    assert any("quote not found at IdeaSpec description" in r for r in verdict.reasons)


@pytest.mark.parametrize(
    "citation",
    [
        Citation(artifact="Nope", path="description", quote="farmers"),
        Citation(artifact="IdeaSpec", path="features[3].name", quote="farmers"),
        Citation(artifact="IdeaSpec", path="description", quote="   "),
        Citation(frame="no-such-frame", quote="farmers"),
    ],
)
def test_citations_that_do_not_resolve_ground_nothing(citation: Citation) -> None:
    verdict = check(ask("Who are the farmers?", "farmers"), reply("Local farmers.", citation))
    assert verdict.scores.grounding == 0.0


def test_a_fully_quoted_specific_answer_is_accepted() -> None:
    answer = reply("Local farmers sell produce to nearby restaurants.", DESCRIPTION)
    verdict = check(ask("Who exactly are the farmers?", "farmers"), answer, min_grounding=0.9)
    assert verdict.accepted, verdict.reasons
    assert verdict.scores.as_dict() == {
        "grounding": 1.0,
        "completeness": 1.0,
        "specificity": 1.0,
        "consistency": 1.0,
    }
    assert verdict.reasons == ()


def test_quotes_match_case_and_whitespace_insensitively_and_below_the_path() -> None:
    loose = Citation(artifact="IdeaSpec", path="", quote="LOCAL  farmers\nsell produce")
    verdict = check(
        ask("Who are the farmers?", "farmers"), reply("Local farmers sell produce.", loose)
    )
    assert verdict.scores.grounding == 1.0


def test_a_frame_citation_resolves_against_the_frames_given() -> None:
    frame = Frame.create("payment", "Restaurants pay farmers through Stripe.", {})
    answer = reply(
        "Restaurants pay farmers through Stripe.",
        Citation(frame=frame.id, quote="restaurants pay farmers through stripe"),
    )
    verdict = check(ask("Who pays the farmers?", "payment"), answer, frames=[frame])
    assert verdict.scores.grounding == 1.0
    assert check(ask("Who pays the farmers?", "payment"), answer).scores.grounding == 0.0


def test_unquoted_claims_lower_grounding() -> None:
    answer = reply("Local farmers sell produce; they also run a drone delivery fleet.", DESCRIPTION)
    verdict = check(ask("Who are the farmers?", "farmers"), answer)
    assert 0.0 < verdict.scores.grounding < 0.7


def test_unknown_is_never_accepted() -> None:
    for answer in (
        reply("UNKNOWN", unknown=True),
        reply("Local farmers.", DESCRIPTION, unknown=True),
    ):
        verdict = check(ask("Who are the farmers?", "farmers"), answer)
        assert not verdict.accepted
        assert verdict.mean == 0.0


def test_a_conflicting_number_lowers_consistency_below_threshold() -> None:
    budget = Citation(artifact="IdeaSpec", path="assumptions[0].statement", quote="The budget is")
    answer = reply("The budget is $8,000.", budget)
    verdict = check(ask("What is the budget?", "budget"), answer)
    assert verdict.scores.consistency < 0.8
    assert not verdict.accepted
    assert any("8000 usd conflicts" in r for r in verdict.reasons)
    same = check(ask("What is the budget?", "budget"), reply("The budget is $5,000.", budget))
    assert same.scores.consistency == 1.0


def test_numbers_under_unit_named_keys_count_too() -> None:
    timeline = Citation(artifact="IdeaSpec", path="constraints.timeline_days", quote="30")
    ok = check(ask("When is launch?", "timeline"), reply("Launch within 30 days.", timeline))
    late = check(ask("When is launch?", "timeline"), reply("Launch within 45 days.", timeline))
    assert ok.scores.consistency == 1.0
    assert late.scores.consistency < 0.8


def test_contradicting_an_earlier_accepted_answer_lowers_consistency() -> None:
    earlier = (ask("What is the budget?", "budget"), reply("The budget is $5,000.", DESCRIPTION))
    later = Question(id="prd.1.Q1.1", iteration=1, rank=1, text="Budget total?", topic="budget")
    verdict = check(later, reply("The budget is $9,000.", DESCRIPTION), accepted=[earlier])
    assert verdict.scores.consistency < 0.8


def test_an_answer_that_misses_the_question_is_incomplete() -> None:
    verdict = check(
        ask("How much do restaurants pay per order?", "order fee"),
        reply("Local farmers sell produce to nearby restaurants.", DESCRIPTION),
    )
    assert verdict.scores.completeness < 0.7
    assert not verdict.accepted


def test_stock_phrases_are_not_specific() -> None:
    quote = Citation(artifact="IdeaSpec", path="", quote="x")
    verdict = check(
        ask("How will it scale?", "scaling"),
        reply(
            "We will ensure a robust, scalable and seamless solution following best practice.",
            quote,
        ),
    )
    assert verdict.scores.specificity < 0.6


def test_the_mean_must_reach_the_minimum_asked_for() -> None:
    answer = reply("Local farmers sell produce; they grow vegetables.", DESCRIPTION)
    lax = check(ask("Who are the farmers?", "farmers"), answer, min_grounding=0.0)
    strict = check(ask("Who are the farmers?", "farmers"), answer, min_grounding=0.99)
    assert not strict.accepted
    assert any("mean" in r for r in strict.reasons)
    assert lax.scores == strict.scores


def test_validation_round_trips_through_json_form() -> None:
    verdict = check(ask("Who are the farmers?", "farmers"), reply("Local farmers.", DESCRIPTION))
    assert Validation.from_dict(verdict.as_dict()) == verdict
    answer = reply("Local farmers.", DESCRIPTION, Citation(frame="abc", quote="q"))
    assert Answer.from_dict(answer.as_dict()) == answer


def test_quantities_read_currency_percent_and_units() -> None:
    assert quantities("Budget $5,000 over 30-day sprints; 20% margin; US-001 and F-01 done") == [
        (5000.0, "usd"),
        (30.0, "day"),
        (20.0, "percent"),
    ]


def test_paths_round_trip_through_leaves() -> None:
    for artifact in ARTIFACTS.values():
        for leaf in leaves(artifact):
            assert str(resolve_path(artifact, leaf["path"])) == leaf["text"]
    assert json_path("files", "src/app.py") == 'files["src/app.py"]'
    assert resolve_path(ARTIFACTS["IdeationResult"], "features.0.id") == "F-01"
    with pytest.raises(LookupError):
        resolve_path(ARTIFACTS["IdeaSpec"], "target_users[9]")
