"""feasibility (ideation): can this team build what ideation proposes, in the time given?

The mean of five measured checks over TechStackProposal, IdeationResult and the upstream
IdeaSpec:

* stack layers: the share of ``layers`` (backend, database, frontend, infrastructure,
  testing) that ``tech_stack`` fills with something substantive;
* pinned dependencies: the share of ``dependencies`` with an exact version (``1.2.3``);
* scope fits the timeline: capacity ``timeline_days / days_per_feature`` over the number of
  must-have features (capped at 1);
* preferences honoured: the share of the IdeaSpec's ``tech_preferences`` that the proposal
  mentions (1 when there are none);
* rationale: the stack is argued (at least one substantive ``rationale`` entry).

Passes at ``min_score`` (0.7, SPEC §1); feeds rubric ``feasibility``. A failure is an issue of
kind ``scope`` when the features do not fit the timeline (the gate then cuts smaller chunks),
else ``quality``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.reading import at, is_number, pool, records, thinness
from ideamine.knowledge.guards.settings import NAMES, NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["check_feasibility"]

KEYS = {"min_score": NUMBER, "layers": NAMES, "days_per_feature": NUMBER}
LAYERS = ("backend", "database", "frontend", "infrastructure", "testing")
_PINNED = re.compile(r"^\d+(\.\d+)*([-+.]?[0-9A-Za-z.]+)?$")


def check_feasibility(given: GuardInput) -> GuardReport:
    """The feasibility guard."""
    cfg = settings("feasibility", given.config, KEYS)
    known = pool(given.artifacts, given.upstream)
    stack = _mapping(known.get("TechStackProposal"))
    ideas = _mapping(known.get("IdeationResult"))
    spec = _mapping(known.get("IdeaSpec"))
    checks = [
        _layers(stack, cfg.names("layers", LAYERS)),
        _pinned(stack),
        _scope(ideas, spec, cfg.number("days_per_feature", 5)),
        _preferences(stack, spec),
        _rationale(stack),
    ]
    return scored(
        "feasibility",
        checks,
        rubrics=("feasibility",),
        min_score=cfg.number("min_score", 0.7),
        severity="medium",
        kind="scope" if checks[2].score < 1 else "quality",
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _layers(stack: Mapping[str, Any], layers: tuple[str, ...]) -> Check:
    chosen = _mapping(stack.get("tech_stack"))
    empty = [name for name in layers if thinness(chosen.get(name), min_chars=3, min_items=1)]
    return Check(
        name="layers",
        score=fraction(len(layers) - len(empty), len(layers)),
        problem=f"tech_stack leaves {len(empty)} of {len(layers)} layers open: {shown(empty)}"
        if empty
        else "",
        note=f"{len(layers)} stack layers chosen",
    )


def _pinned(stack: Mapping[str, Any]) -> Check:
    deps = records(stack, "dependencies")
    loose = [
        f"{d.get('name', '?')} {d.get('version', '(no version)')}"
        for d in deps
        if not _PINNED.match(str(d.get("version", "")))
    ]
    if not deps:
        return Check(name="pinned", score=0.0, problem="TechStackProposal lists no dependencies")
    return Check(
        name="pinned",
        score=fraction(len(deps) - len(loose), len(deps)),
        problem=f"{len(loose)} of {len(deps)} dependencies are not pinned: {shown(loose)}"
        if loose
        else "",
        note=f"{len(deps)} dependencies pinned",
    )


def _scope(ideas: Mapping[str, Any], spec: Mapping[str, Any], per_feature: float) -> Check:
    features = records(ideas, "features")
    musts = [f for f in features if str(f.get("priority", "")).lower() == "must"]
    days = at(spec, "constraints.timeline_days")
    if not features:
        return Check(name="scope", score=0.0, problem="IdeationResult lists no features")
    if not is_number(days) or per_feature <= 0:
        return Check(name="scope", score=1.0, note="no timeline to fit")
    capacity = float(days) / per_feature
    score = min(1.0, capacity / len(musts)) if musts else 1.0
    problem = (
        f"{len(musts)} must-have features do not fit {days} days at {per_feature:g} days each "
        f"(capacity {capacity:.1f})"
        if score < 1
        else ""
    )
    note = f"{len(musts)} must-have features fit {days} days"
    return Check(name="scope", score=score, problem=problem, note=note)


def _preferences(stack: Mapping[str, Any], spec: Mapping[str, Any]) -> Check:
    wanted = [str(p) for p in at(spec, "constraints.tech_preferences") or () if str(p).strip()]
    text = json.dumps(stack, ensure_ascii=False).lower()
    ignored = [p for p in wanted if p.lower() not in text]
    return Check(
        name="preferences",
        score=1.0 if not wanted else fraction(len(wanted) - len(ignored), len(wanted)),
        problem=f"technology preferences not reflected in the proposal: {shown(ignored)}"
        if ignored
        else "",
    )


def _rationale(stack: Mapping[str, Any]) -> Check:
    reasons = stack.get("rationale")
    why = thinness(reasons, min_chars=20, min_items=1)
    if why is None:
        return Check(name="rationale", score=1.0)
    return Check(name="rationale", score=0.0, problem=f"TechStackProposal.rationale {why}")
