"""JSON export: the signed dossier as canonical JSON (the bytes its signature covers, plus
the signature), valid against the published ``dossier.schema.json``."""

from __future__ import annotations

from collections.abc import Mapping

from ideamine.canonical import canonical_json

__all__ = ["render_json"]


def render_json(document: Mapping[str, object]) -> str:
    """Canonical JSON text of the signed dossier, newline-terminated."""
    return canonical_json(document) + "\n"
