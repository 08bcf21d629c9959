"""The ``ideamine`` command line. Exit codes: 0 ok, 1 run failed or chain broken,
2 usage/config/idea error or unknown run, 3 store unavailable, 130 interrupted."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ideamine import service
from ideamine.cli import ops
from ideamine.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    Exit,
    Lazy,
    LazyGroup,
    console,
    err,
    print_json,
    runs_async,
)
from ideamine.cli.progress import watch
from ideamine.cli.views import (
    artifact_view,
    budget_lines,
    budget_view,
    event_view,
    quality_view,
    run_summary,
    run_view,
)
from ideamine.config.loader import load_pinned, load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.engine.forecast import forecast
from ideamine.engine.states import RunStatus
from ideamine.errors import UsageError
from ideamine.runtime.collector import pace_collector
from ideamine.runtime.identity import owner_alive
from ideamine.runtime.runner import DEFAULT_CONCURRENCY, Runner
from ideamine.stores.base import Store
from ideamine.stores.records import RunRecord

__all__ = ["cli", "main"]

COMPLIANCE = ("GDPR", "SOC2", "HIPAA", "PCI-DSS", "ISO27001")

STORE_OPTION = click.option(
    "--store",
    "store_ref",
    metavar="PATH|URL",
    default=None,
    help="A SQLite file or postgresql://… (default ./ideamine.db or $IDEAMINE_STORE).",
)
CONFIG_OPTION = click.option(
    "--config",
    "config_dir",
    metavar="DIR",
    default=None,
    type=click.Path(path_type=Path),
    help="Folder overlaying the shipped config ($IDEAMINE_CONFIG).",
)
JSON_OPTION = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print machine-readable JSON (fields documented in docs/cli.md).",
)


# Imported when used (the web framework, the evaluation stack, the quality and dossier
# services), not at every start; `--help` lists them by their summary.
LAZY_COMMANDS = {
    "serve": Lazy(
        "ideamine.cli.serve:serve",
        "Serve the HTTP API (OpenAPI at /openapi.json), the dashboard and /metrics.",
    ),
    "eval": Lazy(
        "ideamine.cli.evaluate:eval_command",
        "Run the pipeline on each idea of FILE.csv and score what it made: completeness,"
        " executability, consistency, quality, specificity, validity, tokens, cost and time.",
    ),
    "dossier": Lazy("ideamine.cli.dossier:dossier", "Compile, export and verify release dossiers."),
    "replay": Lazy(
        "ideamine.cli.models:replay",
        "Re-execute RUN_ID from the call cache (no provider is called) and check that every"
        " artifact comes out byte for byte identical.",
    ),
    "answer": Lazy(
        "ideamine.cli.quality:answer",
        "Answer RUN_ID's open question QUESTION_ID with TEXT (each question on its own).",
    ),
    "gates": Lazy(
        "ideamine.cli.quality:gates",
        "Show every gate verdict of RUN_ID: scores, reasons, evidence gaps and waivers.",
    ),
    "questions": Lazy(
        "ideamine.cli.quality:questions",
        "List RUN_ID's questions that wait for an answer (runs started with --ask).",
    ),
    "waive": Lazy(
        "ideamine.cli.quality:waive",
        "Pass PHASE's failed gate of RUN_ID with a justification and an expiry.",
    ),
}


@click.group(
    cls=LazyGroup,
    # the web framework and the evaluation stack load only for the commands that need them
    lazy=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="ideamine")
def cli() -> None:
    """IdeaMine turns a software idea into reviewed product artifacts, durably."""


def main() -> None:
    """Console-script entry point. ``IDEAMINE_LOG=debug`` shows the runtime's log."""
    level = os.environ.get("IDEAMINE_LOG", "warning").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format="ideamine: %(levelname)s: %(message)s",
    )
    pace_collector()
    cli()


for _command in (ops.worker, ops.pause, ops.cancel, ops.retry_phase, ops.db):
    cli.add_command(_command)


async def _finish_drive(
    store: Store, pipeline: PipelineSpec, runner: Runner, run_id: str, quiet: bool
) -> None:
    driver: asyncio.Task[object] = asyncio.create_task(runner.drive(run_id))
    if quiet:
        await asyncio.wait([driver])
    else:
        await watch(store, pipeline, run_id, driver)
    driver.result()
    run = await store.get_run(run_id)
    await _summary(store, run_id, quiet)
    if run.status is not RunStatus.COMPLETED:
        raise Exit(EXIT_FAILED)


async def _summary(store: Store, run_id: str, quiet: bool) -> None:
    run = await store.get_run(run_id)
    artifacts = await store.artifacts(run_id)
    calls = await store.model_calls(run_id)
    tokens = sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls)
    colour = "green" if run.status is RunStatus.COMPLETED else "red"
    console.print(
        f"run [bold]{run.id}[/] [{colour}]{run.status}[/]: "
        f"{len({a.type for a in artifacts})} artifact types, {len(calls)} model calls, "
        f"{tokens:,} tokens, ${sum(float(str(c['cost_usd'])) for c in calls):.4f}"
    )
    if run.error:
        console.print(f"[red]reason:[/] {escape(run.error)}")
    if not quiet:
        console.print(f"  artifacts: ideamine artifacts {run.id} [--export DIR]")
        console.print(f"  ledger:    ideamine events {run.id}   (verify: ideamine verify {run.id})")
        if run.status is not RunStatus.COMPLETED:
            console.print(f"  resume:    ideamine resume {run.id}")


@cli.command()
@click.argument("idea", required=False)
@click.option(
    "--file",
    "idea_file",
    type=click.Path(path_type=Path),
    help="Read the idea from a UTF-8 text file.",
)
@STORE_OPTION
@CONFIG_OPTION
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Tasks run at once in this process.",
)
@click.option(
    "--project",
    metavar="NAME",
    help="Group this run with earlier runs of the "
    "same product (release versions are derived within a project).",
)
@click.option("--budget-usd", type=click.FloatRange(min=0), help="Constraint: product budget.")
@click.option("--timeline-days", type=click.IntRange(min=1), help="Constraint: time to launch.")
@click.option(
    "--compliance",
    multiple=True,
    type=click.Choice(COMPLIANCE),
    help="Constraint: a regime to comply with (repeatable).",
)
@click.option(
    "--tech",
    "tech_preferences",
    multiple=True,
    metavar="NAME",
    help="Constraint: a preferred technology (repeatable).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option(
    "--detach",
    is_flag=True,
    help="Only submit the run and print its id; `ideamine worker` processes carry it out.",
)
@click.option(
    "--model", envvar="IDEAMINE_MODEL", metavar="PROVIDER:MODEL", help="Every agent on this model."
)
@click.option(
    "--ask",
    is_flag=True,
    help="Pause for a person's answers to open questions (`ideamine answer`) instead of "
    "going on with recorded assumptions.",
)
@click.option(
    "--strict-evidence",
    is_flag=True,
    help="Fail a gate on any evidence gap (e.g. no vulnerability scan) instead of warning.",
)
@click.option(
    "--advisories",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    envvar="IDEAMINE_ADVISORIES",
    help="A folder of OSV advisories (JSON) to scan the generated code's dependencies against.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="IDEAMINE_DATA_DIR",
    help="Where run workspaces live [default: <store file>.d beside a SQLite store].",
)
@runs_async
async def run(
    idea: str | None,
    idea_file: Path | None,
    store_ref: str | None,
    config_dir: Path | None,
    concurrency: int,
    project: str | None,
    budget_usd: float | None,
    timeline_days: int | None,
    compliance: tuple[str, ...],
    tech_preferences: tuple[str, ...],
    quiet: bool,
    detach: bool,
    model: str | None,
    ask: bool,
    strict_evidence: bool,
    advisories: Path | None,
    data_dir: Path | None,
) -> None:
    """Run the pipeline on IDEA (or --file) to completion (or submit it with --detach)."""
    if (idea is None) == (idea_file is None):
        raise UsageError(
            "give the idea as an argument or with --file, not both or neither",
            hint='ideamine run "a marketplace for local farmers"',
        )
    text = service.read_idea_file(idea_file) if idea_file else str(idea)
    text = service.check_idea(text)
    config_dir = service.config_folder(config_dir)
    pipeline = load_pipeline(config_dir).with_model(model)
    service.check_agents(pipeline)
    advisories = advisories or service.configured_advisories(pipeline, config_dir)
    if advisories is not None:
        from ideamine.tools.osv import load_advisories  # noqa: PLC0415  (only with advisories)

        load_advisories(advisories)  # a malformed advisory is refused before the run is stored
    store = await service.open_store(store_ref)
    try:
        constraints = _constraints(budget_usd, timeline_days, compliance, tech_preferences)
        record = await service.create_run(
            store,
            pipeline,
            text,
            constraints=constraints,
            source="cli",
            config_dir=config_dir,
            project=project,
            options=_options(ask, strict_evidence, advisories),
        )
        if detach:
            click.echo(record.id)
            return
        if not quiet:
            model = pipeline.default_model
            note = (
                " (deterministic templates; see docs/models.md)"
                if model.startswith("offline:")
                else ""
            )
            console.print(f"run [bold]{record.id}[/] started; default model [cyan]{model}[/]{note}")
        runner = Runner(store, pipeline, concurrency=concurrency, data_dir=data_dir)
        await _finish_drive(store, pipeline, runner, record.id, quiet)
    finally:
        await store.close()


def _options(ask: bool, strict_evidence: bool, advisories: Path | None) -> dict[str, object]:
    """The run options that were given (kept with the run, read by every worker)."""
    options: dict[str, object] = {}
    if ask:
        options["ask"] = True
    if strict_evidence:
        options["strict_evidence"] = True
    if advisories is not None:
        options["advisories"] = str(advisories.resolve())
    return options


def _constraints(
    budget_usd: float | None,
    timeline_days: int | None,
    compliance: tuple[str, ...],
    tech: tuple[str, ...],
) -> dict[str, object]:
    """The constraint flags that were given, as the run's constraints."""
    given = (
        ("budget_usd", budget_usd),
        ("timeline_days", timeline_days),
        ("compliance", list(compliance)),
        ("tech_preferences", list(tech)),
    )
    return {key: value for key, value in given if value not in (None, [])}


@cli.command()
@click.argument("run_id")
@STORE_OPTION
@click.option("--migrate", is_flag=True, help="Adopt the current config even if it changed.")
@click.option(
    "--concurrency", type=click.IntRange(1, 1024), default=DEFAULT_CONCURRENCY, show_default=True
)
@click.option("--quiet", "-q", is_flag=True)
@click.option("--detach", is_flag=True, help="Only reopen the run; workers carry it out.")
@click.option(
    "--add-budget",
    "add_budget",
    metavar="tokens=N,usd=X,…",
    help="Add to the run's budgets before resuming (any of tokens, usd, tool_minutes, "
    "wallclock_minutes), e.g. after it paused on budget.exceeded.",
)
@runs_async
async def resume(
    run_id: str,
    store_ref: str | None,
    migrate: bool,
    concurrency: int,
    quiet: bool,
    detach: bool,
    add_budget: str | None,
) -> None:
    """Resume RUN_ID after a crash, a failure or a pause; finished tasks are not run again."""
    addition = None if add_budget is None else service.parse_budget_addition(add_budget)
    store = await service.open_store(store_ref, create=False)
    try:
        if addition is not None:
            total = await service.add_budget(store, run_id, addition)
            if not quiet:
                shown = ", ".join(f"{key} +{value:g}" for key, value in addition.items())
                whole = ", ".join(f"{key} {value:g}" for key, value in total.items())
                console.print(f"budget of run [bold]{run_id}[/]: {shown} (added in all: {whole})")
        prepared = await service.prepare_resume(store, run_id, migrate=migrate)
        if not quiet:
            console.print(
                f"resuming run [bold]{run_id}[/]: {prepared.reclaimed} task(s) reclaimed "
                "from a dead process or reopened after a failure"
            )
        if detach:
            return
        runner = Runner(store, prepared.pipeline, concurrency=concurrency)
        await _finish_drive(store, prepared.pipeline, runner, run_id, quiet)
    finally:
        await store.close()


@cli.command()
@CONFIG_OPTION
@JSON_OPTION
@runs_async
async def plan(config_dir: Path | None, as_json: bool) -> None:
    """Show levels, critical path and an upper-bound forecast before running."""
    pipeline = load_pipeline(config_dir)
    result = forecast(pipeline)
    if as_json:
        print_json(
            {
                "levels": [list(level) for level in result.levels],
                "critical_path": list(result.critical_path),
                "minutes": result.minutes,
                "sequential_minutes": result.sequential_minutes,
                "tokens": result.tokens,
                "usd": result.usd,
                "phases": [
                    {
                        "phase": p.phase,
                        "level": p.level + 1,
                        "minutes": p.minutes,
                        "tokens": p.tokens,
                        "usd": p.usd,
                    }
                    for p in result.phases
                ],
            }
        )
        return
    table = Table(
        title=f"{pipeline.name} {pipeline.version}: {len(pipeline.phases)} phases "
        f"in {len(result.levels)} levels",
        title_justify="left",
    )
    for column in ("level", "phases", "minutes (budget)", "tokens (max)"):
        table.add_column(column)
    by_phase = {p.phase: p for p in result.phases}
    for index, level in enumerate(result.levels):
        table.add_row(
            str(index + 1),
            " ∥ ".join(level),
            f"{max(by_phase[n].minutes for n in level):g}",
            f"{sum(by_phase[n].tokens for n in level):,}",
        )
    console.print(table)
    console.print(f"critical path: {' → '.join(result.critical_path)}")
    console.print(
        f"forecast (upper bounds from budgets): {result.minutes:g} min on the critical "
        f"path (vs {result.sequential_minutes:g} min one phase at a time), "
        f"{result.tokens:,} tokens, ${result.usd:.2f} at the configured prices"
    )


@cli.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@JSON_OPTION
@runs_async
async def status(run_id: str | None, store_ref: str | None, as_json: bool) -> None:
    """Show a run's phases (the newest run when RUN_ID is left out)."""
    store = await service.open_store(store_ref, create=False)
    try:
        if run_id is None:
            runs = await store.list_runs(1)
            if not runs:
                raise UsageError(
                    "this store holds no runs yet", hint='start one with ideamine run "your idea"'
                )
            run_id = runs[0].id
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
        f"${float(str(view['cost_usd'])):.4f} · {escape(str(view['idea'])[:80])}"
    )
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
    try:
        pipeline = load_pinned(await store.run_config(run.id))
    except UsageError:
        return sorted(
            key[len("phases/") : -len(".yaml")] for key in run.manifest if key.startswith("phases/")
        )
    return [spec.name for spec in pipeline.phases]


@cli.command()
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
    table = Table()
    for column in ("id", "status", "created", "idea"):
        table.add_column(column)
    for r in records:
        table.add_row(r.id, r.status.value, r.created_at[:19], escape(r.idea[:60]))
    console.print(table)


@cli.command()
@click.argument("run_id")
@STORE_OPTION
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the run ends.")
@click.option("--after", type=click.IntRange(0), default=0, help="Only events after this id.")
@JSON_OPTION
@runs_async
async def events(
    run_id: str, store_ref: str | None, follow: bool, after: int, as_json: bool
) -> None:
    """Print a run's ledger events (JSON Lines with --json)."""
    store = await service.open_store(store_ref, create=False)
    try:
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
        click.echo(json.dumps(view, ensure_ascii=False, sort_keys=True))
        return
    payload = view["payload"]
    detail = payload.get("key") or payload.get("reason") or ""  # type: ignore[attr-defined]
    console.print(
        f"{view['id']:>6} {str(view['at'])[11:23]} {view['type']:<16} "
        f"{view['phase'] or '':<12} {escape(str(detail))}"
    )


@cli.command()
@click.argument("run_id")
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
    run_id: str,
    store_ref: str | None,
    show_type: str | None,
    export_dir: Path | None,
    as_json: bool,
) -> None:
    """List a run's artifacts, print one with --show TYPE, or write them all with --export."""
    store = await service.open_store(store_ref, create=False)
    try:
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
    table = Table()
    for column in ("type", "version", "phase", "agents", "sha256"):
        table.add_column(column)
    for r in records:
        agents = ", ".join(r.provenance.get("agents", []))  # type: ignore[arg-type]
        table.add_row(r.type, str(r.version), r.phase, agents, r.content_hash[:12])
    console.print(table)


@cli.command()
@click.argument("run_id")
@STORE_OPTION
@runs_async
async def verify(run_id: str, store_ref: str | None) -> None:
    """Check RUN_ID's ledger hash chain; exit 1 at the first broken link."""
    store = await service.open_store(store_ref, create=False)
    try:
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


@cli.group()
def config() -> None:
    """Inspect and validate configuration."""


@config.command("check")
@click.argument("config_dir", required=False, type=click.Path(path_type=Path))
@runs_async
async def config_check(config_dir: Path | None) -> None:
    """Validate the shipped defaults overlaid with CONFIG_DIR."""
    pipeline = load_pipeline(config_dir)
    service.check_agents(pipeline)
    console.print(
        f"[green]configuration OK[/]: {len(pipeline.phases)} phases, "
        f"{len(pipeline.agents)} agents, manifest {pipeline.manifest_hash[:12]}"
    )
