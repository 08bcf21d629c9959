"""Cross-artifact references and scope: ids that point at nothing, and items said both ways.

:data:`REFERENCES` lists which fields refer to which records (a story's persona, a
requirement's stories, an RTM row's requirements, NFRs and success criteria, a flow's stories).
A rule is checked only when both artifacts are at hand. :func:`scope_conflicts` finds an item
both in and out of scope, and a requirement whose priority differs from its stories'.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ideamine.knowledge.guards.reading import listed, records, walk

__all__ = ["REFERENCES", "Reference", "dangling", "scope_conflicts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """Values at ``source.path`` must be among the values at ``target.key``."""

    source: str
    path: str
    target: str
    key: str
    noun: str


_TABLE = (
    # source, path of the referring values, target, path of the ids, what they name
    ("UserStories", "stories[].persona_id", "Personas", "personas[].id", "persona"),
    ("UserStories", "stories[].persona", "Personas", "personas[].name", "persona"),
    ("UserStories", "stories[].feature_id", "IdeationResult", "features[].id", "feature"),
    ("PRD", "requirements[].story_ids[]", "UserStories", "stories[].id", "user story"),
    ("PRD", "personas[]", "Personas", "personas[].name", "persona"),
    ("PRD", "risks[]", "RiskRegister", "risks[].id", "risk"),
    ("PRD", "assumptions_to_validate[]", "RevisedAssumptions", "assumptions[].id", "assumption"),
    ("RTM", "traceability_matrix[].story_id", "UserStories", "stories[].id", "user story"),
    ("RTM", "traceability_matrix[].requirement_ids[]", "PRD", "requirements[].id", "requirement"),
    ("RTM", "traceability_matrix[].nfr_ids[]", "NFRs", "nfrs[].id", "NFR"),
    (
        "RTM",
        "traceability_matrix[].success_criteria_ids[]",
        "PRD",
        "success_criteria[].id",
        "success criterion",
    ),
    ("UXFlows", "ux_flows[].story_ids[]", "UserStories", "stories[].id", "user story"),
    ("UXFlows", "screens[].story_ids[]", "UserStories", "stories[].id", "user story"),
    ("UXFlows", "ux_flows[].persona", "Personas", "personas[].name", "persona"),
)
REFERENCES: tuple[Reference, ...] = tuple(
    Reference(source=source, path=path, target=target, key=key, noun=noun)
    for source, path, target, key, noun in _TABLE
)


def dangling(known: Mapping[str, Any]) -> tuple[list[str], int]:
    """Sentences naming each reference to nothing, and how many references were checked."""
    problems: list[str] = []
    checked = 0
    for rule in REFERENCES:
        if rule.source not in known or rule.target not in known:
            continue
        ids = {str(v) for v in listed(known[rule.target], rule.key)}
        for where, value in walk(known[rule.source], rule.path, rule.source):
            checked += 1
            if str(value) not in ids:
                problems.append(
                    f"{where} refers to {rule.noun} {str(value)!r}, which {rule.target} "
                    f"does not define"
                )
    return problems, checked


def scope_conflicts(known: Mapping[str, Any]) -> tuple[list[str], int]:
    """Items both in and out of scope, and requirements whose priority differs from their
    stories'; with the number of comparisons made."""
    prd = known.get("PRD")
    if not isinstance(prd, Mapping):
        return [], 0
    problems = list(_in_and_out(prd))
    priorities, compared = _priorities(prd, known.get("UserStories"))
    return problems + priorities, compared + len(listed(prd, "scope.in_scope[]"))


def _in_and_out(prd: Mapping[str, Any]) -> Iterator[str]:
    excluded = {_norm(str(item)): str(item) for item in listed(prd, "scope.out_of_scope[]")}
    included = [("PRD.scope.in_scope", str(i)) for i in listed(prd, "scope.in_scope[]")]
    included += [
        (f"PRD.requirements {r.get('id', '?')}", str(r.get("title", "")))
        for r in records(prd, "requirements")
    ]
    seen: set[str] = set()
    for where, item in included:
        if _norm(item) in excluded and _norm(item) not in seen:
            seen.add(_norm(item))
            yield f"{item!r} is in scope ({where}) and out of scope (PRD.scope.out_of_scope)"


def _priorities(prd: Mapping[str, Any], stories: object) -> tuple[list[str], int]:
    by_id = {str(s.get("id")): s for s in records(stories, "stories")}
    problems: list[str] = []
    compared = 0
    for requirement in records(prd, "requirements"):
        wanted = str(requirement.get("priority", "")).lower()
        for story_id in requirement.get("story_ids") or ():
            story = by_id.get(str(story_id))
            if story is None or not wanted or "priority" not in story:
                continue
            compared += 1
            if str(story["priority"]).lower() != wanted:
                problems.append(
                    f"requirement {requirement.get('id', '?')} is {wanted!r} but its story "
                    f"{story_id} is {str(story['priority']).lower()!r}"
                )
    return problems, compared


def _norm(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()
