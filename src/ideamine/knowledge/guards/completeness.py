"""completeness: the phase's required fields are present and say something.

A field is looked up across the phase's artifacts: ``aliases`` may map it to a path whose first
segment is an artifact type (``api_design: OpenAPI.paths``); otherwise the first artifact (in
type order) holding the dotted path wins; otherwise an artifact whose type in snake case is
the field (``user_stories`` → ``UserStories``) stands for it. A found value is *thin* when it is
null, blank, a placeholder (``TBD``), a string under ``min_chars`` characters (or under
``min_words[field]`` words), a list with fewer than ``min_items`` substantive elements, or an
object with nothing in it (see :func:`~ideamine.knowledge.guards.reading.thinness`).

Each field scores 1 (substantive), 0.5 (thin) or 0 (missing); the guard passes when the mean
reaches ``min_score`` (default 1: every field present and substantive) and feeds rubric
``completeness``. A short field is an issue of kind ``coverage`` naming the agents that
produce the artifact it belongs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.reading import at, snake, thinness, word_count
from ideamine.knowledge.guards.settings import COUNT, NAMES, NUMBER, TABLE, Settings, settings
from ideamine.knowledge.guards.verdict import Check, scored

__all__ = ["FIELD_KEYS", "FieldRules", "check_completeness", "field_checks", "locate"]

FIELD_KEYS = {
    "fields": NAMES,
    "aliases": TABLE,
    "min_chars": COUNT,
    "min_items": COUNT,
    "min_words": TABLE,
    "min_score": NUMBER,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRules:
    """How fields are found and when they are thin."""

    fields: tuple[str, ...]
    aliases: Mapping[str, Any]
    min_chars: int
    min_items: int
    min_words: Mapping[str, Any]

    @classmethod
    def read(cls, cfg: Settings) -> FieldRules:
        """From a guard's config (``fields`` is required)."""
        return cls(
            fields=cfg.names("fields"),
            aliases=cfg.table("aliases"),
            min_chars=cfg.count("min_chars", 5),
            min_items=cfg.count("min_items", 1),
            min_words=cfg.table("min_words"),
        )


def check_completeness(given: GuardInput) -> GuardReport:
    """The completeness guard."""
    cfg = settings("completeness", given.config, FIELD_KEYS)
    checks, agents = field_checks(given, FieldRules.read(cfg))
    return scored(
        "completeness",
        checks,
        rubrics=("completeness",),
        min_score=cfg.number("min_score", 1.0),
        severity="high" if any(c.score == 0 for c in checks) else "medium",
        kind="coverage",
        missing_agents=agents,
    )


def field_checks(given: GuardInput, rules: FieldRules) -> tuple[list[Check], tuple[str, ...]]:
    """One check per required field, and the agents producing the short ones."""
    checks: list[Check] = []
    agents: list[str] = []
    for name in rules.fields:
        check, home = _field(given, name, rules)
        checks.append(check)
        if check.score < 1:
            for type_ in home or _absent(given):
                agents.extend(a for a in given.producers.get(type_, ()) if a not in agents)
    return checks, tuple(agents)


def _field(given: GuardInput, name: str, rules: FieldRules) -> tuple[Check, tuple[str, ...]]:
    """The check of one field and the artifact type(s) it belongs in, if known."""
    found = locate(given.artifacts, name, rules.aliases)
    home = _home(given, str(rules.aliases.get(name, name)), found)
    if found is None:
        where = f" (expected at {rules.aliases[name]})" if name in rules.aliases else ""
        return Check(name=name, score=0.0, problem=f"field {name} is missing{where}"), home
    where, value = found
    why = thinness(value, min_chars=rules.min_chars, min_items=rules.min_items)
    words = rules.min_words.get(name)
    if why is None and isinstance(value, str) and isinstance(words, int):
        count = word_count(value)
        why = f"has {count} words, fewer than {words}" if count < words else None
    if why is not None:
        return Check(name=name, score=0.5, problem=f"field {name} ({where}) {why}"), home
    return Check(name=name, score=1.0, note=f"{name} ({where})"), home


def locate(
    artifacts: Mapping[str, Any], name: str, aliases: Mapping[str, Any]
) -> tuple[str, Any] | None:
    """``(location, value)`` of field ``name`` across ``artifacts``, or None."""
    path = str(aliases.get(name, name))
    head, _, rest = path.partition(".")
    if head in artifacts:
        value = at(artifacts[head], rest) if rest else artifacts[head]
        return None if value is None else (path, value)
    for type_ in sorted(artifacts):
        value = at(artifacts[type_], path)
        if value is not None:
            return f"{type_}.{path}", value
    for type_ in sorted(artifacts):
        if snake(type_) == path:
            return type_, artifacts[type_]
    return None


def _home(given: GuardInput, path: str, found: tuple[str, Any] | None) -> tuple[str, ...]:
    """The artifact type a field belongs in: where it was found, the type its alias names,
    or the type named like it; empty when unknown."""
    if found is not None:
        return (found[0].split(".", 1)[0].split("[", 1)[0],)
    head = path.split(".", 1)[0]
    known = sorted({*given.artifacts, *given.producers})
    if head in known:
        return (head,)
    return tuple(t for t in known if snake(t) == head)


def _absent(given: GuardInput) -> tuple[str, ...]:
    """Artifact types this phase's agents should have produced but did not."""
    return tuple(t for t in sorted(given.producers) if t not in given.artifacts)
