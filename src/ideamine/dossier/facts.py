"""Everything a dossier is compiled from, read from the store in one place.

``RunFacts`` is a frozen snapshot of the run's rows; compiling it is then a pure function, so
a dossier depends on the stored run and nothing else (no clock, no environment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ideamine.config.compiled import run_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.errors import ConfigError
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore, GateEvaluationRecord
from ideamine.stores.ledger import ChainReport, verify_chain
from ideamine.stores.records import ArtifactRecord, EventRecord, PhaseRecord, RunRecord

__all__ = ["ArtifactFact", "RunFacts", "gather", "project_of"]

PAGE = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactFact:
    """The latest version of one artifact type with its content."""

    record: ArtifactRecord
    content: object


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    """A run's rows as the dossier needs them."""

    run: RunRecord
    phases: tuple[PhaseRecord, ...]
    artifacts: Mapping[str, ArtifactFact]  # latest version by type
    artifact_types: Mapping[str, str]  # every artifact id (any version) -> its type
    calls: tuple[Mapping[str, object], ...]
    gates: tuple[GateEvaluationRecord, ...]
    chain: ChainReport
    chain_head: str
    fingerprint: str
    as_of: str
    pipeline: PipelineSpec | None  # the pinned pipeline, if it still loads

    def content(self, artifact_type: str) -> Mapping[str, object] | None:
        """The latest content of ``artifact_type`` if it is a JSON object."""
        fact = self.artifacts.get(artifact_type)
        if fact is None or not isinstance(fact.content, Mapping):
            return None
        return fact.content

    def phase_order(self) -> tuple[str, ...]:
        """Phase names in pipeline order (or in the order the run started them)."""
        if self.pipeline is not None:
            return tuple(phase.name for phase in self.pipeline.phases)
        seen: dict[str, None] = {}
        for record in sorted(self.phases, key=lambda r: r.started_at):
            seen.setdefault(record.phase, None)
        return tuple(seen)

    def producer_of(self, artifact_type: str) -> str | None:
        """The phase that is configured to produce ``artifact_type``."""
        for phase in self.pipeline.phases if self.pipeline else ():
            if any(spec.type == artifact_type for spec in phase.artifacts):
                return phase.name
        return None


async def gather(store: Store, run_id: str) -> RunFacts:
    """Read a run's rows for compiling its dossier.

    Raises:
        RunNotFoundError: no such run.
        StoreError: the store cannot be read, or a blob is corrupt.
    """
    run, phases, _ = await store.run_rows(run_id)
    dossiers = DossierStore(store)
    records = await store.artifacts(run_id)
    latest: dict[str, ArtifactRecord] = {}
    for record in records:
        if record.type not in latest or record.version > latest[record.type].version:
            latest[record.type] = record
    artifacts = {
        kind: ArtifactFact(record=record, content=await store.blob(record.content_hash))
        for kind, record in sorted(latest.items())
    }
    events = await _all_events(store, run_id)
    fingerprint, as_of = await dossiers.fingerprint(run_id)
    return RunFacts(
        run=run,
        phases=tuple(phases),
        artifacts=artifacts,
        artifact_types={record.id: record.type for record in records},
        calls=tuple(await store.model_calls(run_id)),
        gates=tuple(await dossiers.gate_evaluations(run_id)),
        chain=verify_chain(events),
        chain_head=events[-1].hash if events else fingerprint,
        fingerprint=fingerprint,
        as_of=as_of or run.updated_at,
        pipeline=await _pinned(store, run_id),
    )


async def _all_events(store: Store, run_id: str) -> list[EventRecord]:
    events: list[EventRecord] = []
    while True:
        page = await store.events(run_id, after_id=events[-1].id if events else 0, limit=PAGE)
        events.extend(page)
        if len(page) < PAGE:
            return events


async def _pinned(store: Store, run_id: str) -> PipelineSpec | None:
    try:
        return await run_pipeline(store, run_id)
    except ConfigError:
        return None  # a pin this build cannot read: fall back to the phases the run started


def project_of(facts: RunFacts) -> str:
    """The run's project: ``runs.project``, else a slug of the IdeaSpec title (or idea)."""
    if facts.run.project:
        return facts.run.project
    spec = facts.content("IdeaSpec")
    title = str(spec.get("title")) if spec and spec.get("title") else facts.run.idea
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:80] or f"run-{facts.run.id}"
