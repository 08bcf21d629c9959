"""Semantic versions of dossiers, derived from what a release promises (its *surface*).

The surface is the API's operations and required fields, the data model's entities and the
user stories. Against the same project's previous dossier:

- an operation or path removed, a schema's required fields changed, or an entity removed
  → **major** (clients or stored data break);
- a new story, operation or entity → **minor**;
- anything else → **patch**;
- no previous dossier → **0.1.0**.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ideamine.errors import UsageError

__all__ = ["FIRST_VERSION", "Surface", "VersionDecision", "derive_version", "parse_version"]

FIRST_VERSION = "0.1.0"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Surface:
    """What a release promises to its users: compared between versions."""

    operations: tuple[str, ...] = ()  # "GET /farmers"
    required: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # schema -> fields
    entities: tuple[str, ...] = ()
    stories: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        openapi: Mapping[str, object] | None,
        data_model: Mapping[str, object] | None,
        stories: Mapping[str, object] | None,
    ) -> Surface:
        """The surface of a run's OpenAPI, DataModel and UserStories artifacts."""
        return cls(
            operations=_operations(openapi),
            required=_required(openapi),
            entities=_names(data_model, "entities", "name"),
            stories=_names(stories, "stories", "id"),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "operations": list(self.operations),
            "required": {name: list(fields) for name, fields in sorted(self.required.items())},
            "entities": list(self.entities),
            "stories": list(self.stories),
        }

    @classmethod
    def from_json(cls, value: object) -> Surface:
        """Read a surface stored in an earlier dossier (unknown shapes read as empty)."""
        data = value if isinstance(value, Mapping) else {}
        required = data.get("required")
        return cls(
            operations=_strings(data.get("operations")),
            required={
                str(name): _strings(fields)
                for name, fields in (required.items() if isinstance(required, Mapping) else ())
            },
            entities=_strings(data.get("entities")),
            stories=_strings(data.get("stories")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionDecision:
    number: str
    bump: str  # initial | major | minor | patch | override
    reasons: tuple[str, ...]
    previous: str | None = None


def parse_version(text: str) -> tuple[int, int, int]:
    """``X.Y.Z`` as integers.

    Raises:
        UsageError: ``text`` is not a semantic version.
    """
    match = _SEMVER.match(text.strip())
    if match is None:
        raise UsageError(
            f"{text!r} is not a semantic version", hint="give it as MAJOR.MINOR.PATCH, e.g. 1.2.0"
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def derive_version(
    current: Surface,
    previous: Surface | None,
    previous_number: str | None,
    override: str | None = None,
) -> VersionDecision:
    """The version of a dossier with ``current`` surface, and why."""
    if previous is None or previous_number is None:
        bump, reasons = "initial", ["first dossier of this project"]
        number = FIRST_VERSION
    else:
        bump, reasons = _compare(current, previous)
        number = _bumped(parse_version(previous_number), bump)
    if override is not None:
        parse_version(override)
        derived = f"derived {number} ({bump}) was overridden by --version {override}"
        return VersionDecision(
            number=override.strip(),
            bump="override",
            reasons=(derived, *reasons),
            previous=previous_number,
        )
    return VersionDecision(
        number=number, bump=bump, reasons=tuple(reasons), previous=previous_number
    )


def _compare(current: Surface, previous: Surface) -> tuple[str, list[str]]:
    breaking = _breaking(current, previous)
    if breaking:
        return "major", breaking
    added = [
        *_added("story", current.stories, previous.stories),
        *_added("endpoint", current.operations, previous.operations),
        *_added("entity", current.entities, previous.entities),
    ]
    if added:
        return "minor", added
    return "patch", ["no API, data-model or story change since the previous dossier"]


def _breaking(current: Surface, previous: Surface) -> list[str]:
    reasons = [
        f"endpoint removed: {op}" for op in previous.operations if op not in current.operations
    ]
    old_paths = {op.split(" ", 1)[1] for op in previous.operations}
    new_paths = {op.split(" ", 1)[1] for op in current.operations}
    reasons += [f"path removed: {path}" for path in sorted(old_paths - new_paths)]
    for name, fields in sorted(previous.required.items()):
        now = current.required.get(name)
        if now is not None and set(now) != set(fields):
            change = _field_change(set(fields), set(now))
            reasons.append(f"required fields of schema {name} changed ({change})")
    reasons += [
        f"data-model entity removed: {name}"
        for name in previous.entities
        if name not in current.entities
    ]
    return reasons


def _field_change(before: set[str], after: set[str]) -> str:
    parts = [f"+{name}" for name in sorted(after - before)]
    parts += [f"-{name}" for name in sorted(before - after)]
    return ", ".join(parts)


def _added(kind: str, current: Sequence[str], previous: Sequence[str]) -> list[str]:
    return [f"new {kind}: {item}" for item in current if item not in previous]


def _bumped(version: tuple[int, int, int], bump: str) -> str:
    major, minor, patch = version
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _operations(openapi: Mapping[str, object] | None) -> tuple[str, ...]:
    paths = openapi.get("paths") if openapi else None
    if not isinstance(paths, Mapping):
        return ()
    found = [
        f"{method.upper()} {path}"
        for path, item in paths.items()
        if isinstance(item, Mapping)
        for method in HTTP_METHODS
        if method in item
    ]
    return tuple(sorted(found))


def _required(openapi: Mapping[str, object] | None) -> dict[str, tuple[str, ...]]:
    components = openapi.get("components") if openapi else None
    schemas = components.get("schemas") if isinstance(components, Mapping) else None
    if not isinstance(schemas, Mapping):
        return {}
    return {
        str(name): tuple(sorted(_strings(schema.get("required"))))
        for name, schema in schemas.items()
        if isinstance(schema, Mapping)
    }


def _names(artifact: Mapping[str, object] | None, key: str, attribute: str) -> tuple[str, ...]:
    items = artifact.get(key) if artifact else None
    if not isinstance(items, list):
        return ()
    names = {
        str(item[attribute]) for item in items if isinstance(item, Mapping) and attribute in item
    }
    return tuple(sorted(names))


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list | tuple) else ()
