"""Read a run's OpenAPI contract as REST collections, for the checks that call the service.

A collection is a path without parameters (``/farmers``) with its item path (``/farmers/{id}``),
the component schema its records have, the methods each path allows and the body ``POST``
takes. ``sample_body`` makes a valid body from that schema, with the ``*_id`` fields that point
to other collections filled in by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Collection", "collections", "sample_body", "snake_case"]

_METHODS = ("get", "post", "put", "patch", "delete")
_PARAM = re.compile(r"\{[^}]+\}")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """``FarmStand`` → ``farm_stand``."""
    return _CAMEL.sub("_", name).replace("-", "_").replace(" ", "_").lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class Collection:
    """One REST collection of the contract."""

    path: str
    item_path: str | None
    schema: str
    methods: frozenset[str]
    item_methods: frozenset[str]
    create_schema: Mapping[str, Any] | None
    created: int = 201
    deleted: int = 204

    @property
    def noun(self) -> str:
        """``farmer`` for the ``Farmer`` schema."""
        return snake_case(self.schema).replace("_", " ")

    @property
    def plural(self) -> str:
        """``farmers`` for ``/farmers``."""
        return self.path.strip("/").replace("-", " ") or self.noun

    @property
    def listable(self) -> bool:
        return "GET" in self.methods

    @property
    def gettable(self) -> bool:
        return "GET" in self.item_methods

    @property
    def deletable(self) -> bool:
        return "DELETE" in self.item_methods

    def item(self, record_id: object) -> str:
        """The item path of one record (``/farmers/3``)."""
        assert self.item_path is not None
        return _PARAM.sub(str(record_id), self.item_path, count=1)

    def parents(self, found: Sequence[Collection]) -> dict[str, Collection]:
        """The create body's ``<schema>_id`` fields, each with the collection it points to."""
        if self.create_schema is None:
            return {}
        by_name = {snake_case(other.schema): other for other in found if other is not self}
        return {
            name: by_name[name[:-3]]
            for name in sorted(self.create_schema.get("properties", {}))
            if name.endswith("_id") and name[:-3] in by_name
        }


def collections(openapi: Mapping[str, Any]) -> list[Collection]:
    """Every collection of the contract, in path order."""
    paths: Mapping[str, Any] = openapi.get("paths") or {}
    schemas: Mapping[str, Any] = (openapi.get("components") or {}).get("schemas") or {}
    found = []
    for path in sorted(paths):
        if "{" in path or not isinstance(paths[path], Mapping):
            continue
        item_path = _item_path(path, paths)
        operations = paths[path]
        item_ops: Mapping[str, Any] = paths.get(item_path, {}) if item_path else {}
        if not {"get", "post"} & set(operations):
            continue
        found.append(
            Collection(
                path=path,
                item_path=item_path,
                schema=_schema_name(path, operations, item_ops),
                methods=frozenset(m.upper() for m in operations if m in _METHODS),
                item_methods=frozenset(m.upper() for m in item_ops if m in _METHODS),
                create_schema=_request_schema(operations.get("post"), schemas),
                created=_success(operations.get("post"), 201),
                deleted=_success(item_ops.get("delete"), 204),
            )
        )
    return found


def _item_path(path: str, paths: Mapping[str, Any]) -> str | None:
    """``/farmers/{id}`` for ``/farmers``: one more segment that is a single parameter."""
    for candidate in sorted(paths):
        rest = candidate[len(path) + 1 :] if candidate.startswith(path + "/") else ""
        if rest.startswith("{") and rest.endswith("}") and "/" not in rest:
            return candidate
    return None


def _schema_name(path: str, operations: Mapping[str, Any], item_ops: Mapping[str, Any]) -> str:
    """The component schema of the collection's records (from responses, else tags)."""
    for operation in (operations.get("post"), item_ops.get("get"), operations.get("get")):
        ref = _response_ref(operation)
        if ref:
            return ref
    for operation in (*operations.values(), *item_ops.values()):
        tags = operation.get("tags") if isinstance(operation, Mapping) else None
        if tags:
            return str(tags[0])
    return path.strip("/").title().replace("-", "")


def _response_ref(operation: object) -> str:
    """The schema name a success response refers to (directly or as array items)."""
    if not isinstance(operation, Mapping):
        return ""
    for code, response in sorted((operation.get("responses") or {}).items()):
        if not str(code).startswith("2") or not isinstance(response, Mapping):
            continue
        schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
        if isinstance(schema, Mapping):
            ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref") or ""
            if ref:
                return str(ref).rsplit("/", 1)[-1]
    return ""


def _request_schema(operation: object, schemas: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON body schema of ``operation``, with a top-level ``$ref`` resolved."""
    if not isinstance(operation, Mapping):
        return None
    body = operation.get("requestBody") or {}
    schema = ((body.get("content") or {}).get("application/json") or {}).get("schema")
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved = schemas.get(ref.rsplit("/", 1)[-1])
        return resolved if isinstance(resolved, Mapping) else None
    return schema


def _success(operation: object, default: int) -> int:
    """The first 2xx status code an operation declares."""
    if not isinstance(operation, Mapping):
        return default
    codes = sorted(str(code) for code in operation.get("responses") or {})
    return next((int(code) for code in codes if code.startswith("2") and code.isdigit()), default)


def sample_body(schema: Mapping[str, Any], given: Mapping[str, object]) -> dict[str, object]:
    """A body with every property of ``schema``: ``given`` values first, else a sample."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    return {
        name: given[name] if name in given else _sample(name, properties[name] or {})
        for name in sorted(properties)
    }


_BY_TYPE: dict[str, object] = {"integer": 1, "number": 1.5, "boolean": True}
_BY_FORMAT = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01"}


def _sample(name: str, spec: Mapping[str, Any]) -> object:
    """A plausible value for one property by its enum, type, format and name."""
    kind = spec.get("type", "string")
    fmt = spec.get("format", "")
    if spec.get("enum"):
        value: object = spec["enum"][0]
    elif kind in _BY_TYPE:
        value = _BY_TYPE[kind]
    elif kind in ("array", "object"):
        value = [] if kind == "array" else {}
    elif fmt == "email" or "email" in name:
        value = f"{name.replace('_', '.')}@example.com"
    else:
        value = _BY_FORMAT.get(fmt, f"Sample {name.replace('_', ' ')}")
    return value
