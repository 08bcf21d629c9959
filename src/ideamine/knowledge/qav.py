"""The Question/Answer/Validate loop over a phase attempt's draft (SPEC §5 Q/A/V).

Each iteration the question agent lists gaps in the draft; questions that nearly repeat an
earlier one (this loop's or ``asked_before``) are dropped; the answer agent answers each new
question from the run's artifacts and knowledge frames, with citations, or says UNKNOWN; the
validator (:mod:`ideamine.knowledge.validator`) scores every answer. The loop stops after
``max_iterations``, at ``max_questions``, or as soon as an iteration brings no new question.
Accepted answers become knowledge frames and bindings; UNKNOWN and rejected ones become
assumptions and stay open questions.

Both agents run on sub-contexts of the caller's (same run, store and ``calls`` list), so
every model call passes the call cache and is recorded with the caller's task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ideamine.agents.base import Agent, AgentContext
from ideamine.agents.passages import NEAR_DUPLICATE, repeats
from ideamine.config.model import QavSpec
from ideamine.knowledge.frames import Frame
from ideamine.knowledge.validator import (
    Answer,
    Citation,
    Question,
    Validation,
    idea_vocabulary,
    validate,
)

__all__ = [
    "NEAR_DUPLICATE",
    "Assumption",
    "Binding",
    "QavOutcome",
    "is_near_duplicate",
    "run_qav",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """An accepted answer bound to the frame it became."""

    question_id: str
    frame_id: str

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"question_id": self.question_id, "frame_id": self.frame_id}


@dataclass(frozen=True, slots=True, kw_only=True)
class Assumption:
    """What the run goes on with for a question left without an accepted answer."""

    question_id: str
    text: str
    reason: Literal["unknown", "rejected"]

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"question_id": self.question_id, "text": self.text, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class QavOutcome:
    """Everything one Q/A/V loop produced; ``as_dict`` is what the store and gate read."""

    questions: tuple[Question, ...] = ()
    answers: tuple[Answer, ...] = ()
    validations: tuple[Validation, ...] = ()
    frames: tuple[Frame, ...] = ()
    bindings: tuple[Binding, ...] = ()
    assumptions: tuple[Assumption, ...] = ()

    @property
    def open_questions(self) -> tuple[str, ...]:
        """Ids of the questions left without an accepted answer, in order."""
        accepted = {binding.question_id for binding in self.bindings}
        return tuple(q.id for q in self.questions if q.id not in accepted)

    @property
    def summary(self) -> dict[str, object]:
        """Counts, and the mean grounding of the answered (not UNKNOWN) answers: 1.0 when
        nothing was asked, 0.0 when nothing was answered."""
        unknown = {a.question_id for a in self.answers if a.unknown}
        answered = [v for v in self.validations if v.question_id not in unknown]
        accepted = sum(v.accepted for v in self.validations)
        grounding = [v.scores.grounding for v in answered]
        mean = sum(grounding) / len(grounding) if grounding else float(not self.questions)
        return {
            "questions": len(self.questions),
            "answered": len(answered),
            "accepted": accepted,
            "rejected": len(answered) - accepted,
            "unknown": len(unknown),
            "mean_grounding": round(mean, 4),
        }

    def as_dict(self) -> dict[str, object]:
        """JSON-able form (``open_questions`` and ``summary`` included)."""
        return {
            "questions": [q.as_dict() for q in self.questions],
            "answers": [a.as_dict() for a in self.answers],
            "validations": [v.as_dict() for v in self.validations],
            "frames": [f.as_dict() for f in self.frames],
            "bindings": [b.as_dict() for b in self.bindings],
            "assumptions": [a.as_dict() for a in self.assumptions],
            "open_questions": list(self.open_questions),
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> QavOutcome:
        """The outcome ``as_dict`` gave (``open_questions`` and ``summary`` are derived).

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not an outcome's form.
        """
        return cls(
            questions=tuple(Question.from_dict(q) for q in _items(data, "questions")),
            answers=tuple(Answer.from_dict(a) for a in _items(data, "answers")),
            validations=tuple(Validation.from_dict(v) for v in _items(data, "validations")),
            frames=tuple(Frame.from_dict(f) for f in _items(data, "frames")),
            bindings=tuple(
                Binding(question_id=str(b["question_id"]), frame_id=str(b["frame_id"]))
                for b in _items(data, "bindings")
            ),
            assumptions=tuple(_assumption(a) for a in _items(data, "assumptions")),
        )


def _items(data: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise TypeError(f"{key!r} must be a list of objects")
    return value


def _assumption(data: Mapping[str, object]) -> Assumption:
    reason = data["reason"]
    if reason not in ("unknown", "rejected"):
        raise ValueError(f"unknown assumption reason {reason!r}")
    return Assumption(question_id=str(data["question_id"]), text=str(data["text"]), reason=reason)


def is_near_duplicate(text: str, earlier: str) -> bool:
    """Whether question ``text`` repeats ``earlier``: the Jaccard similarity of their stemmed
    content terms is at least :data:`NEAR_DUPLICATE` (0.8; equal texts, case and spacing
    aside, when either has no content terms)."""
    return repeats(text, [earlier])


async def run_qav(
    ctx: AgentContext,
    *,
    question: Agent,
    answer: Agent,
    spec: QavSpec,
    min_grounding: float,
    draft: Mapping[str, object],
    upstream: Mapping[str, object],
    frames: Sequence[Frame],
    asked_before: Sequence[str],
) -> QavOutcome:
    """Run the Q/A/V loop over a phase attempt's draft.

    Args:
        ctx: the judge task's context; the agents run on sub-contexts of it.
        question: the question agent (lists gaps as ``{"questions": [{text, topic}]}``).
        answer: the answer agent (``{"answer", "citations", "unknown"}``).
        spec: the phase's Q/A/V settings (``max_questions`` in all, ``max_iterations``).
        min_grounding: the least mean score to accept; never laxer than ``spec``'s (the
            gate's auto-fix passes 0.9).
        draft: the phase attempt's artifacts by type.
        upstream: the artifacts of the phases it depends on, by type.
        frames: knowledge frames the answer agent may cite (e.g. a search of the base).
        asked_before: question texts asked earlier (other attempts, phases or runs).

    Returns:
        The questions, answers, validations, new frames, bindings and assumptions.

    Raises:
        AgentError: an agent failed (its model calls are recorded on ``ctx.calls``).
    """
    loop = _Loop(ctx, question, answer, max(min_grounding, spec.min_grounding))
    artifacts = {**upstream, **draft}
    vocabulary = idea_vocabulary(str(loop.idea.get("text", "")), artifacts)
    asked = list(asked_before)
    for iteration in range(1, spec.max_iterations + 1):
        remaining = spec.max_questions - len(loop.questions)
        if remaining <= 0:
            break
        listed = await loop.ask(iteration, remaining, draft, upstream, asked)
        fresh = _fresh(listed, asked)[:remaining]
        if not fresh:
            break
        for rank, (text, topic) in enumerate(fresh, start=1):
            asked.append(text)
            item = Question(
                id=f"{ctx.phase}.{ctx.attempt}.Q{iteration}.{rank}",
                iteration=iteration,
                rank=rank,
                text=text,
                topic=topic,
            )
            await loop.settle(item, artifacts, frames, vocabulary)
    return loop.outcome()


def _fresh(listed: Sequence[tuple[str, str]], asked: Sequence[str]) -> list[tuple[str, str]]:
    """``listed`` without near-duplicates of ``asked`` or of an earlier item of its own."""
    kept: list[tuple[str, str]] = []
    for text, topic in listed:
        seen = [*asked, *(earlier for earlier, _ in kept)]
        if text.strip() and not repeats(text, seen):
            kept.append((text.strip(), topic.strip() or text.strip()))
    return kept


class _Loop:
    """The state of one run of the loop: what was asked, answered and accepted so far."""

    def __init__(self, ctx: AgentContext, question: Agent, answer: Agent, least: float) -> None:
        self.ctx, self.question_agent, self.answer_agent, self.least = ctx, question, answer, least
        idea = ctx.values.get("idea")
        self.idea = dict(idea) if isinstance(idea, Mapping) else {"text": "", "constraints": {}}
        self.questions: list[Question] = []
        self.answers: list[Answer] = []
        self.validations: list[Validation] = []

    def _sub(self, agent: Agent, key: str, values: Mapping[str, object]) -> AgentContext:
        base = {
            "idea": self.idea,
            "phase": self.ctx.phase,
            "attempt": self.ctx.attempt,
            "feedback": self.ctx.values.get("feedback", []),
        }
        return replace(
            self.ctx, spec=agent.spec, key=key, values={**base, **values}, resumed_from=None
        )

    async def ask(
        self,
        iteration: int,
        remaining: int,
        draft: Mapping[str, object],
        upstream: Mapping[str, object],
        asked: Sequence[str],
    ) -> list[tuple[str, str]]:
        """The questions the agent lists this iteration, as (text, topic), in rank order."""
        values = {
            "iteration": iteration,
            "max_questions": remaining,
            "draft": dict(draft),
            "artifacts": dict(upstream),
            "asked": list(asked),
        }
        sub = self._sub(self.question_agent, f"{self.ctx.key}.q{iteration}", values)
        result = await self.question_agent.run(sub)
        listed = result.output.get("questions", []) if isinstance(result.output, dict) else []
        return [
            (str(item.get("text", "")), str(item.get("topic", "")))
            for item in listed
            if isinstance(item, dict)
        ]

    async def settle(
        self,
        question: Question,
        artifacts: Mapping[str, object],
        frames: Sequence[Frame],
        vocabulary: frozenset[str],
    ) -> None:
        """Answer ``question`` and validate the answer."""
        values = {
            "iteration": question.iteration,
            "question": {"id": question.id, "text": question.text, "topic": question.topic},
            "artifacts": dict(artifacts),
            "frames": [frame.as_dict() for frame in frames],
        }
        key = f"{self.ctx.key}.a{question.iteration}.{question.rank}"
        result = await self.answer_agent.run(self._sub(self.answer_agent, key, values))
        reply = _answer(question.id, result.output)
        accepted = [
            (q, a)
            for q, a, v in zip(self.questions, self.answers, self.validations, strict=True)
            if v.accepted
        ]
        verdict = validate(
            question,
            reply,
            artifacts=artifacts,
            frames=frames,
            vocabulary=vocabulary,
            accepted=accepted,
            min_grounding=self.least,
        )
        self.questions.append(question)
        self.answers.append(reply)
        self.validations.append(verdict)
        await self.ctx.heartbeat()

    def outcome(self) -> QavOutcome:
        """Frames and bindings for the accepted answers, assumptions for the others."""
        frames: dict[str, Frame] = {}
        bindings: list[Binding] = []
        assumptions: list[Assumption] = []
        for question, reply, verdict in zip(
            self.questions, self.answers, self.validations, strict=True
        ):
            if verdict.accepted:
                frame = Frame.create(question.topic, reply.text, self._provenance(question, reply))
                frames.setdefault(frame.id, frame)
                bindings.append(Binding(question_id=question.id, frame_id=frame.id))
            else:
                assumptions.append(_assumption_for(question, reply))
        return QavOutcome(
            questions=tuple(self.questions),
            answers=tuple(self.answers),
            validations=tuple(self.validations),
            frames=tuple(frames.values()),
            bindings=tuple(bindings),
            assumptions=tuple(assumptions),
        )

    def _provenance(self, question: Question, reply: Answer) -> dict[str, object]:
        return {
            "run_id": self.ctx.run_id,
            "phase": self.ctx.phase,
            "attempt": self.ctx.attempt,
            "question_id": question.id,
            "question": question.text,
            "source": "agent",
            "citations": [citation.as_dict() for citation in reply.citations],
        }


def _answer(question_id: str, output: object) -> Answer:
    """The answer agent's output as an ``Answer``; "UNKNOWN" text counts as unknown."""
    data = output if isinstance(output, dict) else {}
    text = str(data.get("answer", "")).strip()
    cited = data.get("citations", [])
    unknown = bool(data.get("unknown")) or not text or text.upper().startswith("UNKNOWN")
    return Answer(
        question_id=question_id,
        text=text,
        citations=tuple(
            Citation.from_dict(c)
            for c in (cited if isinstance(cited, list) else [])
            if isinstance(c, dict)
        ),
        unknown=unknown,
    )


def _assumption_for(question: Question, reply: Answer) -> Assumption:
    if reply.unknown:
        text = f"{question.text} Unanswered: the run goes on without an answer."
        return Assumption(question_id=question.id, text=text, reason="unknown")
    text = f"{question.text} Assumed, not verified: {reply.text}"
    return Assumption(question_id=question.id, text=text, reason="rejected")
