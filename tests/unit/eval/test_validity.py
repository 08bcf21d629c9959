"""Validity of artifacts: the run's own schemas, openapi-spec-validator, the CycloneDX schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.eval.validity import validity

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Farmers", "version": "0.1.0"},
    "paths": {
        "/farmers": {"get": {"responses": {"200": {"description": "the farmers"}}}},
        "/orders": {"get": {"responses": {"200": {"description": "the orders"}}}},
    },
    "components": {"schemas": {}},
}
EVIDENCE = {
    "tool": "cyclonedx-py", "version": "7.5.0", "command": ["cyclonedx-py"], "exit_code": 0,
    "timed_out": False, "duration_ms": 1.0, "executed": True,
}  # fmt: skip
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "components": [
        {
            "type": "library",
            "name": "fastapi",
            "version": "0.115.0",
            "purl": "pkg:pypi/fastapi@0.115.0",
        }
    ],
    "evidence": EVIDENCE,  # IdeaMine's own annotations are set aside
    "requirements": ["fastapi"],
    "unpinned": [],
}


@pytest.fixture(scope="module")
def pipeline() -> PipelineSpec:
    return load_pipeline(None)


def check(pipeline: PipelineSpec, **artifacts: Any) -> dict[str, Any]:
    return validity(pipeline, {"OpenAPI": OPENAPI, "SBOM": SBOM, **artifacts})


def test_valid_documents_pass(pipeline: PipelineSpec) -> None:
    report = check(pipeline)
    assert report["valid"] is True and report["invalid"] == []
    assert report["sbom"] == {"valid": True, "problem": None, "spec_version": "1.5"}


def test_an_artifact_breaking_its_schema_is_named(pipeline: PipelineSpec) -> None:
    report = check(pipeline, PRD={"title": 3})
    assert report["valid"] is False
    [problem] = report["invalid"]
    assert problem["type"] == "PRD" and "is a required property" in problem["problem"]


def test_an_unknown_artifact_type_is_invalid(pipeline: PipelineSpec) -> None:
    assert check(pipeline, Mystery={})["invalid"] == [
        {"type": "Mystery", "problem": "no schema in the run's configuration"}
    ]


def test_a_broken_openapi_document_fails(pipeline: PipelineSpec) -> None:
    broken = copy.deepcopy(OPENAPI)
    broken["paths"]["/farmers"]["get"]["responses"] = {"200": {"content": {}}}  # no description
    report = validity(pipeline, {"OpenAPI": broken, "SBOM": SBOM})
    assert report["valid"] is False and report["openapi"]["valid"] is False
    assert "description" in report["openapi"]["problem"]


def test_an_sbom_outside_the_cyclonedx_schema_fails(pipeline: PipelineSpec) -> None:
    broken = {**SBOM, "components": [{**SBOM["components"][0], "type": "gadget"}]}
    report = validity(pipeline, {"OpenAPI": OPENAPI, "SBOM": broken})
    assert report["sbom"]["valid"] is False and "gadget" in report["sbom"]["problem"]
    unknown = validity(pipeline, {"OpenAPI": OPENAPI, "SBOM": {**SBOM, "specVersion": "9.9"}})
    assert unknown["sbom"] == {"valid": False, "problem": "unknown specVersion '9.9'"}


def test_missing_documents_are_invalid(pipeline: PipelineSpec) -> None:
    report = validity(pipeline, {})
    assert report["openapi"] == report["sbom"] == {"valid": False, "problem": "missing"}
    assert report["valid"] is False
