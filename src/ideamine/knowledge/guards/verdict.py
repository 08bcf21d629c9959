"""Building reports: checks scored 0–1, averaged, compared with a threshold, and explained.

Most content guards are a handful of :class:`Check` values, each scored from the content with
a sentence saying what falls short; :func:`scored` averages them into one report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ideamine.knowledge.guards.base import GuardReport, Issue, Severity

__all__ = ["Check", "fraction", "mean", "report", "scored", "shown", "worst"]

EPSILON = 1e-9
SHOWN = 5  # items named in one reason before "and N more"

_RANK: Mapping[Severity, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One measured aspect: ``score`` 0–1, ``problem`` says why it is below 1 (or is empty),
    ``note`` says what was measured when it holds; ``weight`` is its share of the mean."""

    name: str
    score: float
    problem: str = ""
    note: str = ""
    weight: float = 1.0


def fraction(part: float, whole: float) -> float:
    """``part / whole`` clamped to 0–1; 0 when there is no whole."""
    if whole <= 0:
        return 0.0
    return max(0.0, min(1.0, part / whole))


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean, 0 for nothing."""
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def worst(severities: Iterable[Severity], default: Severity = "low") -> Severity:
    """The most severe of ``severities``."""
    return max(severities, key=lambda s: _RANK[s], default=default)


def shown(items: Sequence[str], limit: int = SHOWN) -> str:
    """``a, b, c and 4 more``: a list short enough for a reason."""
    head = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{head} and {rest} more" if rest > 0 else head


def scored(
    type_: str,
    checks: Sequence[Check],
    *,
    rubrics: Sequence[str],
    min_score: float,
    severity: Severity,
    kind: str,
    missing_agents: tuple[str, ...] = (),
    also_failed: bool = False,
) -> GuardReport:
    """A report whose score is the weighted mean of ``checks``, passing at ``min_score``.

    ``rubrics`` receive that score; a failure has ``severity`` and one issue of ``kind``
    listing every problem. ``also_failed`` fails the report whatever the score (a hard rule
    such as a minimum count was broken).
    """
    total = sum(c.weight for c in checks)
    score = sum(c.weight * c.score for c in checks) / total if total > 0 else 0.0
    passed = score >= min_score - EPSILON and not also_failed
    problems = [c.problem for c in checks if c.problem]
    verdict = "meets" if passed else "is below" if score < min_score - EPSILON else "reaches"
    head = f"{type_} score {score:.2f} {verdict} the minimum {min_score:.2f}"
    notes = [c.note for c in checks if c.note and not c.problem]
    return report(
        type_,
        passed=passed,
        score=score,
        reasons=[head + (": " + "; ".join(notes) if notes and not problems else ""), *problems],
        scores={rubric: score for rubric in rubrics},
        kind=kind,
        severity=severity,
        missing_agents=missing_agents,
        problems=problems,
    )


def report(
    type_: str,
    *,
    passed: bool,
    score: float,
    reasons: Sequence[str],
    scores: Mapping[str, float],
    kind: str,
    severity: Severity,
    missing_agents: tuple[str, ...] = (),
    problems: Sequence[str] | None = None,
    waivable: bool = True,
) -> GuardReport:
    """A report that, when failing, carries one issue of ``kind`` and ``severity`` describing
    ``problems`` (all the reasons by default); a passing report has severity low."""
    text = "; ".join(reasons if problems is None else problems or reasons)
    issue = Issue(
        kind=kind,
        severity=severity,
        description=text,
        missing_agents=missing_agents,
        waivable=waivable,
    )
    return GuardReport(
        type=type_,
        passed=passed,
        score=score,
        reasons=tuple(reasons),
        severity="low" if passed else severity,
        scores=scores,
        issues=() if passed else (issue,),
    )
