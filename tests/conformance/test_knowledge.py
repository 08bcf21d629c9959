"""The knowledge base and the Q/A/V record (``ideamine.stores.knowledge``) on SQLite and
PostgreSQL: the same behaviour on both (invariant 8), search included, though its SQL differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from ideamine.errors import RunStateError, UsageError
from ideamine.knowledge.frames import Frame, frame_id
from ideamine.knowledge.qav import Assumption, Binding, QavOutcome
from ideamine.knowledge.validator import Answer, Citation, Question, Scores, Validation
from ideamine.stores.knowledge import Knowledge, insert_qav
from ideamine.stores.postgres import PostgresStore
from ideamine.stores.records import EventDraft, NewRun
from ideamine.stores.sqlite import SqliteStore
from ideamine.stores.sqlstore import SqlStore

Store = SqliteStore | PostgresStore
Raw = Callable[..., list[tuple[Any, ...]]]

T = TypeVar("T")
FULL = Scores(grounding=1.0, completeness=1.0, specificity=1.0, consistency=1.0)
LOW = Scores(grounding=0.2, completeness=0.5, specificity=0.4, consistency=1.0)
ZERO = Scores(grounding=0.0, completeness=0.0, specificity=0.0, consistency=0.0)
PUNCTUATION = (
    '"; DROP TABLE knowledge_frames; --',
    "farmers AND (restaurants OR NOT produce) NEAR/2 *",
    "^col:value \"unterminated ' quote' & | ! <-> :* \\",
    "???!!!...",
    "",
    "日本語 café — “quoted”",
)


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


def new_run(run_id: str) -> NewRun:
    return NewRun(
        id=run_id,
        idea="A marketplace where local farmers sell produce to nearby restaurants",
        constraints={},
        source="cli",
        config_dir=None,
        manifest={"pipeline.yaml": "ab" * 32},
        manifest_hash="cd" * 32,
    )


def question(n: int, topic: str = "farmers", phase: str = "critique") -> Question:
    return Question(
        id=f"{phase}.1.Q1.{n}", iteration=1, rank=n, text=f"Who are the {topic}?", topic=topic
    )


def outcome(
    run_id: str,
    cases: Sequence[tuple[str, str, str]],
    phase: str = "critique",
) -> QavOutcome:
    """An outcome with one question per case: (verdict accepted|rejected|unknown, topic, text)."""
    questions, answers, validations, frames, bindings, assumptions = [], [], [], [], [], []
    for n, (verdict, topic, text) in enumerate(cases, start=1):
        asked = question(n, topic, phase)
        unknown = verdict == "unknown"
        reply = Answer(
            question_id=asked.id,
            text="UNKNOWN" if unknown else text,
            citations=() if unknown else (Citation(artifact="IdeaSpec", path="x", quote=text),),
            unknown=unknown,
        )
        accepted = verdict == "accepted"
        scores = FULL if accepted else ZERO if unknown else LOW
        validations.append(Validation(question_id=asked.id, scores=scores, accepted=accepted))
        questions.append(asked)
        answers.append(reply)
        if accepted:
            frame = Frame.create(topic, text, {"run_id": run_id, "question_id": asked.id})
            frames.append(frame)
            bindings.append(Binding(question_id=asked.id, frame_id=frame.id))
        else:
            reason = "unknown" if unknown else "rejected"
            assumptions.append(Assumption(question_id=asked.id, text=text, reason=reason))
    return QavOutcome(
        questions=tuple(questions),
        answers=tuple(answers),
        validations=tuple(validations),
        frames=tuple(frames),
        bindings=tuple(bindings),
        assumptions=tuple(assumptions),
    )


def prepare(store: Store, clock: Any, *run_ids: str) -> Knowledge:
    async def body() -> None:
        for run_id in run_ids:
            await store.create_run(new_run(run_id))

    run(body)
    return Knowledge(store, clock)


FARMERS = ("accepted", "farmers", "Farmers sell produce to nearby restaurants.")
COURIER = ("accepted", "delivery", "Produce is delivered by a courier every morning.")


def test_insert_qav_writes_exactly_the_accepted_bindings(store: Store, clock: Any) -> None:
    knowledge = prepare(store, clock, "run-a")
    given = outcome(
        "run-a",
        [FARMERS, ("rejected", "budget", "The budget is large."), ("unknown", "pricing", "")],
    )
    run(lambda: knowledge.record("run-a", "critique", 1, given.as_dict()))

    bindings = run(lambda: knowledge.bindings("run-a"))
    assert [(b.question_id, b.frame_id) for b in bindings] == [
        (v.question_id, given.frames[0].id) for v in given.validations if v.accepted
    ]
    questions = run(lambda: knowledge.questions("run-a"))
    assert [(q.id, q.status) for q in questions] == [
        ("critique.1.Q1.1", "accepted"),
        ("critique.1.Q1.2", "rejected"),
        ("critique.1.Q1.3", "unknown"),
    ]
    answers = run(lambda: knowledge.answers("run-a"))
    assert [(a.question_id, a.source, a.accepted) for a in answers] == [
        ("critique.1.Q1.1", "agent", True),
        ("critique.1.Q1.2", "agent", False),
        ("critique.1.Q1.3", "agent", False),
    ]
    assert answers[0].validation["scores"] == FULL.as_dict()
    assumptions = run(lambda: knowledge.assumptions("run-a"))
    assert [(a.question_id, a.reason) for a in assumptions] == [
        ("critique.1.Q1.2", "rejected"),
        ("critique.1.Q1.3", "unknown"),
    ]
    frames = run(lambda: knowledge.frames_for_run("run-a"))
    assert [f.id for f in frames] == [given.frames[0].id]


def test_insert_qav_runs_inside_the_callers_transaction(store: Store, clock: Any) -> None:
    knowledge = prepare(store, clock, "run-a")
    given = outcome("run-a", [FARMERS]).as_dict()
    assert isinstance(store, SqlStore)

    def work(db: object) -> None:
        insert_qav(db, "run-a", "critique", 1, given, "2024-01-01T00:00:00+00:00")
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        run(lambda: store.run_in_transaction(work))
    assert run(lambda: knowledge.questions("run-a")) == []
    assert run(lambda: knowledge.search("farmers")) == []


def test_a_frame_learnt_by_two_runs_is_one_frame_used_twice(
    store: Store, clock: Any, raw: Raw
) -> None:
    knowledge = prepare(store, clock, "run-a", "run-b")
    run(lambda: knowledge.record("run-a", "critique", 1, outcome("run-a", [FARMERS]).as_dict()))
    clock.advance(60)
    run(lambda: knowledge.record("run-b", "critique", 1, outcome("run-b", [FARMERS]).as_dict()))

    expected = frame_id("farmers", FARMERS[2])
    assert raw("SELECT id, uses FROM knowledge_frames") == [(expected, 2)]
    for run_id in ("run-a", "run-b"):
        assert [f.id for f in run(lambda r=run_id: knowledge.frames_for_run(r))] == [expected]
    found = run(lambda: knowledge.search("farmers"))
    assert [(f.id, f.uses) for f in found] == [(expected, 2)]
    # the first run's provenance is kept
    assert found[0].provenance["run_id"] == "run-a"


def test_writing_an_outcome_twice_changes_nothing(store: Store, clock: Any, raw: Raw) -> None:
    knowledge = prepare(store, clock, "run-a")
    given = outcome("run-a", [FARMERS, ("unknown", "pricing", "")]).as_dict()
    run(lambda: knowledge.record("run-a", "critique", 1, given))
    run(lambda: knowledge.record("run-a", "critique", 1, given))
    assert raw("SELECT uses FROM knowledge_frames") == [(1,)]
    counts = {"questions": 2, "answers": 2, "bindings": 1, "assumptions": 1}
    for table, count in counts.items():
        assert raw(f"SELECT count(*) FROM {table}") == [(count,)]


def test_search_finds_a_frame_by_a_word_and_ranks_the_better_match_first(
    store: Store, clock: Any
) -> None:
    knowledge = prepare(store, clock, "run-a")
    given = outcome("run-a", [COURIER, FARMERS])
    run(lambda: knowledge.record("run-a", "critique", 1, given.as_dict()))

    by_word = run(lambda: knowledge.search("courier"))
    assert [f.subject for f in by_word] == ["delivery"]
    ranked = run(lambda: knowledge.search("Which farmers sell produce?"))
    assert [f.subject for f in ranked] == ["farmers", "delivery"]
    assert run(lambda: knowledge.search("produce", limit=1)) != []
    assert run(lambda: knowledge.search("tractor")) == []


def test_search_spans_every_run(store: Store, clock: Any) -> None:
    knowledge = prepare(store, clock, "run-a", "run-b")
    run(lambda: knowledge.record("run-a", "critique", 1, outcome("run-a", [FARMERS]).as_dict()))
    run(lambda: knowledge.record("run-b", "prd", 1, outcome("run-b", [COURIER], "prd").as_dict()))
    found = run(lambda: knowledge.search("farmers courier"))
    assert sorted(f.subject for f in found) == ["delivery", "farmers"]


@pytest.mark.parametrize("text", PUNCTUATION)
def test_punctuation_heavy_queries_never_raise(store: Store, clock: Any, text: str) -> None:
    knowledge = prepare(store, clock, "run-a")
    run(lambda: knowledge.record("run-a", "critique", 1, outcome("run-a", [FARMERS]).as_dict()))
    found = run(lambda: knowledge.search(text))
    assert isinstance(found, list)
    if "farmers" in text:
        assert [f.subject for f in found] == ["farmers"]


def test_a_persons_answer_is_bound_with_its_event(store: Store, clock: Any) -> None:
    knowledge = prepare(store, clock, "run-a")
    given = outcome("run-a", [FARMERS, ("unknown", "pricing", "")])
    run(lambda: knowledge.record("run-a", "critique", 1, given.as_dict()))
    event = EventDraft(type="qav.answer", phase="critique", payload={"question": "x"})

    frame = run(
        lambda: knowledge.answer_question(
            "run-a", "critique.1.Q1.2", "Restaurants pay a 5% commission.", event
        )
    )
    assert isinstance(frame, Frame)
    statuses = {q.id: q.status for q in run(lambda: knowledge.questions("run-a"))}
    assert statuses["critique.1.Q1.2"] == "answered"
    answers = run(lambda: knowledge.answers("run-a"))
    assert [(a.source, a.accepted) for a in answers if a.question_id == "critique.1.Q1.2"] == [
        ("agent", False),
        ("person", True),
    ]
    bindings = run(lambda: knowledge.bindings("run-a"))
    assert ("critique.1.Q1.2", frame.id) in [(b.question_id, b.frame_id) for b in bindings]
    assert frame.provenance["source"] == "person"
    events = run(lambda: store.events("run-a"))
    assert [e.type for e in events][-1] == "qav.answer"
    assert run(lambda: knowledge.search("commission"))[0].id == frame.id


def test_a_persons_answer_is_refused_for_unknown_or_settled_questions(
    store: Store, clock: Any
) -> None:
    knowledge = prepare(store, clock, "run-a")
    run(lambda: knowledge.record("run-a", "critique", 1, outcome("run-a", [FARMERS]).as_dict()))
    event = EventDraft(type="qav.answer", phase="critique")
    with pytest.raises(UsageError):
        run(lambda: knowledge.answer_question("run-a", "critique.1.Q9.9", "text", event))
    with pytest.raises(RunStateError):
        run(lambda: knowledge.answer_question("run-a", "critique.1.Q1.1", "text", event))
    with pytest.raises(UsageError):
        run(lambda: knowledge.answer_question("run-a", "critique.1.Q1.1", "  ", event))
