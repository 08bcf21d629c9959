"""The commands that read a run: ``status``, ``runs``, ``events``, ``artifacts``, ``verify``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ideamine import service
from ideamine.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    JSON_OPTION,
    STORE_OPTION,
    Exit,
    chosen_run,
    clip,
    console,
    echo,
    err,
    escape,
    print_json,
    runs_async,
)
from ideamine.cli.views import (
    artifact_view,
    budget_lines,
    budget_view,
    event_view,
    quality_view,
    run_summary,
    run_view,
)
from ideamine.engine.states import RunStatus
from ideamine.errors import UsageError
from ideamine.runtime.identity import owner_alive
from ideamine.stores.base import Store
from ideamine.stores.records import RunRecord

__all__ = ["artifacts", "events", "runs", "status", "verify"]


@click.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@JSON_OPTION
@runs_async
async def status(run_id: str | None, store_ref: str | None, as_json: bool) -> None:
    """Show a run's phases (the newest run when RUN_ID is left out)."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id, note=False)  # its first line names the run
        run, phases, tasks = await store.run_rows(run_id)
        order = await _phase_order(store, run)
        view = run_view(run, phases, tasks, await store.model_calls(run_id), order)
        budgets = budget_view(await service.budget_status(store, run))
        view["budgets"] = budgets
        from ideamine import service_quality  # noqa: PLC0415  (status only: not at every start)

        view["gates"] = quality_view(await service_quality.gate_history(store, run_id))
        view["open_questions"] = len(await service_quality.open_questions(store, run_id))
    finally:
        await store.close()
    if as_json:
        print_json(view)
        return
    console.print(
        f"run [bold]{view['id']}[/] {view['status']} · {view['tokens']:,} tokens · "
        f"${float(str(view['cost_usd'])):.4f} · {escape(clip(str(view['idea']), 80))}"
    )
    from rich.table import Table  # noqa: PLC0415  (rich: at the first print, `app.escape`)

    table = Table()
    for column in ("phase", "status", "attempt", "tasks", "gate", "started", "finished"):
        table.add_column(column)
    verdicts = view["gates"]["latest"]  # type: ignore[index]
    for phase in view["phases"]:  # type: ignore[attr-defined]
        table.add_row(
            phase["phase"],
            phase["status"],
            str(phase["attempt"] or ""),
            f"{phase['tasks_succeeded']}/{phase['tasks_total']}",
            verdicts.get(phase["phase"], ""),
            (phase["started_at"] or "")[11:19],
            (phase["finished_at"] or "")[11:19],
        )
    console.print(table)
    for line in budget_lines(budgets):
        console.print(line)
    for gap in view["gates"]["evidence_gaps"]:  # type: ignore[index]
        console.print(f"[yellow]evidence gap[/] {escape(gap)}")
    if view["open_questions"]:
        console.print(
            f"{view['open_questions']} question(s) wait for an answer: ideamine questions {run_id}"
        )
    if view["error"]:
        console.print(f"[red]error:[/] {escape(str(view['error']))}")


async def _phase_order(store: Store, run: RunRecord) -> list[str]:
    """The run's phases in the order of the config it is pinned to (its stored snapshot);
    from its manifest if that snapshot no longer loads."""
    from ideamine.config.compiled import run_pipeline  # noqa: PLC0415

    try:
        pipeline = await run_pipeline(store, run.id)
    except UsageError:
        return sorted(
            key[len("phases/") : -len(".yaml")] for key in run.manifest if key.startswith("phases/")
        )
    return [spec.name for spec in pipeline.phases]


@click.command()
@STORE_OPTION
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@JSON_OPTION
@runs_async
async def runs(store_ref: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    store = await service.open_store(store_ref, create=False)
    try:
        records = await store.list_runs(limit)
    finally:
        await store.close()
    if as_json:
        print_json([run_summary(r) for r in records])
        return
    from rich.table import Table  # noqa: PLC0415  (rich: at the first print, `app.escape`)

    table = Table()
    for column in ("id", "status", "created", "idea"):
        table.add_column(column)
    for r in records:
        table.add_row(r.id, r.status.value, r.created_at[:19], escape(clip(r.idea, 60)))
    console.print(table)


@click.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the run ends.")
@click.option("--after", type=click.IntRange(0), default=0, help="Only events after this id.")
@JSON_OPTION
@runs_async
async def events(
    run_id: str | None, store_ref: str | None, follow: bool, after: int, as_json: bool
) -> None:
    """Print a run's ledger events (JSON Lines with --json).

    RUN_ID defaults to the newest run of the store."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id)
        await store.get_run(run_id)
        last = after
        warned = False
        while True:
            page = await store.events(run_id, after_id=last, limit=1000)
            for event in page:
                _print_event(event_view(event), as_json)
                last = event.id
            if len(page) == 1000:
                continue
            if not follow:
                break
            current = await store.get_run(run_id)
            if current.status not in (RunStatus.CREATED, RunStatus.RUNNING, RunStatus.PAUSED):
                break
            if not warned and current.driver and owner_alive(current.driver) is False:
                warned = True
                err.print(
                    f"(the process that last drove run {run_id} has stopped; workers "
                    f"may still carry it, else `ideamine resume {run_id}` continues it)"
                )
            await store.wait_for_work(0.5)
    finally:
        await store.close()


def _print_event(view: dict[str, object], as_json: bool) -> None:
    if as_json:
        echo(json.dumps(view, ensure_ascii=False, sort_keys=True))
        return
    payload = view["payload"]
    detail = payload.get("key") or payload.get("reason") or ""  # type: ignore[attr-defined]
    console.print(
        f"{view['id']:>6} {str(view['at'])[11:23]} {view['type']:<16} "
        f"{view['phase'] or '':<12} {escape(str(detail))}"
    )


@click.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@click.option("--show", "show_type", metavar="TYPE", help="Print the latest content of TYPE.")
@click.option(
    "--export",
    "export_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Write the latest version of every artifact to DIR/<Type>.json.",
)
@JSON_OPTION
@runs_async
async def artifacts(
    run_id: str | None,
    store_ref: str | None,
    show_type: str | None,
    export_dir: Path | None,
    as_json: bool,
) -> None:
    """List a run's artifacts, print one with --show TYPE, or write them all with --export.

    RUN_ID defaults to the newest run of the store."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id)
        await store.get_run(run_id)
        records = await store.artifacts(run_id)
        if export_dir is not None:
            written = await service.export_artifacts(store, run_id, export_dir)
            console.print(f"wrote {len(written)} files to {escape(str(export_dir))}")
            return
        if show_type:
            matching = [r for r in records if r.type == show_type]
            if not matching:
                known = ", ".join(sorted({r.type for r in records})) or "none yet"
                raise UsageError(
                    f"run {run_id} has no artifact of type {show_type!r}",
                    hint=f"types in this run: {known}",
                )
            print_json(await store.blob(max(matching, key=lambda r: r.version).content_hash))
            return
    finally:
        await store.close()
    if as_json:
        print_json([artifact_view(r) for r in records])
        return
    from rich.table import Table  # noqa: PLC0415  (rich: at the first print, `app.escape`)

    table = Table()
    for column in ("type", "version", "phase", "agents", "sha256"):
        table.add_column(column)
    for r in records:
        agents = ", ".join(r.provenance.get("agents", []))  # type: ignore[arg-type]
        table.add_row(r.type, str(r.version), r.phase, agents, r.content_hash[:12])
    console.print(table)


@click.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@runs_async
async def verify(run_id: str | None, store_ref: str | None) -> None:
    """Check RUN_ID's ledger hash chain; exit 1 at the first broken link.

    RUN_ID defaults to the newest run of the store."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id)
        report = await service.verify_run(store, run_id)
    finally:
        await store.close()
    if report.ok:
        console.print(f"[green]ledger intact[/]: {report.checked} events of run {run_id} verify")
        raise Exit(EXIT_OK)
    err.print(
        f"[red]ledger broken[/] at event {report.broken_at}: {report.reason} "
        f"({report.checked} events before it verify)"
    )
    raise Exit(EXIT_FAILED)
