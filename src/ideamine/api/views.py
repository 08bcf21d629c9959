"""JSON bodies of API responses: the CLI's ``--json`` views (``ideamine.cli.views``) plus
what the API adds (project, progress, budgets, links). Field names are a stable interface."""

from __future__ import annotations

from dataclasses import asdict

from ideamine.cli.views import run_summary, run_view
from ideamine.service_api import RunDetail
from ideamine.stores.records import RunRecord

__all__ = ["run_detail_view", "run_links", "run_list_view"]


def run_links(run_id: str) -> dict[str, str]:
    base = f"/runs/{run_id}"
    return {
        "self": base,
        "events": f"{base}/events",
        "stream": f"{base}/events/stream",
        "artifacts": f"{base}/artifacts",
        "dossier": f"{base}/dossier?format=html",
        "dashboard": f"/dashboard/runs/{run_id}",
    }


def run_list_view(detail: RunDetail) -> dict[str, object]:
    """A run as listed by ``GET /runs``: ``ideamine runs --json`` plus progress and cost."""
    return {
        **run_summary(detail.run),
        **_extra(detail.run),
        "progress": round(detail.progress, 4),
        "tokens": detail.tokens,
        "cost_usd": detail.cost_usd,
    }


def run_detail_view(detail: RunDetail) -> dict[str, object]:
    """A run as ``GET /runs/{id}`` returns it: ``ideamine status --json`` plus budgets."""
    view = run_view(detail.run, detail.phases, detail.tasks, detail.calls, detail.order)
    budgets = [asdict(b) for b in detail.budgets]
    return {
        **view,
        **_extra(detail.run),
        "progress": round(detail.progress, 4),
        "budgets": {
            "phases": budgets,
            "tokens_used": detail.tokens,
            "tokens_budget": sum(b.tokens_budget for b in detail.budgets),
            "usd_used": detail.cost_usd,
            "usd_budget": round(sum(b.usd_budget for b in detail.budgets), 6),
        },
        "links": run_links(detail.run.id),
    }


def _extra(run: RunRecord) -> dict[str, object]:
    return {
        "project": run.project,
        "source": run.source,
        "driver": run.driver,
        "constraints": dict(run.constraints),
    }
