"""clarity (intake): is the IdeaSpec precise enough to build from?

Four measured parts, weighted toward what makes a spec testable:

* success criteria are measurable (0.40): the share that state a number (a digit or a number
  word); none at all scores 0;
* no vague words (0.30): 1 − hits / statements over the description and the success criteria,
  with words such as *fast*, *easy*, *user-friendly*, *seamless*, *etc.* (``vague_words``);
* description length (0.20): ``min_description_words``–``max_description_words`` words, partial
  credit below;
* title length (0.10): ``min_title_chars``–``max_title_chars`` characters (SPEC §3: 5–200).

Passes at ``min_score`` (0.7, SPEC §1); feeds rubric ``clarity``; a failure is an issue of
kind ``ambiguity``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.reading import word_count
from ideamine.knowledge.guards.settings import COUNT, NAMES, NUMBER, TEXT, Settings, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["VAGUE_WORDS", "check_clarity"]

KEYS = {
    "artifact": TEXT,
    "min_score": NUMBER,
    "min_title_chars": COUNT,
    "max_title_chars": COUNT,
    "min_description_words": COUNT,
    "max_description_words": COUNT,
    "vague_words": NAMES,
}
WEIGHTS = {"measurable": 0.40, "vague": 0.30, "description": 0.20, "title": 0.10}

# Words that make a requirement untestable (after the INCOSE guide's list of vague terms).
VAGUE_WORDS = (
    "user-friendly",
    "easy",
    "easily",
    "intuitive",
    "seamless",
    "seamlessly",
    "fast",
    "quickly",
    "efficient",
    "robust",
    "flexible",
    "powerful",
    "modern",
    "state-of-the-art",
    "best",
    "optimal",
    "adequate",
    "sufficient",
    "appropriate",
    "reasonable",
    "various",
    "several",
    "many",
    "some",
    "etc",
    "and/or",
    "as needed",
    "as appropriate",
    "high-quality",
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundred|thousand"
    r"|half|twice|once|zero)\b",
    re.IGNORECASE,
)


def check_clarity(given: GuardInput) -> GuardReport:
    """The clarity guard."""
    cfg = settings("clarity", given.config, KEYS)
    name = cfg.text("artifact", "IdeaSpec")
    found = given.artifacts.get(name)
    spec: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    checks = [
        _measurable(spec),
        _vagueness(spec, cfg.names("vague_words", VAGUE_WORDS)),
        _description(spec, cfg),
        _title(spec, cfg),
    ]
    return scored(
        "clarity",
        [replace(c, weight=WEIGHTS[c.name]) for c in checks] + _missing(name, spec),
        rubrics=("clarity",),
        min_score=cfg.number("min_score", 0.7),
        severity="medium",
        kind="ambiguity",
        also_failed=not spec,
    )


def _missing(name: str, spec: Mapping[str, Any]) -> list[Check]:
    """A reason (with no weight: every part already scores 0) when the artifact is absent."""
    if spec:
        return []
    return [Check(name="missing", score=0.0, problem=f"artifact {name} is missing", weight=0.0)]


def _measurable(spec: Mapping[str, Any]) -> Check:
    criteria = [c for c in spec.get("success_criteria") or () if isinstance(c, str)]
    vague = [f"success_criteria[{i}]" for i, c in enumerate(criteria) if not _NUMBER.search(c)]
    score = fraction(len(criteria) - len(vague), len(criteria))
    if not criteria:
        return Check(name="measurable", score=0.0, problem="no success_criteria are stated")
    problem = (
        f"{len(vague)} of {len(criteria)} success criteria state no number to measure: "
        + shown(vague)
        if vague
        else ""
    )
    return Check(name="measurable", score=score, problem=problem)


def _vagueness(spec: Mapping[str, Any], words: Sequence[str]) -> Check:
    statements = [("description", spec.get("description"))] + [
        (f"success_criteria[{i}]", c) for i, c in enumerate(spec.get("success_criteria") or ())
    ]
    texts = [(where, text) for where, text in statements if isinstance(text, str)]
    hits = [f"{where} uses {word!r}" for where, text in texts for word in _vague_in(text, words)]
    score = max(0.0, 1.0 - len(hits) / max(1, len(texts)))
    problem = f"{len(hits)} vague word(s): {shown(hits)}" if hits else ""
    return Check(name="vague", score=score, problem=problem)


def _vague_in(text: str, words: Sequence[str]) -> list[str]:
    lowered = text.lower()
    return [w for w in words if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", lowered)]


def _description(spec: Mapping[str, Any], cfg: Settings) -> Check:
    text = spec.get("description")
    words = word_count(text) if isinstance(text, str) else 0
    low = cfg.count("min_description_words", 10)
    high = cfg.count("max_description_words", 300)
    if words > high:
        return Check(
            name="description",
            score=fraction(high, words),
            problem=f"description has {words} words, more than {high}",
        )
    score = fraction(words, low)
    problem = f"description has {words} words, fewer than {low}" if words < low else ""
    return Check(name="description", score=score, problem=problem)


def _title(spec: Mapping[str, Any], cfg: Settings) -> Check:
    title = spec.get("title")
    chars = len(title.strip()) if isinstance(title, str) else 0
    low = cfg.count("min_title_chars", 5)
    high = cfg.count("max_title_chars", 200)
    if low <= chars <= high:
        return Check(name="title", score=1.0)
    return Check(
        name="title",
        score=fraction(chars, low) if chars < low else fraction(high, chars),
        problem=f"title has {chars} characters, outside {low}–{high}",
    )
