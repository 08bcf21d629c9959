"""coverage (prd): enough of each kind of requirement, and every story traced.

Each ``min_<name>`` key of the config sets a minimum count of records of one kind:

=================  ==========================
key                counts
=================  ==========================
min_stories        UserStories.stories
min_nfrs           NFRs.nfrs
min_requirements   PRD.requirements
min_ux_flows       UXFlows.ux_flows
min_personas       Personas.personas
=================  ==========================

and, when the phase produces an RTM (``trace``, default true), the share of stories that have
a row in RTM.traceability_matrix. The score is the mean of each count over its minimum (capped
at 1) and that share; the guard passes when every minimum is met and every story is traced.
Feeds rubric ``coverage``. A short kind is an issue of kind ``coverage`` whose
``missing_agents`` are this phase's producers of that artifact type.
"""

from __future__ import annotations

from collections.abc import Mapping

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.reading import listed, pool, records
from ideamine.knowledge.guards.settings import COUNT, FLAG, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["COUNTED", "check_coverage"]

COUNTED: Mapping[str, tuple[str, str]] = {
    "stories": ("UserStories", "stories"),
    "nfrs": ("NFRs", "nfrs"),
    "requirements": ("PRD", "requirements"),
    "ux_flows": ("UXFlows", "ux_flows"),
    "personas": ("Personas", "personas"),
}
DEFAULTS = {"stories": 5, "nfrs": 3}
KEYS = {**{f"min_{name}": COUNT for name in COUNTED}, "trace": FLAG}


def check_coverage(given: GuardInput) -> GuardReport:
    """The coverage guard."""
    cfg = settings("coverage", given.config, KEYS)
    known = pool(given.artifacts, given.upstream)
    checks: list[Check] = []
    short: list[str] = []
    for name, (type_, key) in COUNTED.items():
        if f"min_{name}" not in given.config and name not in DEFAULTS:
            continue
        need = cfg.count(f"min_{name}", DEFAULTS.get(name, 0))
        have = len(records(known.get(type_), key))
        checks.append(_count(name, type_, key, have, need))
        short += [type_] if have < need else []
    if cfg.flag("trace", True) and "RTM" in given.artifacts:
        checks.append(_traced(known))
        short += ["RTM"] if checks[-1].score < 1 else []
    agents = tuple(dict.fromkeys(a for t in short for a in given.producers.get(t, ())))
    return scored(
        "coverage",
        checks,
        rubrics=("coverage",),
        min_score=1.0,
        severity="medium",
        kind="coverage",
        missing_agents=agents,
    )


def _count(name: str, type_: str, key: str, have: int, need: int) -> Check:
    return Check(
        name=name,
        score=fraction(have, need) if need else 1.0,
        problem=f"{type_}.{key} has {have} {name}, fewer than {need}" if have < need else "",
        note=f"{have} {name} (minimum {need})",
    )


def _traced(known: Mapping[str, object]) -> Check:
    stories = [str(s) for s in listed(known.get("UserStories"), "stories[].id")]
    traced = {str(s) for s in listed(known.get("RTM"), "traceability_matrix[].story_id")}
    untraced = [s for s in stories if s not in traced]
    if not stories:
        return Check(name="traced", score=0.0, problem="there are no user stories to trace")
    return Check(
        name="traced",
        score=fraction(len(stories) - len(untraced), len(stories)),
        problem=f"{len(untraced)} of {len(stories)} stories have no RTM row: {shown(untraced)}"
        if untraced
        else "",
        note=f"all {len(stories)} stories traced in the RTM",
    )
