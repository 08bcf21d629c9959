"""The release phase's guards: release_completeness and version_validation.

**release_completeness** measures two rubrics. ``completeness``: the configured ``fields``
(release_notes, deployment_plan, rollback_plan, documentation; found and judged thin as by
the completeness guard), plus release notes that list every user story, a rollback plan with
triggers and steps, and a deployment plan with steps and health checks. ``documentation``: a
README with a quick start, an API reference covering every OpenAPI operation, and operations
notes for deploy, monitoring and rollback. Passes when completeness reaches ``min_score`` (1)
and documentation reaches ``min_documentation`` (0.8).

**version_validation** collects every ``version`` of the phase's artifacts (top level and one
level down, e.g. ``ReleaseNotes.changelog.version``) and the changelog's first ``## [x.y.z]``
heading: each must be a valid semantic version (semver.org 2.0) and all must agree. Feeds
rubric ``completeness`` (a release without one valid version is not complete).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ideamine.errors import UsageError
from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.completeness import FIELD_KEYS, FieldRules, field_checks
from ideamine.knowledge.guards.design import share
from ideamine.knowledge.guards.reading import at, listed, pool, thinness
from ideamine.knowledge.guards.settings import NUMBER, TEXT, Settings, settings
from ideamine.knowledge.guards.verdict import Check, mean, report, shown

__all__ = ["SEMVER", "check_release_completeness", "check_version_validation"]

RELEASE_KEYS = {**FIELD_KEYS, "min_documentation": NUMBER}
VERSION_KEYS = {"scheme": TEXT}
FIELDS = ("release_notes", "deployment_plan", "rollback_plan", "documentation")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_HEADING = re.compile(r"^##\s*\[([^\]]+)\]", re.MULTILINE)
_QUICK_START = re.compile(r"^#+\s*(quick ?start|getting started|install|usage|setup)", re.I | re.M)
_OPERATIONS = ("deploy", "monitoring", "rollback")
_METHODS = ("get", "post", "put", "patch", "delete")


def check_release_completeness(given: GuardInput) -> GuardReport:
    """The release_completeness guard."""
    cfg = settings("release_completeness", given.config, RELEASE_KEYS)
    rules = FieldRules.read(_with_default_fields(cfg.raw, cfg.guard))
    fields, agents = field_checks(given, rules)
    known = pool(given.artifacts, given.upstream)
    complete = [*fields, _stories(known), _rollback(known), _deployment(known)]
    documented = [_readme(known), _api(known), _operations(known)]
    c_score, d_score = mean(c.score for c in complete), mean(c.score for c in documented)
    c_min, d_min = cfg.number("min_score", 1.0), cfg.number("min_documentation", 0.8)
    head = (
        f"release completeness {c_score:.2f} (minimum {c_min:.2f}), "
        f"documentation {d_score:.2f} (minimum {d_min:.2f})"
    )
    return report(
        "release_completeness",
        passed=c_score >= c_min - 1e-9 and d_score >= d_min - 1e-9,
        score=mean((c_score, d_score)),
        reasons=[head, *(c.problem for c in (*complete, *documented) if c.problem)],
        scores={"completeness": c_score, "documentation": d_score},
        kind="coverage",
        severity="medium",
        missing_agents=agents,
    )


def _with_default_fields(raw: Mapping[str, Any], guard: str) -> Settings:
    """The config with SPEC §1's four fields unless it names its own."""
    return Settings(guard=guard, raw={"fields": list(FIELDS), **raw})


def _stories(known: Mapping[str, Any]) -> Check:
    wanted = [str(s) for s in listed(known.get("UserStories"), "stories[].id")]
    noted = {str(s) for s in listed(known.get("ReleaseNotes"), "stories[].id")}
    missing = [s for s in wanted if s not in noted]
    return share(
        "release notes", missing, len(wanted), "user stories missing from the release notes"
    )


def _rollback(known: Mapping[str, Any]) -> Check:
    plan = known.get("RollbackPlan")
    bare = [k for k in ("triggers", "steps") if thinness(at(plan, k), min_chars=5, min_items=1)]
    return share("rollback", [f"RollbackPlan.{k}" for k in bare], 2, "rollback parts missing")


def _deployment(known: Mapping[str, Any]) -> Check:
    plan = known.get("DeploymentPlan")
    bare = [
        k for k in ("steps", "health_checks") if thinness(at(plan, k), min_chars=5, min_items=1)
    ]
    return share("deployment", [f"DeploymentPlan.{k}" for k in bare], 2, "deployment parts missing")


def _readme(known: Mapping[str, Any]) -> Check:
    readme = at(known.get("Documentation"), "readme")
    if not isinstance(readme, str) or thinness(readme, min_chars=200, min_items=1):
        return Check(name="readme", score=0.0, problem="Documentation.readme is missing or thin")
    if not _QUICK_START.search(readme):
        return Check(
            name="readme",
            score=0.5,
            problem="Documentation.readme has no quick start or install section",
        )
    return Check(name="readme", score=1.0)


def _api(known: Mapping[str, Any]) -> Check:
    paths = at(known.get("OpenAPI"), "paths")
    operations = [
        f"{method.upper()} {path}"
        for path, item in (paths.items() if isinstance(paths, Mapping) else ())
        for method in _METHODS
        if isinstance(item, Mapping) and method in item
    ]
    reference = at(known.get("Documentation"), "api_reference")
    documented = {
        f"{str(r.get('method', '')).upper()} {r.get('path', '')}"
        for r in (reference if isinstance(reference, list) else ())
        if isinstance(r, Mapping)
    }
    missing = [op for op in operations if op not in documented]
    return share("api reference", missing, len(operations), "API operations undocumented")


def _operations(known: Mapping[str, Any]) -> Check:
    notes = at(known.get("Documentation"), "operations")
    bare = [k for k in _OPERATIONS if thinness(at(notes, k), min_chars=10, min_items=1)]
    return share("operations", bare, len(_OPERATIONS), "operations notes missing")


def check_version_validation(given: GuardInput) -> GuardReport:
    """The version_validation guard."""
    cfg = settings("version_validation", given.config, VERSION_KEYS)
    scheme = cfg.text("scheme", "semver")
    if scheme != "semver":
        raise UsageError(
            f"guard version_validation: scheme {scheme!r} is not supported",
            hint="use scheme: semver",
        )
    found = _versions(given.artifacts)
    invalid = [f"{where} {value!r}" for where, value in found if not SEMVER.match(value)]
    distinct = sorted({value for _, value in found})
    checks = [
        share("valid", invalid, len(found), "versions are not semantic versions"),
        _agree(found, distinct),
    ]
    score = mean(c.score for c in checks)
    return report(
        "version_validation",
        passed=score >= 1.0 - 1e-9,
        score=score,
        reasons=[
            f"{len(found)} version(s) stated: {', '.join(distinct) or 'none'}",
            *(c.problem for c in checks if c.problem),
        ],
        scores={"completeness": score},
        kind="quality",
        severity="high",
    )


def _agree(found: list[tuple[str, str]], distinct: list[str]) -> Check:
    if not distinct:
        return Check(name="agree", score=0.0, problem="no version is stated")
    if len(distinct) == 1:
        return Check(name="agree", score=1.0)
    stated = shown([f"{where} {value!r}" for where, value in found])
    return Check(name="agree", score=1.0 / len(distinct), problem=f"versions disagree: {stated}")


def _versions(artifacts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(location, version)`` of every stated version, in type order."""
    found = []
    for type_ in sorted(artifacts):
        content = artifacts[type_]
        if not isinstance(content, Mapping):
            continue
        if isinstance(content.get("version"), str):
            found.append((f"{type_}.version", content["version"]))
        for key, inner in content.items():
            if isinstance(inner, Mapping) and isinstance(inner.get("version"), str):
                found.append((f"{type_}.{key}.version", inner["version"]))
            if isinstance(inner, Mapping) and isinstance(inner.get("markdown"), str):
                heading = _first_release(inner["markdown"])
                if heading:
                    found.append((f"{type_}.{key}.markdown", heading))
    return found


def _first_release(markdown: str) -> str | None:
    """The version of a changelog's first release heading (``[Unreleased]`` skipped)."""
    for match in _HEADING.finditer(markdown):
        name = match.group(1).strip()
        if name.lower() != "unreleased":
            return name
    return None
