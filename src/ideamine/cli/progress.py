"""Live progress of a run: a table on a terminal, one line per phase change otherwise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from rich.live import Live
from rich.table import Table

from ideamine.cli.app import console, escape, made
from ideamine.cli.views import run_view
from ideamine.config.model import PipelineSpec
from ideamine.stores.base import Store

__all__ = ["watch"]

REFRESH_SECONDS = 0.25
_STYLE = {
    "passed": "green",
    "running": "yellow",
    "ready": "cyan",
    "failed": "red",
    "waiting": "dim",
}


async def _view(store: Store, pipeline: PipelineSpec, run_id: str) -> dict[str, object]:
    run, phases, tasks = await store.run_rows(run_id)
    calls = await store.model_calls(run_id)
    return run_view(run, phases, tasks, calls, [spec.name for spec in pipeline.phases])


def _table(view: Mapping[str, object], started: float) -> Table:
    table = Table(
        title=f"run {view['id']} · {view['status']} · {time.monotonic() - started:.1f} s"
        f" · {view['tokens']:,} tokens",
        title_justify="left",
    )
    for column in ("phase", "status", "tasks", "attempt"):
        table.add_column(column)
    phases: Sequence[Mapping[str, object]] = view["phases"]  # type: ignore[assignment]
    for phase in phases:
        status = str(phase["status"])
        tasks = f"{phase['tasks_succeeded']}/{phase['tasks_total']}" if phase["tasks_total"] else ""
        table.add_row(
            str(phase["phase"]),
            f"[{_STYLE.get(status, 'white')}]{status}[/]",
            tasks,
            str(phase["attempt"] or ""),
        )
    return table


async def watch(
    store: Store, pipeline: PipelineSpec, run_id: str, driver: asyncio.Task[object]
) -> None:
    """Show progress until ``driver`` finishes (its result or error is the caller's)."""
    started = time.monotonic()
    if console.is_terminal:
        with Live(console=made(console), auto_refresh=False, transient=False) as live:
            while not driver.done():
                live.update(_table(await _view(store, pipeline, run_id), started), refresh=True)
                await asyncio.wait([driver], timeout=REFRESH_SECONDS)
            live.update(_table(await _view(store, pipeline, run_id), started), refresh=True)
        return
    seen: dict[str, str] = {}
    while True:
        finished = driver.done()
        view = await _view(store, pipeline, run_id)
        phases: Sequence[Mapping[str, object]] = view["phases"]  # type: ignore[assignment]
        for phase in phases:
            status = str(phase["status"])
            if status != "waiting" and seen.get(str(phase["phase"])) != status:
                seen[str(phase["phase"])] = status
                name = escape(str(phase["phase"]))
                console.print(
                    f"{time.monotonic() - started:7.2f}s  {name:<13} {status:<8} tasks "
                    f"{phase['tasks_succeeded']}/{phase['tasks_total']}"
                )
        if finished:
            return
        await asyncio.wait([driver], timeout=REFRESH_SECONDS)
