"""The template context of a task: idea, upstream artifacts, earlier outputs, iteration.

Only what is deterministic goes in: no run ids, no times. A task sees the artifacts of the
phases its phase transitively depends on (never of a phase running beside it), and earlier
outputs only where the fan-out mode orders them (sequential phases, loop iterations).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ideamine.canonical import canonical_json, sha256_hex
from ideamine.config.model import FanOutKind, PipelineSpec
from ideamine.engine.dag import ancestors
from ideamine.engine.plan import GATE_KEY
from ideamine.stores.base import Store
from ideamine.stores.options import RunOptions
from ideamine.stores.records import ArtifactRecord, NewArtifact, RunRecord, TaskRecord

__all__ = ["BlobCache", "loop_values", "task_values", "upstream_artifacts"]

_T = TypeVar("_T")
_Key = TypeVar("_Key", bound=tuple[object, ...])
_Value = TypeVar("_Value")


class BlobCache:
    """Artifact contents by run and hash (contents never change), and the upstream artifacts
    of a phase attempt's dependencies (they passed, so they never change either), and the
    reads in flight that starting tasks share (``shared``). Every entry is keyed by its run
    first, so ``forget`` can drop a run that left ``running``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._contents: dict[tuple[str, str], object] = {}
        self.upstream: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
        self.upstream_ids: dict[tuple[str, str], dict[str, str]] = {}  # (run, phase) → type → id
        # (run, phase) → type → (id, content): what a phase depending on it reads from its
        # side once its fan-in passed (`remember`)
        self._after: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {}
        self.feedback: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self._flights: dict[tuple[str, ...], asyncio.Future[Any]] = {}  # keyed by run first
        self._lent: dict[str, Mapping[str, Any]] = {}  # run id → options (`lend_options`)

    async def shared(self, key: tuple[str, ...], read: Callable[[], Awaitable[_T]]) -> _T:
        """``read()``, or the read under ``key`` already in flight: tasks that start in the
        same instant share one read (and its error) instead of each making their own.
        Nothing is kept once it lands."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(read())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        result: _T = await asyncio.shield(flight)
        return result

    def _landed(self, key: tuple[str, ...], flight: asyncio.Future[Any]) -> None:
        self._flights.pop(key, None)
        if not flight.cancelled():
            flight.exception()  # retrieved: its waiters (if any are left) raise it themselves

    async def options(self, run_id: str) -> dict[str, Any]:
        """The run's options as read now (they can change under a run: ``resume
        --add-budget``), each caller with a copy of its own; while a step hands tasks out
        ahead of its commit, as that step read them (``lend_options``)."""
        lent = self._lent.get(run_id)
        if lent is not None:
            return dict(lent)
        options = await self.shared(
            (run_id, "options"), lambda: RunOptions(self._store).get(run_id)
        )
        return dict(options)

    @contextlib.contextmanager
    def lend_options(self, run_id: str, options: Mapping[str, Any]) -> Iterator[None]:
        """``options`` answer ``options(run_id)`` inside: the tasks a step hands out ahead of
        its commit (``stores.ahead``) start with the options it read just before, where a
        read of their own would wait for that commit (no step writes a run's options)."""
        self._lent[run_id] = options
        try:
            yield
        finally:
            del self._lent[run_id]

    def keep(self, run_id: str, artifacts: Sequence[NewArtifact]) -> None:
        """Keep the contents of ``artifacts``, just written for ``run_id``, as reading them
        back would give them (decoded from the canonical JSON stored), so the phases they
        feed start without reading them."""
        for artifact in artifacts:
            text = canonical_json(artifact.content)
            self._contents[(run_id, sha256_hex(text))] = json.loads(text)

    def foresee(
        self,
        pipeline: PipelineSpec,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        ids: Sequence[str],
        starting: Sequence[str],
    ) -> list[str]:
        """Fill in the upstream artifacts of the phases ``starting`` as they will read once
        ``phase``'s ``artifacts`` (with ``ids``) are committed, so their tasks, handed out
        ahead of that commit (``stores.ahead``), start without reading them (a read would
        wait for it): for a phase each of whose dependencies is ``phase`` or one whose
        passing fan-in this process saw (``remember``), and whose dependencies agree on the
        latest artifact of every type they share. The phases filled in."""
        after = self._after_of(run_id, phase, attempt, artifacts, ids)
        if after is None:
            return []
        return self._fill(pipeline, run_id, starting, {phase: after})

    def foresee_starts(
        self, pipeline: PipelineSpec, run_id: str, starting: Sequence[str]
    ) -> list[str]:
        """``foresee`` for phases a step starts on their own (the run's first phase): filled
        in when every dependency's passing fan-in was seen here (``remember``); a phase
        depending on nothing reads nothing."""
        return self._fill(pipeline, run_id, starting, {})

    def _fill(
        self,
        pipeline: PipelineSpec,
        run_id: str,
        starting: Sequence[str],
        fanned: Mapping[str, dict[str, tuple[str, Any]]],
    ) -> list[str]:
        """Fill in the upstream of each of ``starting`` that ``_merged`` can tell; the phases
        filled in."""
        filled = []
        for name in starting:
            if (run_id, name) in self.upstream:
                continue
            merged = self._merged(run_id, pipeline.phase(name).depends_on, fanned)
            if merged is None:
                continue
            self.upstream[(run_id, name)] = (
                {kind: merged[kind][1] for kind in sorted(merged)},
                sorted(artifact_id for artifact_id, _ in merged.values()),
            )
            self.upstream_ids[(run_id, name)] = {kind: merged[kind][0] for kind in merged}
            filled.append(name)
        return filled

    def remember(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        ids: Sequence[str],
    ) -> None:
        """Note, once a fan-in of ``phase`` that passed it has committed, the artifacts a
        phase depending on it reads from its side (``foresee`` for a phase with more than
        one dependency)."""
        after = self._after_of(run_id, phase, attempt, artifacts, ids)
        if after is not None:
            self._after[(run_id, phase)] = after

    def unremember(self, run_id: str, phase: str) -> None:
        """Drop what ``remember`` noted of ``phase`` (the commit it assumed was not made)."""
        self._after.pop((run_id, phase), None)

    def unsee(self, run_id: str, phases: Sequence[str]) -> None:
        """Drop what ``foresee`` filled in for ``phases`` (the commit did not happen)."""
        for name in phases:
            self.upstream.pop((run_id, name), None)
            self.upstream_ids.pop((run_id, name), None)

    def _after_of(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        ids: Sequence[str],
    ) -> dict[str, tuple[str, Any]] | None:
        """The latest artifact of each type (id, content) in ``phase`` and the phases it
        depends on, once ``artifacts`` are committed; None unless ``phase``'s own upstream
        is cached with its ids, this is its first attempt (a later one may leave an earlier
        one's types latest), and no new type is upstream already or written twice (a read
        keeps the latest version of a type only)."""
        cached = self.upstream.get((run_id, phase))
        by_type = self.upstream_ids.get((run_id, phase))
        if cached is None or by_type is None or attempt != 1:
            return None
        contents, _ = cached
        new_types = {artifact.type for artifact in artifacts}
        if new_types & set(contents) or len(new_types) != len(artifacts):
            return None
        after = {kind: (by_type[kind], contents[kind]) for kind in contents}
        for artifact, artifact_id in zip(artifacts, ids, strict=True):
            after[artifact.type] = (artifact_id, json.loads(canonical_json(artifact.content)))
        return after

    def _merged(
        self,
        run_id: str,
        dependencies: Sequence[str],
        fanned: Mapping[str, dict[str, tuple[str, Any]]],
    ) -> dict[str, tuple[str, Any]] | None:
        """What a phase depending on ``dependencies`` reads, from what each of them leaves
        (``fanned``'s for the phase being fanned in, ``remember``'s for the others); None
        when one is unknown or two disagree on a type's latest artifact."""
        merged: dict[str, tuple[str, Any]] = {}
        for dependency in dependencies:
            seen = (
                fanned[dependency]
                if dependency in fanned
                else self._after.get((run_id, dependency))
            )
            if seen is None:
                return None
            for kind, (artifact_id, content) in seen.items():
                if kind in merged and merged[kind][0] != artifact_id:
                    return None
                merged[kind] = (artifact_id, content)
        return merged

    async def get(self, run_id: str, content_hash: str) -> object:
        key = (run_id, content_hash)
        if key not in self._contents:
            self._contents[key] = await self._store.blob(content_hash)
        return self._contents[key]

    def forget(self, run_id: str) -> None:
        """Drop ``run_id``'s entries; should the run be resumed, they are read again."""
        _drop_run(self._contents, run_id)
        _drop_run(self.upstream, run_id)
        _drop_run(self.upstream_ids, run_id)
        _drop_run(self._after, run_id)
        _drop_run(self.feedback, run_id)


def _drop_run(cache: dict[_Key, _Value], run_id: str) -> None:
    """Delete the entries of ``cache`` whose key starts with ``run_id``."""
    for key in [key for key in cache if key[0] == run_id]:
        del cache[key]


def _graph(pipeline: PipelineSpec) -> dict[str, tuple[str, ...]]:
    return {spec.name: spec.depends_on for spec in pipeline.phases}


async def upstream_artifacts(
    store: Store, blobs: BlobCache, pipeline: PipelineSpec, run_id: str, phase: str
) -> tuple[dict[str, Any], list[str]]:
    """The latest artifact of each type from ``phase``'s dependencies, and their ids.

    Read once per (run, phase): a phase starts only after its dependencies passed, and a
    passed phase never changes.
    """
    cached = blobs.upstream.get((run_id, phase))
    if cached is None:
        contents, by_type = await blobs.shared(
            (run_id, "upstream", phase),
            lambda: _read_upstream(store, blobs, pipeline, run_id, phase),
        )
        cached = blobs.upstream[(run_id, phase)] = (contents, sorted(by_type.values()))
        blobs.upstream_ids[(run_id, phase)] = by_type
    return cached


async def _read_upstream(
    store: Store, blobs: BlobCache, pipeline: PipelineSpec, run_id: str, phase: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The latest artifact of each type from ``phase``'s dependencies: the contents, and the
    ids, by type."""
    closure = set(ancestors(_graph(pipeline), phase))
    latest: dict[str, ArtifactRecord] = {}
    for record in await store.artifacts(run_id):
        if record.phase in closure and (
            record.type not in latest or record.version > latest[record.type].version
        ):
            latest[record.type] = record
    contents = {t: await blobs.get(run_id, latest[t].content_hash) for t in sorted(latest)}
    return contents, {t: record.id for t, record in latest.items()}


async def task_values(
    store: Store, blobs: BlobCache, pipeline: PipelineSpec, run: RunRecord, task: TaskRecord
) -> tuple[dict[str, object], list[str]]:
    """The template context for ``task`` and the ids of the artifacts it was built from."""
    agent = pipeline.agents.get(task.agent)
    described: dict[str, object] = {"name": task.agent}
    if agent is not None:
        described = {
            "name": agent.name,
            "role": agent.role,
            "artifact_type": list(agent.artifact_types)
            if len(agent.artifact_types) > 1
            else agent.artifact_types[0],
        }
    return await _values(
        store, blobs, pipeline, run, task.phase, task.attempt, task.iteration, task.key, described
    )


async def loop_values(
    store: Store,
    blobs: BlobCache,
    pipeline: PipelineSpec,
    run: RunRecord,
    phase: str,
    attempt: int,
    iteration: int,
) -> dict[str, object]:
    """The context a loop's ``until`` sees after ``iteration`` finished: ``outputs`` holds
    that iteration's outputs by agent, ``history`` the iterations before it."""
    after_all = f"{iteration:03d}.~"  # sorts after every key of the iteration
    values, _ = await _values(store, blobs, pipeline, run, phase, attempt, iteration, after_all, {})
    return values


async def _values(
    store: Store,
    blobs: BlobCache,
    pipeline: PipelineSpec,
    run: RunRecord,
    phase: str,
    attempt: int,
    iteration: int,
    before_key: str,
    agent: Mapping[str, object],
) -> tuple[dict[str, object], list[str]]:
    spec = pipeline.phase(phase)
    artifacts, input_ids = await upstream_artifacts(store, blobs, pipeline, run.id, phase)
    outputs: dict[str, object] = {}
    history: list[dict[str, object]] = []
    if spec.fan_out.kind in (FanOutKind.SEQUENTIAL, FanOutKind.ITERATIVE):
        recorded = await store.outputs(run.id, phase, attempt)
        iterative = spec.fan_out.kind is FanOutKind.ITERATIVE
        outputs, history = _earlier(recorded, iterative, before_key, iteration)
    values: dict[str, object] = {
        "idea": {"text": run.idea, "constraints": dict(run.constraints)},
        "artifacts": artifacts,
        "outputs": outputs,
        "history": history,
        "iteration": iteration,
        "phase": phase,
        "attempt": attempt,
        "feedback": await _feedback(store, blobs, run.id, phase, attempt),
        "agent": dict(agent),
    }
    return values, input_ids


async def _feedback(
    store: Store, blobs: BlobCache, run_id: str, phase: str, attempt: int
) -> list[dict[str, Any]]:
    """The issues the gate found in the previous attempt (empty for a first attempt): the
    auto-fix loop's feedback to the agents."""
    if attempt <= 1:
        return []
    key = (run_id, phase, attempt)
    if key not in blobs.feedback:
        # imported at the first retried attempt, not with the runtime (start-up time)
        from ideamine.stores.dossiers import DossierStore  # noqa: PLC0415

        previous = await DossierStore(store).gate_result(run_id, phase, attempt - 1)
        issues = previous.get("issues", []) if previous else []
        blobs.feedback[key] = [
            {k: issue[k] for k in ("guard", "kind", "severity", "description")}
            for issue in (issues if isinstance(issues, list) else [])
        ]
    return blobs.feedback[key]


def _earlier(
    recorded: Mapping[str, object], iterative: bool, before_key: str, iteration: int
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Outputs of keys before ``before_key`` in ``iteration`` (by agent), and of earlier
    iterations (one mapping each, oldest first)."""
    by_iteration: dict[int, dict[str, object]] = {}
    for key in sorted(recorded):
        if key == GATE_KEY:  # the gate judge's verdict is no agent's output
            continue
        number, agent = _parse_key(key, iterative)
        if key < before_key:
            by_iteration.setdefault(number, {})[agent] = recorded[key]
    outputs = by_iteration.pop(iteration, {})
    history = [by_iteration[i] for i in sorted(by_iteration) if i < iteration]
    return outputs, history


def _parse_key(key: str, iterative: bool) -> tuple[int, str]:
    parts = key.split(".")
    return (int(parts[0]), parts[2]) if iterative else (1, parts[1])
