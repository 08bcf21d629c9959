"""The published JSON Schema of a dossier (``dossier.schema.json``, shipped in the package)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources

from ideamine.jsonschemas import Draft202012Validator

__all__ = ["SCHEMA_FILE", "schema", "schema_errors"]

SCHEMA_FILE = "dossier.schema.json"


@cache
def schema() -> Mapping[str, object]:
    """The schema, as published."""
    text = (resources.files("ideamine.dossier") / SCHEMA_FILE).read_text(encoding="utf-8")
    value: dict[str, object] = json.loads(text)
    return value


def schema_errors(document: object) -> list[str]:
    """Every way ``document`` breaks the schema, as ``/json/pointer: message`` lines."""
    validator = Draft202012Validator(schema())
    return [
        f"/{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in sorted(
            validator.iter_errors(document), key=lambda e: str(list(e.absolute_path))
        )
    ]
