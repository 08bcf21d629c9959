"""schema: artifacts validate against JSON Schemas given in the guard's config.

The runtime already validates every agent output against the agent's ``output_schema`` and
every fanned-in artifact against its phase schema before storing it (SPEC §6;
``ideamine.runtime.artifacts``), so the shipped phases do not configure this guard. It is for
stricter, phase-level contracts: ``schemas`` maps an artifact type to a JSON Schema (draft
2020-12) that this attempt's artifact must satisfy, and ``required`` lists artifact types that
must be present. With neither, it checks nothing and says so.

The score is the share of configured types that are present and valid; it feeds no rubric.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.errors import UsageError
from ideamine.jsonschemas import Draft202012Validator, SchemaError
from ideamine.knowledge.guards.base import GuardInput, GuardReport, Issue
from ideamine.knowledge.guards.settings import NAMES, TABLE, settings
from ideamine.knowledge.guards.verdict import fraction, shown

__all__ = ["check_schema"]

KEYS = {"schemas": TABLE, "required": NAMES}
SHOWN_ERRORS = 3


def check_schema(given: GuardInput) -> GuardReport:
    """The schema guard."""
    cfg = settings("schema", given.config, KEYS)
    schemas = cfg.table("schemas")
    required = cfg.names("required", ())
    types = sorted({*schemas, *required})
    if not types:
        return GuardReport(
            type="schema",
            passed=True,
            score=1.0,
            reasons=("no schemas configured: the runtime validated every artifact at fan-in",),
            severity="low",
            scores={},
        )
    problems = [problem for t in types if (problem := _problem(t, given.artifacts, schemas))]
    score = fraction(len(types) - len(problems), len(types))
    head = f"{len(types) - len(problems)} of {len(types)} artifact types present and valid"
    issues = (
        ()
        if not problems
        else (Issue(kind="quality", severity="high", description="; ".join(problems)),)
    )
    return GuardReport(
        type="schema",
        passed=not problems,
        score=score,
        reasons=(head, *problems),
        severity="low" if not problems else "high",
        scores={},
        issues=issues,
    )


def _problem(type_: str, artifacts: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    """Why artifact ``type_`` fails its contract, or an empty string."""
    if type_ not in artifacts:
        return f"{type_} is missing"
    schema = schemas.get(type_)
    if schema is None:
        return ""
    try:
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        errors = sorted(
            validator.iter_errors(artifacts[type_]), key=lambda e: list(map(str, e.absolute_path))
        )
    except (SchemaError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"guard schema: the schema for {type_} is not a valid JSON Schema ({exc})",
            hint="fix `schemas` in the guard's config in the phase YAML",
        ) from exc
    shown_errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors
    ]
    return f"{type_} breaks its schema: {shown(shown_errors, SHOWN_ERRORS)}" if errors else ""
