"""Tool evidence (docs/evidence.md): is a report's section measured, and what to report if not.

A section counts as evidence only when it carries an ``evidence`` envelope whose ``executed``
is true and ``timed_out`` is not, and it is not marked ``measured: false``. Anything less is
*no evidence*: the guard fails with severity ``high`` and says why, never passes (DESIGN.md
invariant 7). An *evidence gap* is different: the evidence cannot be produced here at all
(no advisory source, nothing deployed); it passes with a warning unless ``strict_evidence``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport, Issue

__all__ = ["evidence_gap", "no_evidence", "unmeasured"]


def unmeasured(section: object, where: str) -> str | None:
    """Why ``section`` (at location ``where``) is not tool evidence, or None when it is."""
    if section is None:
        return f"{where} is missing"
    if not isinstance(section, Mapping):
        return f"{where} is not an object"
    if section.get("measured") is False:
        return f"{where} is marked measured: false{_because(section)}"
    return _envelope_problem(section, where)


def _envelope_problem(section: Mapping[str, Any], where: str) -> str | None:
    envelope = section.get("evidence")
    if not isinstance(envelope, Mapping):
        return f"{where} has no evidence envelope (no tool produced it){_because(section)}"
    if envelope.get("executed") is not True:
        return f"{where}: the tool {_tool(envelope)}did not run{_because(envelope)}"
    if envelope.get("timed_out") is True:
        return f"{where}: the tool {_tool(envelope)}timed out, so nothing was measured"
    return None


def no_evidence(type_: str, rubrics: Sequence[str], problems: Sequence[str]) -> GuardReport:
    """A failing report: the evidence this guard needs was not measured by a real tool."""
    text = "no evidence: " + "; ".join(problems)
    return GuardReport(
        type=type_,
        passed=False,
        score=0.0,
        reasons=(text,),
        severity="high",
        scores={rubric: 0.0 for rubric in rubrics},
        issues=(Issue(kind="evidence", severity="high", description=text),),
    )


def evidence_gap(
    type_: str,
    given: GuardInput,
    reason: str,
    *,
    scores: Mapping[str, float] | None = None,
    extra: Sequence[str] = (),
) -> GuardReport:
    """An evidence gap: a warning that passes, or a critical failure under strict evidence.

    ``scores`` are rubrics measured despite the gap (none by default: the gate leaves the
    rubric out and renormalises the others); ``score`` is their mean, 0 when nothing was
    measured.
    """
    strict = given.strict_evidence
    verdict = "fails under --strict-evidence" if strict else "passes with a warning"
    text = f"evidence gap ({verdict}): {reason}"
    issues = (Issue(kind="evidence", severity="critical", description=text),) if strict else ()
    return GuardReport(
        type=type_,
        passed=not strict,
        score=0.0 if strict or not scores else sum(scores.values()) / len(scores),
        reasons=(text, *extra),
        severity="critical" if strict else "low",
        scores=dict(scores or {}),
        issues=issues,
        evidence_gap=True,
    )


def _tool(envelope: Mapping[str, Any]) -> str:
    tool = envelope.get("tool")
    return f"{tool} " if isinstance(tool, str) and tool else ""


def _because(section: Mapping[str, Any]) -> str:
    reason = section.get("reason")
    return f" ({reason})" if isinstance(reason, str) and reason else ""
