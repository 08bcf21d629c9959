"""The template context of a task: idea, upstream artifacts, earlier outputs, iteration.

Only what is deterministic goes in: no run ids, no times. A task sees the artifacts of the
phases its phase transitively depends on (never of a phase running beside it), and earlier
outputs only where the fan-out mode orders them (sequential phases, loop iterations).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.config.model import FanOutKind, PipelineSpec
from ideamine.engine.dag import ancestors
from ideamine.stores.base import Store
from ideamine.stores.records import ArtifactRecord, RunRecord, TaskRecord

__all__ = ["BlobCache", "task_values", "upstream_artifacts"]


class BlobCache:
    """Artifact contents by hash; contents never change, so caching is always safe."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._contents: dict[str, object] = {}

    async def get(self, content_hash: str) -> object:
        if content_hash not in self._contents:
            self._contents[content_hash] = await self._store.blob(content_hash)
        return self._contents[content_hash]


def _graph(pipeline: PipelineSpec) -> dict[str, tuple[str, ...]]:
    return {spec.name: spec.depends_on for spec in pipeline.phases}


async def upstream_artifacts(
    store: Store, blobs: BlobCache, pipeline: PipelineSpec, run_id: str, phase: str
) -> tuple[dict[str, Any], list[str]]:
    """The latest artifact of each type from ``phase``'s dependencies, and their ids."""
    closure = set(ancestors(_graph(pipeline), phase))
    latest: dict[str, ArtifactRecord] = {}
    for record in await store.artifacts(run_id):
        if record.phase in closure and (
            record.type not in latest or record.version > latest[record.type].version
        ):
            latest[record.type] = record
    contents = {t: await blobs.get(latest[t].content_hash) for t in sorted(latest)}
    return contents, sorted(record.id for record in latest.values())


async def task_values(
    store: Store, blobs: BlobCache, pipeline: PipelineSpec, run: RunRecord, task: TaskRecord
) -> tuple[dict[str, object], list[str]]:
    """The template context for ``task`` and the ids of the artifacts it was built from."""
    spec = pipeline.phase(task.phase)
    artifacts, input_ids = await upstream_artifacts(store, blobs, pipeline, run.id, task.phase)
    outputs: dict[str, object] = {}
    history: list[dict[str, object]] = []
    if spec.fan_out.kind in (FanOutKind.SEQUENTIAL, FanOutKind.ITERATIVE):
        recorded = await store.outputs(run.id, task.phase, task.attempt)
        outputs, history = _earlier(recorded, pipeline, task)
    agent = pipeline.agents[task.agent]
    values: dict[str, object] = {
        "idea": {"text": run.idea, "constraints": dict(run.constraints)},
        "artifacts": artifacts,
        "outputs": outputs,
        "history": history,
        "iteration": task.iteration,
        "phase": task.phase,
        "attempt": task.attempt,
        "feedback": [],
        "agent": {
            "name": agent.name,
            "role": agent.role,
            "artifact_type": list(agent.artifact_types)
            if len(agent.artifact_types) > 1
            else agent.artifact_types[0],
        },
    }
    return values, input_ids


def _earlier(
    recorded: Mapping[str, object], pipeline: PipelineSpec, task: TaskRecord
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Outputs of earlier keys in this iteration (by agent) and of earlier iterations."""
    spec = pipeline.phase(task.phase)
    by_iteration: dict[int, dict[str, object]] = {}
    for key in sorted(recorded):
        iteration, agent = _parse_key(key, spec.fan_out.kind is FanOutKind.ITERATIVE)
        if key < task.key or iteration < task.iteration:
            by_iteration.setdefault(iteration, {})[agent] = recorded[key]
    outputs = by_iteration.pop(task.iteration, {})
    history = [by_iteration[i] for i in sorted(by_iteration) if i < task.iteration]
    return outputs, history


def _parse_key(key: str, iterative: bool) -> tuple[int, str]:
    parts = key.split(".")
    return (int(parts[0]), parts[2]) if iterative else (1, parts[1])
