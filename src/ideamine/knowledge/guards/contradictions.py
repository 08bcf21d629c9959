"""contradictions: statements across the artifacts that cannot all be true.

Deterministic findings, over this attempt's artifacts and the earlier phases' (see
:mod:`~ideamine.knowledge.guards.quantities` and :mod:`~ideamine.knowledge.guards.references`):

* the same quantity stated with different values (budget, timeline, p95 latency, throughput,
  compliance regimes), each reason naming every location and what it says;
* references to records that do not exist (a story's persona, a requirement's stories, an RTM
  row's requirements, NFRs and success criteria, a flow's stories);
* an item both in and out of scope; a requirement whose priority differs from its stories'.

When ``given.judge`` is set (a real model is configured) and ``judge`` is not turned off in the
config, the model is asked for the contradictions the rules cannot see. The judge fails
CLOSED: an exception or a reply that is not ``{"contradictions": [{"description": …}, …]}``
fails the guard (severity high, score 0); it never passes.

Passes when the number of contradictions is at most ``max`` (0, SPEC §1). Rubric
``consistency`` scores max(0, 1 − found / (max + 1)): one past the limit scores 0. Each finding
is an issue of kind ``contradictions`` (the gate re-runs with a stricter prompt and the
findings attached).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ideamine.errors import BudgetExceededError
from ideamine.knowledge.guards.base import GuardInput, GuardReport, Issue
from ideamine.knowledge.guards.quantities import LABELS, Fact, facts
from ideamine.knowledge.guards.reading import pool
from ideamine.knowledge.guards.references import dangling, scope_conflicts
from ideamine.knowledge.guards.settings import COUNT, FLAG, settings

__all__ = ["JUDGE_INSTRUCTION", "Contradictions", "conflicting_facts"]

KEYS = {"max": COUNT, "judge": FLAG}
JUDGE_INSTRUCTION = (
    "You check a software product's planning artifacts for contradictions: pairs of "
    "statements that cannot both be true (two values for the same quantity, an item both in "
    "and out of scope, a reference to something that is not defined, a plan that breaks a "
    "stated constraint). `artifacts` are this phase's, `upstream` the earlier phases', "
    "`found` what rule-based checks already reported (do not repeat those). Reply with JSON "
    'only: {"contradictions": [{"description": "…", "locations": ["Artifact.path", …]}]} '
    "with an empty list when there are none."
)


class _JudgeFailure(Exception):
    """The model judge raised or replied with something unusable (internal: always turned
    into a failing report, never raised out of the guard)."""


@dataclass(slots=True)
class Contradictions:
    """The contradictions guard (async: it may ask the model judge)."""

    type: str = "contradictions"

    async def check(self, given: GuardInput) -> GuardReport:
        """Rules first, then the model judge when one is configured; see the module doc."""
        cfg = settings(self.type, given.config, KEYS)
        limit = cfg.count("max", 0)
        known = pool(given.artifacts, given.upstream)
        found, checked = _deterministic(known)
        if given.judge is None or not cfg.flag("judge", True):
            return _report(found, limit, checked, judged=None)
        try:
            judged = await _ask(given, found)
        except _JudgeFailure as failure:
            return _closed(found, str(failure))
        return _report(found + judged, limit, checked, judged=len(judged))


def conflicting_facts(stated: Sequence[Fact]) -> list[str]:
    """One sentence per quantity stated with different values, naming every statement."""
    by_quantity: dict[str, list[Fact]] = {}
    for fact in stated:
        by_quantity.setdefault(fact.quantity, []).append(fact)
    problems = []
    for quantity, group in by_quantity.items():
        values: dict[object, Fact] = {}
        for fact in group:
            values.setdefault(_key(fact.value), fact)
        if len(values) > 1:
            said = "; ".join(f"{f.where} says {f.said!r}" for f in values.values())
            problems.append(f"{LABELS[quantity]} is stated {len(values)} ways: {said}")
    return problems


def _deterministic(known: Mapping[str, Any]) -> tuple[list[str], str]:
    stated = facts(known)
    refs, resolved = dangling(known)
    scope, compared = scope_conflicts(known)
    summary = (
        f"compared {len(stated)} stated quantities, resolved {resolved} references and "
        f"{compared} scope and priority pairs"
    )
    return conflicting_facts(stated) + refs + scope, summary


async def _ask(given: GuardInput, found: list[str]) -> list[str]:
    """The judge's extra findings; raises _JudgeFailure, never returns a pass by default."""
    assert given.judge is not None
    payload = {
        "phase": given.phase,
        "artifacts": dict(given.artifacts),
        "upstream": dict(given.upstream),
        "found": found,
    }
    try:
        verdict = await given.judge(JUDGE_INSTRUCTION, payload)
    except BudgetExceededError:
        raise  # not the judge failing: the run pauses before the call (its task is handed back)
    except Exception as exc:  # any failure of the judge fails closed
        raise _JudgeFailure(f"the model judge failed ({type(exc).__name__}: {exc})") from exc
    return _parse(verdict)


def _parse(verdict: object) -> list[str]:
    items = verdict.get("contradictions") if isinstance(verdict, Mapping) else None
    if not isinstance(items, list):
        raise _JudgeFailure(
            f"the model judge replied without a contradictions list: {verdict!r:.200}"
        )
    found = []
    for item in items:
        text = item.get("description") if isinstance(item, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            raise _JudgeFailure(
                f"the model judge gave a finding without a description: {item!r:.200}"
            )
        where = item.get("locations")
        places = [str(p) for p in where] if isinstance(where, list) else []
        found.append(f"model judge: {text.strip()}" + (f" ({', '.join(places)})" if places else ""))
    return found


def _report(found: list[str], limit: int, checked: str, *, judged: int | None) -> GuardReport:
    passed = len(found) <= limit
    score = max(0.0, 1.0 - len(found) / (limit + 1))
    judge = "" if judged is None else f"; the model judge found {judged} more"
    head = (
        f"{len(found)} contradiction(s), limit {limit}: {checked}{judge}"
        if passed
        else f"{len(found)} contradiction(s), more than the limit {limit} ({checked}{judge})"
    )
    issues = (
        ()
        if passed
        else tuple(
            Issue(kind="contradictions", severity="high", description=text) for text in found
        )
    )
    return GuardReport(
        type="contradictions",
        passed=passed,
        score=score,
        reasons=(head, *found),
        severity="low" if passed else "high",
        scores={"consistency": score},
        issues=issues,
    )


def _closed(found: list[str], why: str) -> GuardReport:
    """Fail closed: the judge could not rule contradictions out."""
    text = f"{why}: contradictions cannot be ruled out, so the guard fails closed"
    return GuardReport(
        type="contradictions",
        passed=False,
        score=0.0,
        reasons=(text, *found),
        severity="high",
        scores={"consistency": 0.0},
        issues=(Issue(kind="contradictions", severity="high", description=text),),
    )


def _key(value: float | frozenset[str]) -> object:
    return round(value, 6) if isinstance(value, float) else value
