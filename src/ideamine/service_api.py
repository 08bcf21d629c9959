"""Use cases of the HTTP API and the dashboard (``ideamine serve``): submitting a run from a
request, listing and filtering runs, a run with its budgets, signals with their state checks,
the error stream and the assumptions. Like ``service``, no printing and no HTTP here: errors
are raised from ``ideamine.errors`` and mapped once by the caller."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ideamine import service
from ideamine.config import compiled
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.errors import ConfigError, RunStateError, UsageError
from ideamine.stores.base import Store
from ideamine.stores.records import (
    EventDraft,
    EventRecord,
    PhaseRecord,
    RunRecord,
    TaskRecord,
    latest_attempts,
)

if TYPE_CHECKING:
    from ideamine.config.model import PipelineSpec

__all__ = [
    "ERROR_EVENTS",
    "SCAN_LIMIT",
    "PhaseBudget",
    "RunDetail",
    "RunRequest",
    "assumptions",
    "cancel_run",
    "error_events",
    "find_runs",
    "pause_run",
    "pinned_pipeline",
    "retry_phase",
    "run_detail",
    "running_owners",
    "submit_run",
]

SCAN_LIMIT = 1000  # filters look at this many of the newest runs
ERROR_EVENTS = frozenset(
    {"task.failed", "task.retry", "phase.error", "phase.stalled", "run.failed", "phase.gate.failed"}
)
_pinned: dict[str, PipelineSpec | None] = {}  # manifest hash → pinned pipeline (immutable)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A run asked for over HTTP, already validated at the edge."""

    idea: str
    project: str | None = None
    constraints: Mapping[str, object]
    model: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseBudget:
    """One phase's budgets (from the pinned pipeline) against what it used so far."""

    phase: str
    tokens_used: int
    tokens_budget: int
    usd_used: float
    usd_budget: float
    minutes_used: float
    minutes_budget: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDetail:
    """A run's rows, its phase order and its budgets, read together."""

    run: RunRecord
    phases: tuple[PhaseRecord, ...]
    tasks: tuple[TaskRecord, ...]
    calls: tuple[Mapping[str, object], ...]
    order: tuple[str, ...]
    budgets: tuple[PhaseBudget, ...]

    @property
    def progress(self) -> float:
        """The share of phases passed, 0–1."""
        latest = latest_attempts(self.phases)
        passed = sum(1 for p in latest.values() if p.status is PhaseStatus.PASSED)
        return passed / len(self.order) if self.order else 0.0

    @property
    def tokens(self) -> int:
        return sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in self.calls)

    @property
    def cost_usd(self) -> float:
        return round(sum(float(str(c["cost_usd"])) for c in self.calls), 6)


async def submit_run(
    store: Store, pipeline: PipelineSpec, request: RunRequest, *, config_dir: Path | None = None
) -> RunRecord:
    """Check the request's model and agents, then store the run (status ``created``).

    Raises:
        InvalidIdeaError: the idea is not usable; UsageError: the model is unknown.
    """
    pipeline = pipeline.with_model(request.model)
    service.check_agents(pipeline)
    return await service.create_run(
        store,
        pipeline,
        request.idea,
        constraints=request.constraints,
        source="api",
        config_dir=config_dir,
        project=request.project,
    )


async def find_runs(
    store: Store, *, status: RunStatus | None, project: str | None, limit: int
) -> list[RunRecord]:
    """The newest runs first, filtered by status and project (within the newest
    ``SCAN_LIMIT`` runs when a filter is given)."""
    if status is None and project is None:
        return await store.list_runs(limit)
    found = [
        run
        for run in await store.list_runs(SCAN_LIMIT)
        if (status is None or run.status is status) and (project is None or run.project == project)
    ]
    return found[:limit]


async def pinned_pipeline(store: Store, run: RunRecord) -> PipelineSpec | None:
    """The pipeline the run is pinned to; None if this version cannot load it any more."""
    if run.manifest_hash not in _pinned:
        try:
            _pinned[run.manifest_hash] = await compiled.run_pipeline(store, run.id)
        except ConfigError:
            _pinned[run.manifest_hash] = None
    return _pinned[run.manifest_hash]


async def run_detail(store: Store, run_id: str, *, now: float | None = None) -> RunDetail:
    """The run with its phases, tasks, model calls, phase order and budgets."""
    run, phases, tasks = await store.run_rows(run_id)
    calls = await store.model_calls(run_id)
    pipeline = await pinned_pipeline(store, run)
    order = _order(pipeline, phases)
    return RunDetail(
        run=run,
        phases=tuple(phases),
        tasks=tuple(tasks),
        calls=tuple(calls),
        order=order,
        budgets=phase_budgets(pipeline, phases, calls, now=time.time() if now is None else now),
    )


def _order(pipeline: PipelineSpec | None, phases: Sequence[PhaseRecord]) -> tuple[str, ...]:
    if pipeline is not None:
        return tuple(spec.name for spec in pipeline.phases)
    seen: dict[str, None] = {}
    for record in sorted(phases, key=lambda p: p.started_at):
        seen.setdefault(record.phase)
    return tuple(seen)


def phase_budgets(
    pipeline: PipelineSpec | None,
    phases: Sequence[PhaseRecord],
    calls: Sequence[Mapping[str, object]],
    *,
    now: float,
) -> tuple[PhaseBudget, ...]:
    """Tokens, USD and wall-clock minutes used per phase (every attempt) against its budget."""
    if pipeline is None:
        return ()
    budgets = []
    for spec in pipeline.phases:
        own = [c for c in calls if c.get("phase") == spec.name]
        seconds = sum(_elapsed(p, now) for p in phases if p.phase == spec.name)
        budgets.append(
            PhaseBudget(
                phase=spec.name,
                tokens_used=sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in own),
                tokens_budget=spec.budgets.tokens,
                usd_used=round(sum(float(str(c["cost_usd"])) for c in own), 6),
                usd_budget=spec.budgets.usd,
                minutes_used=round(seconds / 60, 3),
                minutes_budget=spec.budgets.wallclock_minutes,
            )
        )
    return tuple(budgets)


def _elapsed(phase: PhaseRecord, now: float) -> float:
    start = datetime.fromisoformat(phase.started_at).timestamp()
    end = datetime.fromisoformat(phase.finished_at).timestamp() if phase.finished_at else now
    return max(0.0, end - start)


async def pause_run(store: Store, run_id: str) -> RunRecord:
    """Pause a running run: tasks in flight finish, nothing new starts.

    Raises:
        RunNotFoundError; RunStateError: the run is not running.
    """
    current = await store.get_run(run_id)
    if current.status is not RunStatus.RUNNING:
        raise RunStateError(
            run_id,
            f"run {run_id} is {current.status}, not running",
            hint="only a running run can be paused",
        )
    payload = {"previous_status": current.status.value}
    await store.set_run_status(
        run_id, RunStatus.PAUSED, EventDraft(type="run.paused", payload=payload)
    )
    return await store.get_run(run_id)


async def cancel_run(store: Store, run_id: str, *, reason: str) -> RunRecord:
    """Cancel a live, paused or waiting run for good (its artifacts so far are kept).

    Raises:
        RunNotFoundError; RunStateError: the run has finished already.
    """
    current = await store.get_run(run_id)
    if current.status.finished:
        raise RunStateError(
            run_id,
            f"run {run_id} is {current.status} already",
            hint="only a live, paused or waiting run can be cancelled",
        )
    payload = {"previous_status": current.status.value, "reason": reason}
    await store.set_run_status(
        run_id, RunStatus.CANCELLED, EventDraft(type="run.cancelled", payload=payload), error=reason
    )
    return await store.get_run(run_id)


async def retry_phase(store: Store, run_id: str, phase: str, *, reason: str) -> int:
    """Start a new attempt of ``phase``; returns the attempt number.

    Raises:
        RunNotFoundError; UsageError: the run's pipeline has no such phase;
        RunStateError: the phase has not started, or has passed.
    """
    run = await store.get_run(run_id)
    pipeline = await pinned_pipeline(store, run)
    if pipeline is not None and phase not in {spec.name for spec in pipeline.phases}:
        known = ", ".join(spec.name for spec in pipeline.phases)
        raise UsageError(f"run {run_id} has no phase {phase!r}", hint=f"its phases: {known}")
    return await store.retry_phase(run_id, phase, reason=reason)


async def error_events(store: Store, run_id: str, *, limit: int = 50) -> list[EventRecord]:
    """The run's failures, retries and stalls, newest first."""
    found = [e for e in await service.all_events(store, run_id) if e.type in ERROR_EVENTS]
    return found[::-1][:limit]


async def assumptions(store: Store, run_id: str) -> list[dict[str, object]]:
    """The intake's assumptions (IdeaSpec) with the critique's revision of each
    (RevisedAssumptions) where there is one, as stated in the latest artifacts."""
    latest: dict[str, tuple[int, str]] = {}
    for record in await store.artifacts(run_id):
        wanted = record.type in ("IdeaSpec", "RevisedAssumptions")
        if wanted and record.version >= latest.get(record.type, (0, ""))[0]:
            latest[record.type] = (record.version, record.content_hash)
    stated = await _objects(store, latest.get("IdeaSpec"))
    revised = await _objects(store, latest.get("RevisedAssumptions"))
    by_source = {str(item.get("source")): item for item in revised}
    rows = [{**item, "revision": by_source.pop(str(item.get("id")), None)} for item in stated]
    rows += [
        {"id": item.get("id"), "statement": item.get("original"), "revision": item}
        for item in by_source.values()
    ]
    return rows


async def _objects(store: Store, found: tuple[int, str] | None) -> list[dict[str, object]]:
    if found is None:
        return []
    content = await store.blob(found[1])
    items = content.get("assumptions") if isinstance(content, Mapping) else None
    return (
        [dict(item) for item in items if isinstance(item, Mapping)]
        if isinstance(items, list)
        else []
    )


def running_owners(tasks: Sequence[TaskRecord]) -> set[str]:
    """Distinct lease owners of running tasks (the busy workers)."""
    return {t.lease_owner for t in tasks if t.status is TaskStatus.RUNNING and t.lease_owner}
