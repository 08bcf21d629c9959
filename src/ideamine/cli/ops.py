"""Operating runs across processes: workers, signals (pause, cancel, retry a phase) and
explicit migrations. Every command here talks only to the store, so it works the same
whether the run is driven by `ideamine run` on this machine or by workers elsewhere."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from ideamine import service, service_api
from ideamine.cli.app import STORE_OPTION, console, err, escape, runs_async
from ideamine.runtime import DEFAULT_CONCURRENCY
from ideamine.runtime.identity import process_owner
from ideamine.stores.base import Store
from ideamine.stores.records import RunRecord

__all__ = ["cancel", "cleanup", "db", "pause", "retry_phase", "worker"]


@click.command()
@STORE_OPTION
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Tasks this worker runs at once.",
)
@click.option("--name", metavar="NAME", help="A name shown in leases and the ledger.")
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight tasks may finish after SIGTERM before they are handed back.",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.01),
    default=0.5,
    show_default=True,
    help="Seconds between looks at the store when nothing signals work.",
)
@runs_async
async def worker(
    store_ref: str | None, concurrency: int, name: str | None, grace: float, poll: float
) -> None:
    """Work on every live run in the store until SIGTERM or Ctrl-C."""
    store = await service.open_store(store_ref)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    from ideamine.runtime.runner import Runner  # noqa: PLC0415

    owner = process_owner(name)
    runner = Runner(
        store, concurrency=concurrency, owner=owner, poll_seconds=poll, grace_seconds=grace
    )
    err.print(f"worker {escape(owner)} serving {escape(repr(store))} (concurrency {concurrency})")
    try:
        await runner.serve(stop)
    finally:
        await store.close()
    err.print(f"worker {escape(owner)} stopped")


@click.command()
@click.argument("run_id")
@STORE_OPTION
@runs_async
async def pause(run_id: str, store_ref: str | None) -> None:
    """Pause RUN_ID: tasks in flight finish, nothing new starts (resume continues it)."""
    await _signal(store_ref, run_id, service_api.pause_run)


@click.command()
@click.argument("run_id")
@STORE_OPTION
@click.option("--reason", default="cancelled by a person", show_default=True)
@runs_async
async def cancel(run_id: str, store_ref: str | None, reason: str) -> None:
    """Cancel RUN_ID for good; its artifacts so far are kept."""
    await _signal(
        store_ref, run_id, lambda store, rid: service_api.cancel_run(store, rid, reason=reason)
    )


async def _signal(
    store_ref: str | None,
    run_id: str,
    change: Callable[[Store, str], Awaitable[RunRecord]],
) -> None:
    store = await service.open_store(store_ref, create=False)
    try:
        run = await change(store, run_id)
    finally:
        await store.close()
    console.print(f"run {run_id} {run.status}")


@click.command("retry-phase")
@click.argument("run_id")
@click.argument("phase")
@STORE_OPTION
@runs_async
async def retry_phase(run_id: str, phase: str, store_ref: str | None) -> None:
    """Start a new attempt of PHASE in RUN_ID (e.g. after a failure)."""
    store = await service.open_store(store_ref, create=False)
    try:
        attempt = await store.retry_phase(run_id, phase, reason="retry-phase command")
    finally:
        await store.close()
    console.print(
        f"phase {phase} of run {run_id}: attempt {attempt} started; workers, or "
        f"`ideamine resume {run_id}` here, carry it out"
    )


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("migrate")
@STORE_OPTION
@runs_async
async def migrate(store_ref: str | None) -> None:
    """Apply pending schema migrations (commands also do this on first use)."""
    store = await service.open_store(store_ref)
    try:
        version = await store.migrate()
    finally:
        await store.close()
    console.print(f"{escape(repr(store))}: schema version {version}")


@db.command("cleanup")
@STORE_OPTION
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    required=True,
    metavar="DAYS",
    help="Delete finished runs last updated more than DAYS ago.",
)
@click.option(
    "--archive",
    "archive_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="First write each run's ledger to DIR/<run>.events.jsonl.",
)
@click.option(
    "--metrics-older-than",
    "metric_days",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Also delete phase_metrics rows older than DAYS.",
)
@runs_async
async def cleanup(
    store_ref: str | None, days: float, archive_dir: Path | None, metric_days: float | None
) -> None:
    """Retention: delete whole finished runs (never parts of a ledger)."""
    store = await service.open_store(store_ref, create=False)
    try:
        cleaned = await service.cleanup(
            store, days=days, archive_dir=archive_dir, metric_days=metric_days
        )
    finally:
        await store.close()
    console.print(
        f"deleted {len(cleaned.deleted)} run(s)"
        + (f", archived to {escape(str(archive_dir))}" if archive_dir else "")
        + (f"; {cleaned.metrics} phase_metrics row(s)" if metric_days is not None else "")
    )
    if cleaned.changed:
        console.print(
            f"kept {len(cleaned.changed)} run(s) resumed or written to during the cleanup: "
            + ", ".join(cleaned.changed)
        )
