"""The Q/A/V validator: scores an answer against the artifacts it cites. Pure and deterministic.

Every score is computed from the text, never asserted by a model (SPEC §5 Q/A/V), each in
[0, 1]. Terms are :func:`ideamine.agents.extraction.terms` (stemmed content words; ids like
``F-01`` whole); quotes and places compare :func:`ideamine.knowledge.frames.normalise`\\ d.

- **grounding** = resolved / cited × covered. A citation resolves when its artifact exists,
  its path resolves and its quote occurs in the text at that place (or in a leaf below it), or
  when it names a known frame whose text holds the quote. ``covered`` is the share of the
  answer's claim terms (its terms that are not the question's) found in resolved quotes.
- **completeness** = ½ × share of the topic's terms in the answer + ½ × share of all key
  terms (topic and question) in the answer; just the latter when the topic has none. Words
  naming an artifact type ("PRD") are not key terms.
- **specificity** = 0.4 + 1.2 × specific − filler, clamped: ``specific`` is the share of the
  answer's terms that are idea-specific (in the idea's vocabulary, numbers, ids, names written
  with a capital mid-sentence), ``filler`` the share of stock words ("robust", "seamless").
- **consistency** = 1 − 0.25 × conflicts, at least 0: a conflict is a quantity in the answer
  ("$5,000", "30 days") whose unit the cited artifacts (or an earlier accepted answer on the
  same topic) also give, never with that value.

An answer is accepted when grounding ≥ 0.7, completeness ≥ 0.7, specificity ≥ 0.6,
consistency ≥ 0.8 and their mean ≥ ``min_grounding``. UNKNOWN answers are never accepted.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ideamine.agents.extraction import stem, terms
from ideamine.agents.passages import key_terms, leaves, resolve_path
from ideamine.knowledge.frames import Frame, normalise

__all__ = [
    "THRESHOLDS",
    "Answer",
    "Citation",
    "Question",
    "Scores",
    "Validation",
    "idea_vocabulary",
    "quantities",
    "validate",
]

THRESHOLDS = {"grounding": 0.7, "completeness": 0.7, "specificity": 0.6, "consistency": 0.8}
CONFLICT_PENALTY = 0.25
# Stock words that fit any idea (one word each: terms split hyphenated words).
_FILLER_TEXT = """various appropriate relevant robust scalable seamless seamlessly best practice
    ensure leverage solution stakeholder synergy optimal efficient effective innovative
    comprehensive etc necessary several good great quality modern standard proper properly
    suitable adequate generally typically significant significantly overall holistic
    streamlined cutting-edge world-class state-of-the-art"""
_FILLER = frozenset(stem(word) for word in _FILLER_TEXT.split() if "-" not in word)
_QUANTITY = re.compile(
    r"(?P<cur>[$€£])?\s?(?<![\w-])(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)(?:\s?(?P<pct>%))?(?:[\s-]+(?P<unit>[A-Za-z]+))?"
)
_CURRENCY = {"$": "usd", "€": "eur", "£": "gbp"}
_CAPITALISED = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]+[A-Za-z]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """A gap the question agent found: ``id`` is ``phase.attempt.Q<iteration>.<n>``."""

    id: str
    iteration: int
    rank: int
    text: str
    topic: str

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "id": self.id,
            "iteration": self.iteration,
            "rank": self.rank,
            "text": self.text,
            "topic": self.topic,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Question:
        """The question ``as_dict`` gave."""
        return cls(
            id=str(data["id"]),
            iteration=int(str(data["iteration"])),
            rank=int(str(data["rank"])),
            text=str(data["text"]),
            topic=str(data["topic"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Citation:
    """Where an answer's words come from: a place in an artifact, or a knowledge frame."""

    quote: str
    artifact: str = ""
    path: str = ""
    frame: str = ""

    def as_dict(self) -> dict[str, object]:
        """``{"frame", "quote"}`` or ``{"artifact", "path", "quote"}``."""
        if self.frame:
            return {"frame": self.frame, "quote": self.quote}
        return {"artifact": self.artifact, "path": self.path, "quote": self.quote}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Citation:
        """The citation ``as_dict`` (or an agent) gave; missing keys read as empty."""
        return cls(
            quote=str(data.get("quote", "")),
            artifact=str(data.get("artifact", "")),
            path=str(data.get("path", "")),
            frame=str(data.get("frame", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """The answer agent's (or a person's) answer to one question."""

    question_id: str
    text: str
    citations: tuple[Citation, ...] = ()
    unknown: bool = False

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "question_id": self.question_id,
            "text": self.text,
            "citations": [citation.as_dict() for citation in self.citations],
            "unknown": self.unknown,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Answer:
        """The answer ``as_dict`` gave."""
        cited = data.get("citations", [])
        return cls(
            question_id=str(data["question_id"]),
            text=str(data["text"]),
            citations=tuple(
                Citation.from_dict(c) for c in (cited if isinstance(cited, list) else [])
            ),
            unknown=bool(data.get("unknown", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    """The four validation scores, each in [0, 1]."""

    grounding: float
    completeness: float
    specificity: float
    consistency: float

    @property
    def mean(self) -> float:
        """The plain mean of the four."""
        total = self.grounding + self.completeness + self.specificity + self.consistency
        return round(total / 4, 4)

    def as_dict(self) -> dict[str, float]:
        """JSON-able form."""
        return {
            "grounding": self.grounding,
            "completeness": self.completeness,
            "specificity": self.specificity,
            "consistency": self.consistency,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    """The verdict on one answer: scores, whether it is accepted, and why (or why not)."""

    question_id: str
    scores: Scores
    accepted: bool
    reasons: tuple[str, ...] = ()

    @property
    def mean(self) -> float:
        """The mean of the scores."""
        return self.scores.mean

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "question_id": self.question_id,
            "scores": self.scores.as_dict(),
            "mean": self.mean,
            "accepted": self.accepted,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Validation:
        """The validation ``as_dict`` gave."""
        scores = data["scores"]
        reasons = data.get("reasons", [])
        assert isinstance(scores, Mapping)
        return cls(
            question_id=str(data["question_id"]),
            scores=Scores(**{key: float(str(scores[key])) for key in THRESHOLDS}),
            accepted=bool(data["accepted"]),
            reasons=tuple(str(r) for r in (reasons if isinstance(reasons, list) else [])),
        )


def validate(
    question: Question,
    answer: Answer,
    *,
    artifacts: Mapping[str, object],
    frames: Sequence[Frame] = (),
    vocabulary: Collection[str] = frozenset(),
    accepted: Sequence[tuple[Question, Answer]] = (),
    min_grounding: float = 0.0,
) -> Validation:
    """Score ``answer`` to ``question`` and decide whether to accept it.

    Args:
        question: what was asked.
        answer: what the answer agent said; an UNKNOWN answer scores 0 and is not accepted.
        artifacts: the run's artifacts by type (upstream and the phase's draft).
        frames: the knowledge frames the answer agent was shown.
        vocabulary: the idea's terms (:func:`idea_vocabulary`), for specificity.
        accepted: earlier accepted question and answer pairs, for consistency.
        min_grounding: the least mean score to accept (the phase's, or stricter).

    Returns:
        The scores, the verdict and the reasons for any score under its threshold.
    """
    if answer.unknown:
        zero = Scores(grounding=0.0, completeness=0.0, specificity=0.0, consistency=0.0)
        return Validation(
            question_id=question.id,
            scores=zero,
            accepted=False,
            reasons=("unknown: nothing in the artifacts or frames answers it",),
        )
    grounding, why_g = _grounding(question, answer, artifacts, frames)
    completeness, why_c = _completeness(question, answer, artifacts)
    specificity, why_s = _specificity(answer, vocabulary)
    consistency, why_k = _consistency(question, answer, artifacts, accepted)
    scores = Scores(
        grounding=grounding,
        completeness=completeness,
        specificity=specificity,
        consistency=consistency,
    )
    reasons = [
        f"{name} {value:.2f} < {THRESHOLDS[name]:.2f}: {why}"
        for name, value, why in (
            ("grounding", grounding, why_g),
            ("completeness", completeness, why_c),
            ("specificity", specificity, why_s),
            ("consistency", consistency, why_k),
        )
        if value < THRESHOLDS[name]
    ]
    if scores.mean < min_grounding:
        reasons.append(f"mean {scores.mean:.2f} < {min_grounding:.2f} (the phase's minimum)")
    return Validation(
        question_id=question.id, scores=scores, accepted=not reasons, reasons=tuple(reasons)
    )


def idea_vocabulary(idea_text: str, artifacts: Mapping[str, object]) -> frozenset[str]:
    """The terms specific to this idea: its text, the IdeaSpec's title, description, problem
    and users, and every ``name``, ``title``, ``role`` and ``id`` in the artifacts."""
    spec = artifacts.get("IdeaSpec")
    parts = [idea_text]
    if isinstance(spec, Mapping):
        parts += [str(spec.get(key, "")) for key in ("title", "description", "problem_statement")]
        parts += [str(user) for user in spec.get("target_users", []) or []]
    for content in artifacts.values():
        for leaf in leaves(content):
            if re.search(r"(?:^|\.)(?:name|title|role|id)$", leaf["path"]):
                parts.append(leaf["text"])
    return frozenset(term for part in parts for term in terms(part))


def quantities(text: str) -> list[tuple[float, str]]:
    """The numbers in ``text`` that carry a unit: ``"$5,000"`` → ``(5000.0, "usd")``,
    ``"30 days"`` and ``"30-day"`` → ``(30.0, "day")``, ``"20%"`` → ``(20.0, "percent")``."""
    found: list[tuple[float, str]] = []
    for match in _QUANTITY.finditer(str(text)):
        value = float(match["num"].replace(",", ""))
        if match["cur"]:
            found.append((value, _CURRENCY[match["cur"]]))
        elif match["pct"]:
            found.append((value, "percent"))
        elif match["unit"] and terms(match["unit"]):
            found.append((value, stem(match["unit"].lower())))
    return found


def _share(part: Iterable[str], whole: Collection[str]) -> float:
    return len(set(part) & set(whole)) / len(whole) if whole else 1.0


def _grounding(
    question: Question, answer: Answer, artifacts: Mapping[str, object], frames: Sequence[Frame]
) -> tuple[float, str]:
    if not answer.citations:
        return 0.0, "no citations"
    known = {frame.id: frame.text for frame in frames}
    failures = [
        problem
        for citation in answer.citations
        if (problem := _unresolved(citation, artifacts, known))
    ]
    resolved = [c for c in answer.citations if not _unresolved(c, artifacts, known)]
    quoted = {term for citation in resolved for term in terms(citation.quote)}
    claims = [t for t in terms(answer.text) if t not in set(terms(question.text))]
    covered = _share(quoted, claims) if resolved else 0.0
    score = round(len(resolved) / len(answer.citations) * covered, 4)
    why = "; ".join(failures) or f"quotes cover {covered:.0%} of the answer's claims"
    return score, why


def _unresolved(
    citation: Citation, artifacts: Mapping[str, object], frames: Mapping[str, str]
) -> str:
    """Why ``citation`` does not resolve, or ``""`` when it does."""
    quote = _flat(citation.quote)
    if not quote:
        return "a citation has an empty quote"
    if citation.frame:
        found = [frames[citation.frame]] if citation.frame in frames else []
        where = f"frame {citation.frame[:12]}"
    elif citation.artifact not in artifacts:
        return f"no artifact {citation.artifact!r}"
    else:
        try:
            place = resolve_path(artifacts[citation.artifact], citation.path)
        except LookupError:
            return f"{citation.artifact} has nothing at {citation.path!r}"
        found = [leaf["text"] for leaf in leaves(place)]
        where = f"{citation.artifact} {citation.path or '(root)'}"
    if not found:
        return f"unknown {where}"
    return "" if any(quote in _flat(text) for text in found) else f"quote not found at {where}"


def _flat(text: str) -> str:
    """Normalised for quoting, with digit groups joined ("5,000" and "5000" match)."""
    return re.sub(r"(?<=\d),(?=\d{3})", "", normalise(text))


def _completeness(
    question: Question, answer: Answer, artifacts: Mapping[str, object]
) -> tuple[float, str]:
    topic = key_terms({"topic": question.topic}, artifacts)
    key = key_terms({"topic": question.topic, "text": question.text}, artifacts)
    said = set(terms(answer.text))
    score = 0.5 * _share(said, topic) + 0.5 * _share(said, key) if topic else _share(said, key)
    missing = [t for t in key if t not in said]
    return round(score, 4), f"the answer does not address {', '.join(missing) or 'the topic'}"


def _specificity(answer: Answer, vocabulary: Collection[str]) -> tuple[float, str]:
    said = terms(answer.text)
    if not said:
        return 0.0, "the answer says nothing"
    names = {stem(word.lower()) for word in _CAPITALISED.findall(answer.text)}
    specific = [t for t in said if t in vocabulary or t in names or any(c.isdigit() for c in t)]
    filler = [t for t in said if t in _FILLER]
    score = 0.4 + 1.2 * len(specific) / len(said) - len(filler) / len(said)
    why = f"{len(specific)} of {len(said)} terms are specific to the idea"
    if filler:
        why += f"; stock words: {', '.join(filler)}"
    return round(min(1.0, max(0.0, score)), 4), why


def _consistency(
    question: Question,
    answer: Answer,
    artifacts: Mapping[str, object],
    accepted: Sequence[tuple[Question, Answer]],
) -> tuple[float, str]:
    cited = {c.artifact for c in answer.citations if c.artifact in artifacts}
    known: dict[str, set[float]] = {}
    for name in sorted(cited):
        for unit, values in _artifact_quantities(artifacts[name]).items():
            known.setdefault(unit, set()).update(values)
    conflicts = _conflicts(answer.text, known, "the cited artifacts")
    topic = set(terms(question.topic))
    for earlier, said in accepted:
        if topic & set(terms(earlier.topic)):
            given: dict[str, set[float]] = {}
            for value, unit in quantities(said.text):
                given.setdefault(unit, set()).add(value)
            conflicts += _conflicts(answer.text, given, f"the accepted answer to {earlier.id}")
    score = max(0.0, 1.0 - CONFLICT_PENALTY * len(conflicts))
    return round(score, 4), "; ".join(conflicts)


def _conflicts(text: str, known: Mapping[str, set[float]], where: str) -> list[str]:
    return [
        f"{value:g} {unit} conflicts with {where} ({', '.join(map(_g, sorted(known[unit])))})"
        for value, unit in dict.fromkeys(quantities(text))
        if unit in known and not any(abs(value - v) < 1e-9 for v in known[unit])
    ]


def _g(value: float) -> str:
    return f"{value:g}"


def _artifact_quantities(content: object) -> dict[str, set[float]]:
    """Quantities in an artifact's texts, plus numbers under unit-named keys (``timeline_days``
    → days, ``budget_usd`` → usd)."""
    found: dict[str, set[float]] = {}
    for leaf in leaves(content):
        pairs = quantities(leaf["text"])
        key = re.findall(r"[A-Za-z]+", leaf["path"].rsplit(".", 1)[-1].split("[")[0])
        if _is_number(leaf["text"]) and len(key) > 1 and terms(key[-1]):
            pairs.append((float(leaf["text"]), stem(key[-1].lower())))
        for value, unit in pairs:
            found.setdefault(unit, set()).add(value)
    return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
