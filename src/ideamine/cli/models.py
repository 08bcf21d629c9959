"""``ideamine replay RUN``: re-execute a run from the call cache, with no provider call.

Replay starts a new run pinned to the original's config snapshot, idea, constraints and
``--model`` override, and drives it with providers in replay mode: every model call must be
answered by the call cache, and a miss fails the task loudly (``ReplayMissError``) instead of
reaching a provider. Tool evidence is replayed too: callable agents (the tool runners)
return the original run's recorded outputs (``ideamine.runtime.replayed``). At the end it
compares the latest artifact of every type, hash by hash, with the original run's and exits 1
unless they are identical.
"""

from __future__ import annotations

from pathlib import Path

import click

from ideamine import service
from ideamine.cli.app import EXIT_FAILED, STORE_OPTION, Exit, console, escape, runs_async
from ideamine.config.compiled import run_pipeline
from ideamine.engine.states import RunStatus
from ideamine.llm.registry import Providers
from ideamine.runtime.replayed import REPLAY_OF
from ideamine.runtime.runner import DEFAULT_CONCURRENCY, Runner
from ideamine.stores.base import Store
from ideamine.stores.callcache import call_cache_for
from ideamine.stores.options import RunOptions

__all__ = ["latest_artifact_hashes", "replay"]


async def latest_artifact_hashes(store: Store, run_id: str) -> dict[str, str]:
    """The content hash of the latest version of each artifact type of a run."""
    latest: dict[str, tuple[int, str]] = {}
    for record in await store.artifacts(run_id):
        if record.type not in latest or record.version > latest[record.type][0]:
            latest[record.type] = (record.version, record.content_hash)
    return {kind: digest for kind, (_, digest) in sorted(latest.items())}


@click.command()
@click.argument("run_id")
@STORE_OPTION
@click.option(
    "--concurrency", type=click.IntRange(1, 1024), default=DEFAULT_CONCURRENCY, show_default=True
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the verdict.")
@runs_async
async def replay(run_id: str, store_ref: str | None, concurrency: int, quiet: bool) -> None:
    """Re-execute RUN_ID from the call cache (no provider is called) and check that every
    artifact comes out byte for byte identical."""
    store = await service.open_store(store_ref, create=False)
    try:
        source = await store.get_run(run_id)
        override = await call_cache_for(store).run_model(run_id)
        pipeline = (await run_pipeline(store, run_id)).with_model(override)
        record = await service.create_run(
            store,
            pipeline,
            source.idea,
            constraints=source.constraints,
            source=source.source,
            config_dir=Path(source.config_dir) if source.config_dir else None,
            project=source.project,
            options={**await RunOptions(store).get(run_id), REPLAY_OF: run_id},
        )
        if override:
            await call_cache_for(store).pin_run_model(record.id, override)
        if not quiet:
            console.print(
                f"replaying run [bold]{run_id}[/] as run [bold]{record.id}[/] from the call "
                "cache (no provider is called; a cache miss fails the run)"
            )
        runner = Runner(store, pipeline, concurrency=concurrency, providers=Providers(replay=True))
        final = await runner.drive(record.id)
        await _verdict(store, run_id, record.id, final.status, final.error)
    finally:
        await store.close()


async def _verdict(
    store: Store, original: str, copy: str, status: RunStatus, error: str | None
) -> None:
    """Print how the replay compares with the original; exit 1 unless identical."""
    before = await latest_artifact_hashes(store, original)
    after = await latest_artifact_hashes(store, copy)
    differ = sorted(
        kind for kind in before.keys() | after.keys() if before.get(kind) != after.get(kind)
    )
    if status is RunStatus.COMPLETED and not differ:
        console.print(
            f"[green]replay identical[/]: run {copy} reproduced all {len(after)} artifact "
            f"types of run {original} byte for byte"
        )
        return
    console.print(f"[red]replay differs[/]: run {copy} is {status}")
    if error:
        console.print(f"[red]reason:[/] {escape(error)}")
    if differ:
        console.print(f"  artifact types that differ: {', '.join(differ)}")
    raise Exit(EXIT_FAILED)
