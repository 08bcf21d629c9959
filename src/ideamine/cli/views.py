"""Plain-data views of runs, events and artifacts: what ``--json`` prints, field for field.

These field names are a stable interface for scripts (see docs/cli.md); add fields freely,
never rename or remove one without a major version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ideamine.engine.budget import Resource
from ideamine.engine.states import TaskStatus
from ideamine.stores.records import (
    ArtifactRecord,
    EventRecord,
    PhaseRecord,
    RunRecord,
    TaskRecord,
    latest_attempts,
)

if TYPE_CHECKING:
    from ideamine.runtime.budget import BudgetReport

__all__ = [
    "artifact_view",
    "budget_lines",
    "budget_view",
    "event_view",
    "quality_view",
    "run_summary",
    "run_view",
]


def run_summary(run: RunRecord) -> dict[str, object]:
    """A run as listed by ``ideamine runs --json``."""
    return {
        "id": run.id,
        "status": run.status.value,
        "idea": run.idea,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "error": run.error,
        "manifest_hash": run.manifest_hash,
    }


def run_view(
    run: RunRecord,
    phases: Sequence[PhaseRecord],
    tasks: Sequence[TaskRecord],
    calls: Sequence[Mapping[str, object]],
    order: Sequence[str],
) -> dict[str, object]:
    """A run with its phases as shown by ``ideamine status --json``."""
    latest = latest_attempts(phases)
    views = []
    for name in order:
        record = latest.get(name)
        own = [t for t in tasks if record and t.phase == name and t.attempt == record.attempt]
        views.append(
            {
                "phase": name,
                "status": record.status.value if record else "waiting",
                "attempt": record.attempt if record else 0,
                "tasks_total": len(own),
                "tasks_succeeded": sum(1 for t in own if t.status is TaskStatus.SUCCEEDED),
                "tasks_running": sum(1 for t in own if t.status is TaskStatus.RUNNING),
                "started_at": record.started_at if record else None,
                "finished_at": record.finished_at if record else None,
                "error": record.error if record else None,
            }
        )
    return {
        **run_summary(run),
        "phases": views,
        "tokens": sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls),
        "cost_usd": round(sum(float(str(c["cost_usd"])) for c in calls), 6),
        "model_calls": len(calls),
    }


def budget_view(report: BudgetReport | None) -> dict[str, object]:
    """The ``budgets`` of ``ideamine status --json``: per resource what the run used and was
    allocated (``null``: no limit), what ``--add-budget`` added, and whether the run is
    throttled. Empty when the run's pinned config no longer loads."""
    if report is None:
        return {}
    view: dict[str, object] = {
        resource.value: {
            "used": _number(resource, report.used.of(resource)),
            "allocated": _number(resource, report.allocated.of(resource)) or None,
        }
        for resource in Resource
    }
    added = {r.value: _number(r, report.added.of(r)) for r in Resource if report.added.of(r)}
    return {**view, "added": added, "throttled": report.throttled}


def _number(resource: Resource, value: float) -> float | int:
    return int(value) if resource is Resource.TOKENS else round(value, 6)


_LABELS = {
    Resource.TOKENS: "tokens",
    Resource.USD: "usd",
    Resource.TOOL_MINUTES: "tool min",
    Resource.WALLCLOCK_MINUTES: "wall-clock min",
}


def _shown(resource: Resource, value: float) -> str:
    if resource is Resource.TOKENS:
        return f"{int(value):,}"
    return f"${value:,.4f}" if resource is Resource.USD else f"{value:,.1f}"


def budget_lines(view: Mapping[str, object]) -> list[str]:
    """``ideamine status``'s budget line: used / allocated (share) per resource (nothing
    when the view is empty)."""
    if not view:
        return []
    parts = []
    for resource in Resource:
        amounts = view[resource.value]
        assert isinstance(amounts, Mapping)
        used, allocated = float(amounts["used"]), amounts["allocated"]
        text = f"{_LABELS[resource]} {_shown(resource, used)}"
        if allocated is None:
            parts.append(f"{text} (no limit)")
        else:
            limit = float(allocated)
            parts.append(f"{text} / {_shown(resource, limit)} ({used / limit * 100:.0f} %)")
    throttled = " · [yellow]throttled[/] (concurrency halved)" if view.get("throttled") else ""
    return ["budget: " + " · ".join(parts) + throttled]


def event_view(event: EventRecord) -> dict[str, object]:
    """One ledger event as printed by ``ideamine events --json``."""
    return {
        "id": event.id,
        "run_id": event.run_id,
        "at": event.at,
        "type": event.type,
        "kind": event.kind,
        "phase": event.phase,
        "task_id": event.task_id,
        "payload": dict(event.payload),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def artifact_view(record: ArtifactRecord) -> dict[str, object]:
    """One artifact version as listed by ``ideamine artifacts --json``."""
    return {
        "id": record.id,
        "type": record.type,
        "version": record.version,
        "phase": record.phase,
        "attempt": record.attempt,
        "content_hash": record.content_hash,
        "provenance": dict(record.provenance),
        "created_at": record.created_at,
    }


def quality_view(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Gate verdicts for ``status``: each phase's latest (``passed 0.98/0.80``, ``waived``),
    and the evidence gaps of the latest verdicts (``phase: gap``)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for row in history:
        if row["phase"] not in latest or row["attempt"] >= latest[row["phase"]]["attempt"]:
            latest[row["phase"]] = row
    shown = {
        phase: ("waived" if row["waiver"] else "passed" if row["passed"] else "failed")
        + f" {row['score']:.2f}/{row['threshold']:.2f}"
        for phase, row in latest.items()
    }
    gaps = [f"{phase}: {gap}" for phase, row in latest.items() for gap in row["evidence_gaps"]]
    return {"latest": shown, "evidence_gaps": gaps, "verdicts": len(history)}
