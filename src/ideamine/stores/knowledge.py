"""The knowledge base and the Q/A/V record (tables of migration 5): questions, answers,
bindings, deduplicated knowledge frames with full-text search, assumptions.

A store extension: its SQL lives here, inside ``ideamine.stores`` (invariant 5), and runs
through ``SqlStore.run_in_transaction`` (reads through ``run_read``). Rows of one run are
keyed ``<run id>.<question id>`` (question ids such as ``prd.1.Q2.3`` repeat across runs);
the records given back carry the short ids. Frames are shared by every run: a frame learnt
again gets ``uses + 1``. Search is the only SQL that differs: FTS5 with bm25 on SQLite, a
``tsvector`` match ranked by ``ts_rank`` on PostgreSQL, both matching any of the query's
words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ideamine.canonical import canonical_json
from ideamine.clock import Clock, SystemClock, iso
from ideamine.errors import RunStateError, UsageError
from ideamine.knowledge.frames import Frame
from ideamine.stores import queries as q
from ideamine.stores.base import Store
from ideamine.stores.records import EventDraft
from ideamine.stores.sqlstore import SqlStore

__all__ = [
    "AnswerRecord",
    "AssumptionRecord",
    "BindingRecord",
    "Knowledge",
    "QuestionRecord",
    "insert_qav",
]

T = TypeVar("T")
MAX_SEARCH_WORDS = 32
_WORD = re.compile(r"[^\W_]+")
_PG_VECTOR = "to_tsvector('english', subject || ' ' || text)"  # the GIN index's expression
_FRAME_COLUMNS = "id, subject, text, provenance, uses"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionRecord:
    """A question asked about a phase attempt; ``status`` is accepted, rejected, unknown,
    open or answered (by a person)."""

    id: str
    run_id: str
    phase: str
    attempt: int
    iteration: int
    rank: int
    text: str
    topic: str
    status: str
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerRecord:
    """An answer from the answer agent (``source`` agent, with its validation) or a person."""

    question_id: str
    source: str
    text: str
    citations: tuple[Mapping[str, object], ...]
    validation: Mapping[str, object] | None
    accepted: bool
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRecord:
    """An accepted answer bound to its frame."""

    question_id: str
    phase: str
    frame_id: str
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AssumptionRecord:
    """What a run went on with for a question left open (``reason`` unknown or rejected)."""

    question_id: str | None
    phase: str
    attempt: int
    text: str
    reason: str
    created_at: str


def insert_qav(
    db: q.Db, run_id: str, phase: str, attempt: int, outcome: Mapping[str, Any], at: str
) -> None:
    """Record one Q/A/V outcome (``QavOutcome.as_dict()``) inside the caller's transaction.

    Writes its questions, answers, bindings, frames (a known frame gets ``uses + 1``; a new
    one is also indexed for search) and assumptions. Idempotent: writing the same outcome
    again changes nothing.
    """
    validations = {str(v["question_id"]): v for v in outcome.get("validations", [])}
    unknown = {str(a["question_id"]) for a in outcome.get("answers", []) if a.get("unknown")}
    for item in outcome.get("questions", []):
        qid = str(item["id"])
        status = _status(validations.get(qid), unknown=qid in unknown)
        db.query(
            "INSERT INTO questions (id, run_id, phase, attempt, iteration, rank, text, topic, "
            "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (
                _key(run_id, qid),
                run_id,
                phase,
                attempt,
                int(item["iteration"]),
                int(item["rank"]),
                str(item["text"]),
                str(item["topic"]),
                status,
                at,
            ),
        )
    for reply in outcome.get("answers", []):
        qid = str(reply["question_id"])
        _insert_answer(db, run_id, qid, "agent", reply, validations.get(qid), at)
    frames = {str(f["id"]): f for f in outcome.get("frames", [])}
    for binding in outcome.get("bindings", []):
        qid, frame = str(binding["question_id"]), frames[str(binding["frame_id"])]
        _bind(db, run_id, phase, qid, f"{_key(run_id, qid)}.agent", frame, at)
    for assumption in outcome.get("assumptions", []):
        qid = str(assumption["question_id"])
        db.query(
            "INSERT INTO assumptions (id, run_id, phase, attempt, question_id, text, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                f"{_key(run_id, qid)}.assumption",
                run_id,
                phase,
                attempt,
                _key(run_id, qid),
                str(assumption["text"]),
                str(assumption["reason"]),
                at,
            ),
        )


def _status(validation: Mapping[str, Any] | None, *, unknown: bool) -> str:
    """A question's status from its answer's validation."""
    if unknown:
        return "unknown"
    if validation is None:
        return "open"
    return "accepted" if validation.get("accepted") else "rejected"


def _key(run_id: str, question_id: str) -> str:
    """The row key of a run's question (question ids repeat across runs)."""
    return f"{run_id}.{question_id}"


def _short(run_id: str, key: str) -> str:
    return key.removeprefix(f"{run_id}.")


def _insert_answer(
    db: q.Db,
    run_id: str,
    question_id: str,
    source: str,
    reply: Mapping[str, Any],
    validation: Mapping[str, Any] | None,
    at: str,
) -> None:
    accepted = True if source == "person" else bool(validation and validation.get("accepted"))
    db.query(
        "INSERT INTO answers (id, question_id, run_id, source, text, citations, validation, "
        "accepted, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            f"{_key(run_id, question_id)}.{source}",
            _key(run_id, question_id),
            run_id,
            source,
            str(reply["text"]),
            canonical_json(list(reply.get("citations", []))),
            canonical_json(dict(validation)) if validation is not None else None,
            int(accepted),
            at,
        ),
    )


def _bind(
    db: q.Db,
    run_id: str,
    phase: str,
    question_id: str,
    answer_id: str,
    frame: Mapping[str, Any],
    at: str,
) -> None:
    """Bind the answer to ``frame`` once; the frame is added, or its ``uses`` counted."""
    binding = f"{_key(run_id, question_id)}.binding"
    if db.query("SELECT 1 FROM bindings WHERE id = ?", (binding,)):
        return  # already recorded: a repeated write must not count the frame twice
    db.query(
        "INSERT INTO bindings (id, run_id, phase, question_id, answer_id, frame_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (binding, run_id, phase, _key(run_id, question_id), answer_id, str(frame["id"]), at),
    )
    rows = db.query(
        "INSERT INTO knowledge_frames (id, subject, text, provenance, uses, created_at) "
        "VALUES (?, ?, ?, ?, 1, ?) "
        "ON CONFLICT (id) DO UPDATE SET uses = knowledge_frames.uses + 1 RETURNING uses",
        (
            str(frame["id"]),
            str(frame["subject"]),
            str(frame["text"]),
            canonical_json(dict(frame.get("provenance", {}))),
            at,
        ),
    )
    if db.dialect == "sqlite" and int(rows[0][0]) == 1:  # a new frame: index it for search
        db.query(
            "INSERT INTO knowledge_search (rowid, subject, text) "
            "SELECT rowid, subject, text FROM knowledge_frames WHERE id = ?",
            (str(frame["id"]),),
        )


def search_words(text: str) -> list[str]:
    """The distinct words of ``text`` (letters and digits only, so no query syntax)."""
    found = dict.fromkeys(word.lower() for word in _WORD.findall(str(text)))
    return list(found)[:MAX_SEARCH_WORDS]


def _search(db: q.Db, words: Sequence[str], limit: int) -> list[q.Row]:
    if db.dialect == "sqlite":
        match = " OR ".join(f'"{word}"' for word in words)  # quoted: never FTS5 syntax
        return db.query(
            "SELECT f.id, f.subject, f.text, f.provenance, f.uses FROM knowledge_search s "
            "JOIN knowledge_frames f ON f.rowid = s.rowid WHERE knowledge_search MATCH ? "
            "ORDER BY bm25(knowledge_search), f.id LIMIT ?",
            (match, limit),
        )
    query = " || ".join("plainto_tsquery('english', ?)" for _ in words)
    return db.query(
        f"WITH q AS (SELECT ({query}) AS query) SELECT {_FRAME_COLUMNS} "
        f"FROM knowledge_frames, q WHERE {_PG_VECTOR} @@ q.query "
        f"ORDER BY ts_rank({_PG_VECTOR}, q.query) DESC, id LIMIT ?",
        (*words, limit),
    )


def _frame(row: q.Row) -> Frame:
    provenance = q.load_json(str(row[3]), f"knowledge frame {row[0]}")
    return Frame(
        id=str(row[0]),
        subject=str(row[1]),
        text=str(row[2]),
        provenance=provenance if isinstance(provenance, dict) else {},
        uses=int(row[4]),
    )


class Knowledge:
    """The knowledge base and the Q/A/V record of a SQL store (shared by every run in it)."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        if not isinstance(store, SqlStore):
            raise TypeError("the knowledge base needs a SQL store")
        self._store = store
        self._clock = clock or SystemClock()

    async def _run(self, work: Callable[[q.Db], T]) -> T:
        return await self._store.run_in_transaction(work)

    async def _read(self, work: Callable[[q.Db], T]) -> T:
        return await self._store.run_read(work)

    async def record(
        self, run_id: str, phase: str, attempt: int, outcome: Mapping[str, Any]
    ) -> None:
        """:func:`insert_qav` in a transaction of its own."""
        at = iso(self._clock.now())
        await self._run(lambda db: insert_qav(db, run_id, phase, attempt, outcome, at))

    async def search(self, text: str, limit: int = 10) -> list[Frame]:
        """Frames of every run matching any word of ``text``, best match first.

        Any text is safe: only its letters and digits are searched for. ``[]`` when it has none.
        """
        words = search_words(text)
        if not words or limit <= 0:
            return []
        rows = await self._read(lambda db: _search(db, words, int(limit)))
        return [_frame(row) for row in rows]

    async def questions(self, run_id: str) -> list[QuestionRecord]:
        """The run's questions, in the order they were asked."""
        rows = await self._read(
            lambda db: db.query(
                "SELECT id, phase, attempt, iteration, rank, text, topic, status, created_at "
                "FROM questions WHERE run_id = ? ORDER BY created_at, phase, attempt, "
                "iteration, rank",
                (run_id,),
            )
        )
        return [
            QuestionRecord(
                id=_short(run_id, str(r[0])),
                run_id=run_id,
                phase=str(r[1]),
                attempt=int(r[2]),
                iteration=int(r[3]),
                rank=int(r[4]),
                text=str(r[5]),
                topic=str(r[6]),
                status=str(r[7]),
                created_at=str(r[8]),
            )
            for r in rows
        ]

    async def answers(self, run_id: str) -> list[AnswerRecord]:
        """The run's answers (agents' and people's), oldest first."""
        rows = await self._read(
            lambda db: db.query(
                "SELECT question_id, source, text, citations, validation, accepted, created_at "
                "FROM answers WHERE run_id = ? ORDER BY created_at, id",
                (run_id,),
            )
        )
        return [_answer_record(run_id, row) for row in rows]

    async def bindings(self, run_id: str) -> list[BindingRecord]:
        """The run's accepted answers and the frames they became, oldest first."""
        rows = await self._read(
            lambda db: db.query(
                "SELECT question_id, phase, frame_id, created_at FROM bindings "
                "WHERE run_id = ? ORDER BY created_at, id",
                (run_id,),
            )
        )
        return [
            BindingRecord(
                question_id=_short(run_id, str(r[0])),
                phase=str(r[1]),
                frame_id=str(r[2]),
                created_at=str(r[3]),
            )
            for r in rows
        ]

    async def assumptions(self, run_id: str) -> list[AssumptionRecord]:
        """What the run went on with, oldest first."""
        rows = await self._read(
            lambda db: db.query(
                "SELECT question_id, phase, attempt, text, reason, created_at FROM assumptions "
                "WHERE run_id = ? ORDER BY created_at, id",
                (run_id,),
            )
        )
        return [
            AssumptionRecord(
                question_id=_short(run_id, str(r[0])) if r[0] is not None else None,
                phase=str(r[1]),
                attempt=int(r[2]),
                text=str(r[3]),
                reason=str(r[4]),
                created_at=str(r[5]),
            )
            for r in rows
        ]

    async def frames(self, ids: Sequence[str]) -> list[Frame]:
        """The frames with these ids, in the order given (unknown ids are left out)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        marks = ", ".join("?" for _ in wanted)
        rows = await self._read(
            lambda db: db.query(
                f"SELECT {_FRAME_COLUMNS} FROM knowledge_frames WHERE id IN ({marks})", wanted
            )
        )
        found = {frame.id: frame for frame in map(_frame, rows)}
        return [found[i] for i in wanted if i in found]

    async def frames_for_run(self, run_id: str) -> list[Frame]:
        """The frames the run's bindings point at (each once), in binding order."""
        rows = await self._read(
            lambda db: db.query(
                f"SELECT {_FRAME_COLUMNS} FROM knowledge_frames WHERE id IN "
                "(SELECT frame_id FROM bindings WHERE run_id = ?) ORDER BY created_at, id",
                (run_id,),
            )
        )
        return [_frame(row) for row in rows]

    async def answer_question(
        self, run_id: str, question_id: str, text: str, event: EventDraft
    ) -> Frame:
        """A person's answer (``ideamine answer``): in one transaction the question becomes
        ``answered``, the answer is recorded (source ``person``) and bound to its frame, and
        ``event`` is appended to the run's ledger.

        Args:
            run_id: the run.
            question_id: the question, short (``prd.1.Q1.2``) or as stored.
            text: the answer.
            event: the ledger event recording it.

        Returns:
            The frame the answer became.

        Raises:
            UsageError: the run has no such question, or the answer is empty.
            RunStateError: the question already has an accepted or a person's answer.
        """
        if not text.strip():
            raise UsageError("an answer needs some text", hint="say what the answer is")
        at = iso(self._clock.now())
        return await self._run(
            lambda db: _answer_question(db, run_id, question_id, text.strip(), event, at)
        )


def _answer_question(
    db: q.Db, run_id: str, question_id: str, text: str, event: EventDraft, at: str
) -> Frame:
    short = _short(run_id, question_id)
    rows = db.query(
        "SELECT phase, attempt, text, topic, status FROM questions WHERE id = ? AND run_id = ?",
        (_key(run_id, short), run_id),
    )
    if not rows:
        raise UsageError(
            f"run {run_id} has no question {short!r}",
            hint="list the run's open questions and use one of their ids",
        )
    phase, attempt, asked, topic, status = rows[0]
    if status in ("accepted", "answered"):
        raise RunStateError(
            run_id,
            f"question {short} of run {run_id} is already {status}",
            hint="each question is answered once; ask a new one instead",
        )
    provenance = {
        "run_id": run_id,
        "phase": str(phase),
        "attempt": int(attempt),
        "question_id": short,
        "question": str(asked),
        "source": "person",
    }
    frame = Frame.create(str(topic), text, provenance)
    db.query(
        "UPDATE questions SET status = 'answered' WHERE id = ?",
        (_key(run_id, short),),
    )
    _insert_answer(db, run_id, short, "person", {"text": text, "citations": []}, None, at)
    _bind(db, run_id, str(phase), short, f"{_key(run_id, short)}.person", frame.as_dict(), at)
    q.append_event(db, run_id, event, at)
    return frame


def _answer_record(run_id: str, row: q.Row) -> AnswerRecord:
    citations = q.load_json(str(row[3]), f"citations of an answer to {row[0]}")
    validation = q.load_json(str(row[4]), f"validation of {row[0]}") if row[4] else None
    return AnswerRecord(
        question_id=_short(run_id, str(row[0])),
        source=str(row[1]),
        text=str(row[2]),
        citations=tuple(c for c in citations if isinstance(c, dict))
        if isinstance(citations, list)
        else (),
        validation=validation if isinstance(validation, dict) else None,
        accepted=bool(row[5]),
        created_at=str(row[6]),
    )
