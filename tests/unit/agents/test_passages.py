"""Artifact passages for the Q/A/V agents' offline templates: terms, paths, gaps, passages."""

from __future__ import annotations

from typing import Any

import pytest

from ideamine.agents.extraction import stem, terms
from ideamine.agents.passages import gaps, json_path, key_terms, leaves, passages, resolve_path

UPSTREAM: dict[str, Any] = {
    "IdeaSpec": {
        "description": "A marketplace where local farmers sell produce to nearby restaurants.",
        "target_users": ["farmers", "restaurants"],
    },
    "IdeationResult": {
        "features": [{"id": "F-01", "description": "sell produce to nearby restaurants"}]
    },
}
DRAFT: dict[str, Any] = {
    "BusinessPlan": {
        "summary": "Farmers list for free and restaurants pay a small commission on each order.",
        "segments": ["farmers"],
        "open_questions": ["Who pays for delivery?"],
        "unit_economics": {"assumed": True, "revenue_usd": 25},
        "load": {"executed": False, "measurements": None},
        "scope": "Ship F-01 and F-09 first.",
        "assumptions": [{"statement": "The budget is $5,000."}],
    }
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Has anyone confirmed the $5,000 budget?", ["confirm", "5000", "budget"]),
        ("The build phase's planned 30-day tests", ["build", "phase", "plan", "30", "day", "test"]),
        ("What is F-01, which the PRD cites?", ["f-01", "prd"]),
        ("", []),
    ],
)
def test_terms_are_stemmed_content_words(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_stem_undoes_inflections_but_keeps_short_words() -> None:
    assert [stem(w) for w in ("Restaurants", "confirmed", "running", "called", "used")] == [
        "restaurant",
        "confirm",
        "run",
        "call",
        "used",
    ]


def test_key_terms_leave_out_artifact_names() -> None:
    question = {"text": "What is F-01, which the BusinessPlan cites?", "topic": "F-01"}
    assert key_terms(question, ["BusinessPlan"]) == ["f-01"]


def test_every_leaf_path_resolves_to_its_text() -> None:
    content = {"files": {"src/app.py": "x = 1"}, "list": [{"n": 3}, "a"], "flag": True}
    found = leaves(content)
    assert [leaf["path"] for leaf in found] == ['files["src/app.py"]', "list[0].n", "list[1]"]
    for leaf in found:
        assert str(resolve_path(content, leaf["path"])) == leaf["text"]
    assert json_path("", "a") == "a"
    assert resolve_path(content, "$") == content
    for bad in ("list[5]", "nope", "list..n", "[x]"):
        with pytest.raises(LookupError):
            resolve_path(content, bad)


def test_gaps_find_each_kind_in_turn() -> None:
    found = gaps(DRAFT, UPSTREAM)
    kinds = [gap["kind"] for gap in found]
    assert kinds[:6] == ["open", "evidence", "reference", "assumption", "label", "claim"]
    by_kind = {gap["kind"]: gap for gap in found}
    assert by_kind["open"]["text"] == "Who pays for delivery?"
    assert by_kind["evidence"]["text"] == "load"
    assert [g["text"] for g in found if g["kind"] == "reference"] == ["F-01", "F-09"]
    assert {g["text"] for g in found if g["kind"] == "assumption"} == {
        "unit economics",
        "The budget is $5,000",
    }
    assert by_kind["label"]["path"] == "segments[0]"
    assert by_kind["claim"]["path"] == "summary"
    assert gaps(DRAFT, UPSTREAM) == found  # deterministic


def test_passages_prefer_the_definition_of_an_id() -> None:
    artifacts = {**UPSTREAM, **DRAFT}
    found = passages({"text": "What is F-01?", "topic": "F-01"}, artifacts)
    assert [(p["artifact"], p["path"], p["owner"]) for p in found] == [
        ("IdeationResult", "features[0].description", "F-01")
    ]
    assert found[0]["owner_path"] == "features[0].id"


def test_passages_skip_echoes_questions_and_fragments() -> None:
    artifacts = {**UPSTREAM, **DRAFT}
    question = {"text": "Who pays for delivery?", "topic": "delivery"}
    assert passages(question, artifacts) == []
    farmers = passages({"text": "Who exactly are the farmers?", "topic": "farmers"}, artifacts)
    assert farmers
    assert all(len(str(p["quote"]).split()) >= 4 for p in farmers)


def test_frames_are_passages_too() -> None:
    frame = {"id": "f1", "subject": "delivery", "text": "A courier delivers crates at dawn."}
    found = passages({"text": "Who delivers the crates?", "topic": "delivery"}, {}, [frame])
    assert [(p["frame"], p["quote"]) for p in found] == [("f1", frame["text"])]


def test_an_artifact_changed_after_a_question_gives_its_new_passages() -> None:
    """Candidates are remembered by content, so an edited draft is read again."""
    draft = {"BusinessPlan": {"summary": "Restaurants pay a small delivery fee on each order."}}
    question = {"text": "Who pays the delivery fee?", "topic": "delivery fee"}
    before = passages(question, draft)
    assert [p["quote"] for p in before] == ["Restaurants pay a small delivery fee on each order."]
    draft["BusinessPlan"]["summary"] = "Farmers pay the delivery fee once a month."
    after = passages(question, draft)
    assert [p["quote"] for p in after] == ["Farmers pay the delivery fee once a month."]
    after[0]["quote"] = "edited by the caller"
    assert passages(question, draft)[0]["quote"] == "Farmers pay the delivery fee once a month."
