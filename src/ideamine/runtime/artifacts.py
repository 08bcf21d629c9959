"""Fan a phase attempt's outputs in to artifacts, validated against their schemas."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from ideamine.agents.builtin import validate_output
from ideamine.config.model import AggregationKind, PhaseSpec, PipelineSpec
from ideamine.engine.fanin import aggregate
from ideamine.errors import AgentError
from ideamine.stores.records import NewArtifact

__all__ = ["ArtifactProblem", "assemble_artifacts"]


class ArtifactProblem(Exception):
    """A required artifact is missing or its fanned-in content breaks its schema."""


def _agent_of(key: str) -> str:
    return key.rsplit(".", 1)[1]


def _custom(reference: str | None) -> Any:
    if reference is None:
        return None
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def assemble_artifacts(
    pipeline: PipelineSpec,
    spec: PhaseSpec,
    attempt: int,
    outputs: Mapping[str, object],
    calls: Sequence[Mapping[str, object]],
    input_ids: Sequence[str],
) -> list[NewArtifact]:
    """The phase's artifacts, each the fan-in of the outputs that contribute to its type.

    Raises:
        ArtifactProblem: a required artifact has no content, or content fails its schema.
    """
    custom = _custom(spec.aggregation.function)
    artifacts = []
    for artifact in spec.artifacts:
        parts = _parts(pipeline, artifact.type, outputs)
        if not parts:
            if artifact.required:
                raise ArtifactProblem(f"required artifact {artifact.type} was not produced")
            continue
        kind = spec.aggregation.kind
        if kind is AggregationKind.VOTE and len({_agent_of(k) for k in parts}) == len(parts):
            kind = AggregationKind.MERGE  # distinct agents contributing parts: nothing to vote on
        content = aggregate(kind, parts, custom)
        try:
            validate_output(f"{spec.name}/{artifact.type}", artifact.schema, content)
        except AgentError as exc:
            raise ArtifactProblem(str(exc)) from exc
        artifacts.append(
            NewArtifact(
                type=artifact.type,
                content=content,
                provenance=_provenance(spec, attempt, parts, calls, input_ids),
            )
        )
    return artifacts


def _parts(
    pipeline: PipelineSpec, artifact_type: str, outputs: Mapping[str, object]
) -> dict[str, object]:
    parts: dict[str, object] = {}
    for key, output in outputs.items():
        agent = pipeline.agents[_agent_of(key)]
        if artifact_type not in agent.artifact_types:
            continue
        if len(agent.artifact_types) > 1:
            if isinstance(output, dict) and artifact_type in output:
                parts[key] = output[artifact_type]
        else:
            parts[key] = output
    return parts


def _provenance(
    spec: PhaseSpec,
    attempt: int,
    parts: Mapping[str, object],
    calls: Sequence[Mapping[str, object]],
    input_ids: Sequence[str],
) -> dict[str, object]:
    keys = sorted(parts)
    own = [
        call
        for call in calls
        if call["phase"] == spec.name and call["attempt"] == attempt and call["key"] in parts
    ]
    return {
        "phase": spec.name,
        "attempt": attempt,
        "task_keys": keys,
        "agents": sorted({_agent_of(key) for key in keys}),
        "models": sorted({f"{c['provider']}:{c['model']}" for c in own}),
        "prompt_hashes": sorted({str(c["prompt_hash"]) for c in own}),
        "input_artifact_ids": list(input_ids),
        "tokens": sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in own),
        "cost_usd": round(sum(float(str(c["cost_usd"])) for c in own), 6),
    }
