"""The guard seam: what a guard is given, what it reports, and how to find one by type.

A guard checks one aspect of a phase attempt's artifacts (SPEC §1's table) and returns a
:class:`GuardReport`; the gate (``ideamine.engine.gate``) turns the reports into rubric scores
and auto-fix choices. Guards are pure functions of their :class:`GuardInput` (the optional
model judge aside): no I/O, no clock, the same input gives the same report.

Contract every guard keeps (tested for each one):

* thresholds come from ``given.config``; missing keys take SPEC §1's defaults; an unknown key
  or a value of the wrong type raises :class:`~ideamine.errors.UsageError`;
* ``score`` and ``scores`` are computed from the content, never constant;
* ``reasons`` are sentences naming fields, files and counts against limits;
* evidence only a real tool can give (tests, coverage, lint, CVEs, secrets, SBOM, acceptance,
  end-to-end, load and accessibility runs) is read only from a section whose ``evidence``
  envelope says ``executed: true`` (and not ``timed_out``); anything less is *no evidence*
  and fails with severity ``high``;
* evidence that cannot be produced here (no advisory source, nothing deployed) is an
  *evidence gap*: the report passes with a warning, or fails ``critical`` under
  ``strict_evidence``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from ideamine.errors import UsageError

__all__ = [
    "GUARD_TYPES",
    "ISSUE_KINDS",
    "Guard",
    "GuardInput",
    "GuardReport",
    "Issue",
    "Judge",
    "Severity",
    "guard_for",
]

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

ISSUE_KINDS = frozenset(
    {
        "coverage",
        "contradictions",
        "ambiguity",
        "grounding",
        "security",
        "scope",
        "evidence",
        "tests",
        "quality",
    }
)

Judge = Callable[[str, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
"""A model judge: ``await judge(instruction, payload)`` returns the model's JSON verdict."""

GUARD_TYPES = frozenset(
    {
        "completeness",
        "clarity",
        "feasibility",
        "risk_coverage",
        "assumption_validation",
        "contradictions",
        "coverage",
        "financial_viability",
        "scalability",
        "security",
        "compilation",
        "test_coverage",
        "lint",
        "cve_count",
        "secrets_detected",
        "sbom_completeness",
        "story_completion",
        "acceptance_tests",
        "test_pass_rate",
        "performance",
        "accessibility",
        "design_consistency",
        "responsive_design",
        "brand_compliance",
        "release_completeness",
        "version_validation",
        "deployment_health",
        "monitoring",
        "canary_validation",
        "schema",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    """One problem a failing guard found, which the gate maps to an auto-fix strategy.

    ``kind`` is one of :data:`ISSUE_KINDS`; ``missing_agents`` (kind ``coverage``) names the
    agents whose output is missing or thin; ``waivable`` is False for critical CVEs and
    secrets, which no person may waive (SPEC §5).
    """

    kind: str
    severity: Severity
    description: str
    missing_agents: tuple[str, ...] = ()
    waivable: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ISSUE_KINDS:
            raise ValueError(f"unknown issue kind {self.kind!r}; known: {sorted(ISSUE_KINDS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "description": self.description,
            "missing_agents": list(self.missing_agents),
            "waivable": self.waivable,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardReport:
    """What one guard found (SPEC §3 EvidencePack: type, pass, score, reasons, severity).

    ``severity`` says how bad a failure is (a failing ``critical`` report blocks the gate);
    ``scores`` maps each rubric this guard measures to its score; ``evidence_gap`` is True when
    the evidence it needs cannot be produced here.
    """

    type: str
    passed: bool
    score: float
    reasons: tuple[str, ...]
    severity: Severity
    scores: Mapping[str, float]
    issues: tuple[Issue, ...] = ()
    evidence_gap: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or math.isnan(self.score):
            raise ValueError(f"{self.type}: score {self.score} is outside 0–1")
        if any(not (0.0 <= value <= 1.0) for value in self.scores.values()):
            raise ValueError(f"{self.type}: a rubric score is outside 0–1: {dict(self.scores)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.type}: unknown severity {self.severity!r}")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, as the EvidencePack and the gate read it."""
        return {
            "type": self.type,
            "passed": self.passed,
            "score": round(self.score, 4),
            "reasons": list(self.reasons),
            "severity": self.severity,
            "scores": {name: round(value, 4) for name, value in sorted(self.scores.items())},
            "issues": [issue.as_dict() for issue in self.issues],
            "evidence_gap": self.evidence_gap,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardInput:
    """Everything a guard may look at.

    ``artifacts`` are this attempt's artifacts by type (content); ``upstream`` the artifacts of
    earlier phases by type; ``config`` the guard's ``config`` from the phase YAML;
    ``producers`` maps an artifact type to the agents of this phase that produce it;
    ``judge`` is set only when a real model is configured.
    """

    phase: str
    artifacts: Mapping[str, Any]
    upstream: Mapping[str, Any]
    config: Mapping[str, Any]
    producers: Mapping[str, tuple[str, ...]]
    strict_evidence: bool = False
    judge: Judge | None = None


class Guard(Protocol):
    """A check over a phase attempt's artifacts."""

    type: str

    async def check(self, given: GuardInput) -> GuardReport:
        """Judge ``given`` and report; the same input always gives the same report.

        Raises:
            UsageError: ``given.config`` has an unknown key or a value of the wrong type.
        """
        ...


def guard_for(type_: str) -> Guard:
    """The guard registered for ``type_`` (a phase YAML's ``guards[].type``).

    Raises:
        UsageError: no guard has that type; the message lists the known ones.
    """
    # Imported here: the guard modules import this one for the types above.
    from ideamine.knowledge.guards.registry import GUARDS  # noqa: PLC0415

    try:
        return GUARDS[type_]
    except KeyError:
        known = ", ".join(sorted(GUARD_TYPES))
        raise UsageError(
            f"unknown guard type {type_!r} (known: {known})",
            hint="fix guards[].type in the phase YAML",
        ) from None
