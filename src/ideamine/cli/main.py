"""The ``ideamine`` command line. Exit codes: 0 ok, 1 run failed or chain broken,
2 usage/config/idea error or unknown run, 3 store unavailable, 130 interrupted, 141 output
closed early (``| head``)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ideamine import service
from ideamine.cli import ops, reading
from ideamine.cli.app import (
    CONFIG_OPTION,
    EXIT_FAILED,
    JSON_OPTION,
    STORE_OPTION,
    Exit,
    Lazy,
    LazyGroup,
    console,
    echo,
    err,
    escape,
    print_json,
    runs_async,
)
from ideamine.engine.states import RunStatus
from ideamine.errors import UsageError
from ideamine.runtime import DEFAULT_CONCURRENCY
from ideamine.runtime.collector import pace_collector, skip_collection_at_exit
from ideamine.stores.base import Store

if TYPE_CHECKING:
    from ideamine.config.model import PipelineSpec
    from ideamine.runtime.runner import Runner

# The configuration, agent and runtime stack is imported by the commands that run or plan
# (`run`, `resume`, `plan`, `config check`), so the others start without it.

__all__ = ["cli", "main"]

COMPLIANCE = ("GDPR", "SOC2", "HIPAA", "PCI-DSS", "ISO27001")

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
    epilog=(
        "\b\nStart with:\n"
        '  ideamine run "a marketplace where local farmers sell to restaurants"\n'
        "  ideamine status                    the newest run's phases, gates and budgets\n"
        "  ideamine dossier RUN_ID --format html -o dossier.html\n"
        "Each command's options: ideamine COMMAND --help (reference: docs/cli.md)."
    ),
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
    skip_collection_at_exit()
    _warn_misspelt_environment()
    cli()


def _warn_misspelt_environment() -> None:
    """Warn about an ``IDEAMINE_*`` variable that nearly spells one IdeaMine reads, which
    would otherwise be ignored in silence."""
    from ideamine.cli.environment import misspelt  # noqa: PLC0415

    for name, meant in misspelt(os.environ):
        err.print(
            f"[yellow]warning:[/] ${escape(name)} is not read by IdeaMine "
            f"(hint: did you mean ${meant}?)",
            soft_wrap=True,
        )


for _command in (
    ops.worker,
    ops.pause,
    ops.cancel,
    ops.retry_phase,
    ops.db,
    reading.status,
    reading.runs,
    reading.events,
    reading.artifacts,
    reading.verify,
):
    cli.add_command(_command)


async def _finish_drive(
    store: Store, pipeline: PipelineSpec, runner: Runner, run_id: str, quiet: bool
) -> None:
    driver: asyncio.Task[object] = asyncio.create_task(runner.drive(run_id))
    if quiet:
        await asyncio.wait([driver])
    else:
        from ideamine.cli.progress import watch  # noqa: PLC0415  (rich's live display)

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
    from ideamine.config.loader import load_pipeline  # noqa: PLC0415
    from ideamine.runtime.runner import Runner  # noqa: PLC0415

    text = service.read_idea_file(idea_file) if idea_file else str(idea)
    text = service.check_idea(text)
    config_dir = service.config_folder(config_dir)
    pipeline = load_pipeline(config_dir).with_model(model)
    _warn_unread(config_dir, pipeline)
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
            echo(record.id)
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
        from ideamine.runtime.runner import Runner  # noqa: PLC0415

        runner = Runner(store, prepared.pipeline, concurrency=concurrency)
        await _finish_drive(store, prepared.pipeline, runner, run_id, quiet)
    finally:
        await store.close()


def _warn_unread(config_dir: Path | None, pipeline: PipelineSpec) -> int:
    """Warn on stderr about each YAML file of the ``--config`` folder that loading
    ``pipeline`` did not read (a misspelt name, an agent no phase lists); how many."""
    if config_dir is None:
        return 0
    from ideamine.config.unread import unread_files  # noqa: PLC0415

    problems = unread_files(config_dir, pipeline)
    for problem in problems:
        err.print(f"[yellow]warning:[/] {escape(str(problem))}", soft_wrap=True)
    return len(problems)


@cli.command()
@CONFIG_OPTION
@JSON_OPTION
@runs_async
async def plan(config_dir: Path | None, as_json: bool) -> None:
    """Show levels, critical path and an upper-bound forecast before running."""
    from ideamine.config.loader import load_pipeline  # noqa: PLC0415
    from ideamine.engine.forecast import forecast  # noqa: PLC0415

    config_dir = service.config_folder(config_dir)
    pipeline = load_pipeline(config_dir)
    _warn_unread(config_dir, pipeline)
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
    from rich.table import Table  # noqa: PLC0415  (plan only: not at every start)

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


@cli.group()
def config() -> None:
    """Inspect and validate configuration."""


@config.command("check")
@click.argument("config_dir", required=False, type=click.Path(path_type=Path))
@runs_async
async def config_check(config_dir: Path | None) -> None:
    """Validate the shipped defaults overlaid with CONFIG_DIR."""
    from ideamine.config.loader import load_pipeline  # noqa: PLC0415

    config_dir = service.config_folder(config_dir)
    pipeline = load_pipeline(config_dir)
    service.check_agents(pipeline)
    unread = _warn_unread(config_dir, pipeline)
    console.print(
        f"[green]configuration OK[/]: {len(pipeline.phases)} phases, "
        f"{len(pipeline.agents)} agents, manifest {pipeline.manifest_hash[:12]}"
        + (f"; {unread} file(s) of the folder not read (warnings above)" if unread else "")
    )
