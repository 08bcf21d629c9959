"""Validity: every artifact against its schema, the OpenAPI document against the OpenAPI
specification (``openapi-spec-validator``), the SBOM against the CycloneDX schema.

The SBOM artifact is a CycloneDX document that IdeaMine annotates with three fields of its
own (``evidence``, ``requirements``, ``unpinned``); those are set aside and the rest must
validate against the CycloneDX schema of the document's ``specVersion``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.config.model import PipelineSpec
from ideamine.errors import UsageError
from ideamine.jsonschemas import Draft202012Validator
from ideamine.tools.security import bom_problem

__all__ = ["SBOM_ANNOTATIONS", "validity"]

SBOM_ANNOTATIONS = ("evidence", "requirements", "unpinned")
_MAX_PROBLEMS = 5


def validity(pipeline: PipelineSpec, artifacts: Mapping[str, object]) -> dict[str, object]:
    """``{"valid", "artifacts", "invalid": [{"type", "problem"}], "openapi", "sbom"}`` for the
    latest artifact of each type (``artifacts``: type → content).

    ``openapi`` and ``sbom`` are ``{"valid", "problem"}``, or ``{"valid": False, "problem":
    "missing"}`` when the run made no such artifact.
    """
    schemas = {a.type: a.schema for phase in pipeline.phases for a in phase.artifacts}
    invalid = []
    for kind, content in sorted(artifacts.items()):
        schema = schemas.get(kind)
        problem = "no schema in the run's configuration" if schema is None else None
        if schema is not None:
            problem = _schema_problem(schema, content)
        if problem:
            invalid.append({"type": kind, "problem": problem})
    openapi = _openapi(artifacts.get("OpenAPI"))
    sbom = _sbom(artifacts.get("SBOM"))
    return {
        "valid": not invalid and openapi["valid"] is True and sbom["valid"] is True,
        "artifacts": len(artifacts),
        "invalid": invalid,
        "openapi": openapi,
        "sbom": sbom,
    }


def _schema_problem(schema: Mapping[str, Any], content: object) -> str | None:
    errors = sorted(Draft202012Validator(schema).iter_errors(content), key=lambda e: e.path)
    messages = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
    return "; ".join(messages[:_MAX_PROBLEMS]) or None


def _openapi(document: object) -> dict[str, object]:
    if not isinstance(document, Mapping):
        return {"valid": False, "problem": "missing"}
    validate = _import("openapi_spec_validator", "validate")
    try:
        validate(dict(document))
    except Exception as exc:  # the validator raises many kinds: each is a finding
        return {"valid": False, "problem": f"{type(exc).__name__}: {str(exc)[:500]}"}
    return {"valid": True, "problem": None}


def _sbom(document: object) -> dict[str, object]:
    if not isinstance(document, Mapping):
        return {"valid": False, "problem": "missing"}
    bom = {k: v for k, v in document.items() if k not in SBOM_ANNOTATIONS}
    problem = bom_problem(bom)
    if problem is not None:
        return {"valid": False, "problem": problem}
    return {"valid": True, "problem": None, "spec_version": str(bom.get("specVersion"))}


def _import(module: str, name: str) -> Any:
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except ImportError as exc:
        raise UsageError(
            f"the validators are not installed ({exc.name} is missing)",
            hint="pip install 'ideamine[eval]'",
        ) from exc
