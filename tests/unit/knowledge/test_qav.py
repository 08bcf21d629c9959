"""The Q/A/V loop with the real offline provider and the shipped Question/Answer agents, over a
hand-made critique draft of the farmers marketplace (shaped like a real offline run's)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ideamine.agents.base import Agent, AgentContext, AgentResult
from ideamine.agents.builtin import build_agent
from ideamine.canonical import canonical_json
from ideamine.config.loader import load_pipeline
from ideamine.config.model import AgentSpec, PipelineSpec, QavSpec
from ideamine.knowledge.frames import Frame
from ideamine.knowledge.qav import QavOutcome, is_near_duplicate, run_qav
from ideamine.llm.registry import Providers

FARMERS = "A marketplace where local farmers sell produce to nearby restaurants"
UPSTREAM: dict[str, Any] = {
    "IdeaSpec": {
        "title": "Local Farmers Marketplace",
        "description": "A marketplace where local farmers sell produce to nearby restaurants. "
        "Farmers list produce for sale with price and quantity.",
        "problem_statement": "Farmers and restaurants rely on phone calls and spreadsheets.",
        "target_users": ["farmers", "restaurants"],
        "constraints": {"budget_usd": 5000, "timeline_days": 30, "compliance": []},
        "assumptions": [{"id": "A-02", "field": "budget", "statement": "The budget is $5,000."}],
    },
    "IdeationResult": {
        "features": [
            {"id": "F-01", "name": "Sell produce", "description": "sell produce to restaurants"},
            {"id": "F-02", "name": "List produce", "description": "list produce with a price"},
        ]
    },
    "Personas": {
        "personas": [
            {
                "id": "P-01",
                "name": "Farah",
                "role": "farmer",
                "summary": "Farah grows vegetables on a small farm and sells to three bistros.",
            }
        ]
    },
}
DRAFT: dict[str, Any] = {
    "CritiqueReport": {
        "summary": "Local Farmers Marketplace targets farmers and restaurants with 2 features.",
        "open_questions": [
            "Who pays: farmers or restaurants?",
            "Which courier delivers the crates at dawn?",
        ],
        "weaknesses": [
            {
                "id": "W-01",
                "finding": "Ship only F-01 in the first release; F-02 can wait.",
                "recommendation": "Budget $5,000 and 30 days are assumed, not confirmed.",
            }
        ],
    }
}
SPEC = QavSpec(enabled=True, max_questions=8, min_grounding=0.75, max_iterations=3)


@pytest.fixture(scope="module")
def pipeline() -> PipelineSpec:
    return load_pipeline()


def agents(pipeline: PipelineSpec) -> tuple[Agent, Agent]:
    providers = Providers()
    question = build_agent(pipeline.agents["QuestionAgent"], pipeline, providers)
    answer = build_agent(pipeline.agents["AnswerAgent"], pipeline, providers)
    return question, answer


def context(pipeline: PipelineSpec) -> AgentContext:
    return AgentContext(
        run_id="run-q",
        phase="critique",
        attempt=1,
        key="critique.@judge",
        iteration=1,
        spec=pipeline.agents["QuestionAgent"],
        values={"idea": {"text": FARMERS, "constraints": {}}, "feedback": []},
    )


def loop(
    pipeline: PipelineSpec,
    *,
    spec: QavSpec = SPEC,
    min_grounding: float = SPEC.min_grounding,
    asked_before: Sequence[str] = (),
    question: Agent | None = None,
    frames: Sequence[Frame] = (),
    ctx: AgentContext | None = None,
) -> QavOutcome:
    real_question, real_answer = agents(pipeline)
    return asyncio.run(
        run_qav(
            ctx or context(pipeline),
            question=question or real_question,
            answer=real_answer,
            spec=spec,
            min_grounding=min_grounding,
            draft=DRAFT,
            upstream=UPSTREAM,
            frames=frames,
            asked_before=asked_before,
        )
    )


def test_the_loop_asks_answers_validates_and_binds(pipeline: PipelineSpec) -> None:
    ctx = context(pipeline)
    outcome = loop(pipeline, ctx=ctx)

    asked = [q.id for q in outcome.questions]
    assert asked
    assert [a.question_id for a in outcome.answers] == asked
    assert [v.question_id for v in outcome.validations] == asked
    accepted = [v.question_id for v in outcome.validations if v.accepted]
    assert accepted
    assert [b.question_id for b in outcome.bindings] == accepted
    assert {a.question_id for a in outcome.assumptions} == set(asked) - set(accepted)
    assert list(outcome.open_questions) == [q for q in asked if q not in accepted]
    assert all(q.id == f"critique.1.Q{q.iteration}.{q.rank}" for q in outcome.questions)
    frames = {frame.id: frame for frame in outcome.frames}
    assert {b.frame_id for b in outcome.bindings} == set(frames)
    for frame in frames.values():
        assert frame.provenance["run_id"] == "run-q"
    # every model call of both agents is recorded on the caller's task
    assert len(ctx.calls) == len(asked) + max(q.iteration for q in outcome.questions) + 1
    assert {call.provider for call in ctx.calls} == {"offline"}


def test_offline_answers_quote_the_artifacts_or_say_unknown(pipeline: PipelineSpec) -> None:
    outcome = loop(pipeline)
    by_id = {q.id: q for q in outcome.questions}
    texts = {q.text for q in outcome.questions}
    assert "What is F-01, which the CritiqueReport cites?" in texts  # defined upstream only
    for answer in outcome.answers:
        if answer.unknown:
            assert answer.citations == ()
            continue
        for citation in answer.citations:
            place = json.dumps({**UPSTREAM, **DRAFT}[citation.artifact]).lower()
            assert citation.quote.lower() in place
    courier = next(q for q in by_id.values() if "courier" in q.text)
    assert next(a for a in outcome.answers if a.question_id == courier.id).unknown
    assert any(a.reason == "unknown" for a in outcome.assumptions)


def test_the_loop_is_deterministic_and_its_outcome_round_trips(pipeline: PipelineSpec) -> None:
    first, second = loop(pipeline), loop(pipeline)
    assert canonical_json(first.as_dict()) == canonical_json(second.as_dict())
    assert QavOutcome.from_dict(json.loads(canonical_json(first.as_dict()))) == first
    summary = first.summary
    assert summary["questions"] == len(first.questions)
    assert summary["accepted"] == len(first.bindings)
    assert summary["unknown"] + summary["answered"] == summary["questions"]  # type: ignore[operator]


def test_max_questions_is_respected(pipeline: PipelineSpec) -> None:
    spec = QavSpec(enabled=True, max_questions=2, min_grounding=0.75, max_iterations=5)
    assert 1 <= len(loop(pipeline, spec=spec).questions) <= 2
    none = QavSpec(enabled=True, max_questions=0, min_grounding=0.75, max_iterations=5)
    assert loop(pipeline, spec=none) == QavOutcome()


def test_a_stricter_minimum_accepts_fewer_or_equal(pipeline: PipelineSpec) -> None:
    usual = loop(pipeline)
    strict = loop(pipeline, min_grounding=0.999)
    lax = loop(pipeline, min_grounding=0.0)  # never laxer than the phase's own minimum
    assert len(strict.bindings) <= len(usual.bindings)
    assert [q.text for q in strict.questions] == [q.text for q in usual.questions]
    assert lax == usual


def test_questions_asked_before_are_not_asked_again(pipeline: PipelineSpec) -> None:
    usual = loop(pipeline)
    before = [usual.questions[0].text, "Who pays, farmers or restaurants?"]
    again = loop(pipeline, asked_before=before)
    for question in again.questions:
        assert not any(is_near_duplicate(question.text, old) for old in before)


@dataclass
class Scripted:
    """A question agent that lists the same scripted questions every round."""

    spec: AgentSpec
    listed: list[dict[str, str]]
    rounds: list[Mapping[str, object]] = field(default_factory=list)

    async def run(self, ctx: AgentContext) -> AgentResult:
        self.rounds.append(ctx.values)
        return AgentResult(output={"questions": self.listed})


def test_near_duplicates_are_dropped_and_a_round_without_news_ends_the_loop(
    pipeline: PipelineSpec,
) -> None:
    scripted = Scripted(
        spec=pipeline.agents["QuestionAgent"],
        listed=[
            {"text": "Who exactly are the farmers?", "topic": "farmers"},
            {"text": "Who are the farmers, exactly?", "topic": "farmers"},
            {"text": "What is F-02?", "topic": "F-02"},
        ],
    )
    outcome = loop(pipeline, question=scripted)
    assert [q.text for q in outcome.questions] == ["Who exactly are the farmers?", "What is F-02?"]
    assert len(scripted.rounds) == 2  # the second round brought nothing new
    assert scripted.rounds[1]["asked"] == ["Who exactly are the farmers?", "What is F-02?"]
    assert scripted.rounds[1]["max_questions"] == SPEC.max_questions - 2


def test_answers_may_cite_knowledge_frames(pipeline: PipelineSpec) -> None:
    frame = Frame.create(
        "courier", "A courier from Dawn Crates delivers the crates at dawn every day.", {}
    )
    outcome = loop(pipeline, frames=[frame])
    courier = next(q for q in outcome.questions if "courier" in q.text)
    answer = next(a for a in outcome.answers if a.question_id == courier.id)
    assert [c.frame for c in answer.citations] == [frame.id]
    assert courier.id in {b.question_id for b in outcome.bindings}


@pytest.mark.parametrize(
    ("text", "earlier", "repeated"),
    [
        ("Who exactly are the farmers?", "Who are the farmers?", True),
        ("What is F-01?", "What is F-02?", False),
        ("Is the budget of $5,000 confirmed?", "Has anyone confirmed the $5,000 budget?", True),
        ("Who pays?", "Which courier delivers?", False),
        ("???", "???", True),
    ],
)
def test_near_duplicate_questions(text: str, earlier: str, repeated: bool) -> None:
    assert is_near_duplicate(text, earlier) is repeated
