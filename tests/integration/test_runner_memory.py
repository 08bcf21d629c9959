"""A long-lived runner keeps nothing per run once the run leaves ``running``: the upstream,
feedback and content caches, the loop verdicts and the advance leases are dropped, and a
resumed run fills them again (tests/soak found a worker growing with every run)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import yaml
from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus
from ideamine.runtime.runner import Runner
from ideamine.stores.base import Store

DAG = {"intake": [], "ideation": ["intake"], "critique": ["ideation"]}
SETTLE_SECONDS = 60.0


def _config(root: Path, failing_agent: str | None = None) -> Path:
    """The three-phase DAG with a loop in critique; ``failing_agent`` breaks its schema."""
    config = write_callable_pipeline(
        root, DAG, agents_per_phase=2, parallelism={"critique": "iterative"}
    )
    if failing_agent is not None:
        path = config / "agents" / f"{failing_agent}.yaml"
        document = yaml.safe_load(path.read_text())
        document["callable"] = "tests.support.agents:wrong_shape"
        path.write_text(yaml.safe_dump(document))
    return config


async def _create(store: Store, config: Path) -> str:
    run = await service.create_run(
        store, load_pipeline(config), "a farm", constraints={}, source="cli", config_dir=config
    )
    return run.id


def _remembered(runner: Runner) -> set[str]:
    """The run ids anything cached in ``runner`` still belongs to."""
    bundles = runner._bundles
    blobs = bundles.blobs
    keys = [*blobs._contents, *blobs.upstream, *blobs.feedback, *blobs._flights]
    keys += [key for bundle in bundles._by_hash.values() for key in bundle.advancer._loop_checks]
    return {key[0] for key in keys} | set(runner._held) | runner._touched


async def _settled(store: Store, runner: Runner, run_ids: list[str]) -> None:
    """Wait until the runs left ``running`` and the serving runner forgot them."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        runs = [await store.get_run(run_id) for run_id in run_ids]
        if all(run.status.finished for run in runs) and not _remembered(runner):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still remembered after {SETTLE_SECONDS:g} s: {_remembered(runner)}")


def test_driving_runs_one_after_another_leaves_nothing_of_them(tmp_path: Path) -> None:
    """One runner drives a completing and a failing run: after each, nothing of it is kept."""
    passing, failing = _config(tmp_path / "ok"), _config(tmp_path / "bad", "CritiqueAgent1")

    async def go() -> None:
        store = await service.open_store(str(tmp_path / "x.db"))
        try:
            runner = Runner(store)
            for config, status in ((passing, RunStatus.COMPLETED), (failing, RunStatus.FAILED)):
                final = await runner.drive(await _create(store, config))
                assert final.status is status
                assert _remembered(runner) == set()
        finally:
            await store.close()

    asyncio.run(go())


def test_a_serving_worker_forgets_runs_that_finished_and_refills_for_a_resumed_one(
    tmp_path: Path,
) -> None:
    """A worker serves a completing and a failing run and forgets both; the failed phase is
    retried (a second attempt, which reads the gate's feedback), and the worker forgets the
    run again when it fails again."""
    passing, failing = _config(tmp_path / "ok"), _config(tmp_path / "bad", "IdeationAgent0")

    async def go() -> None:
        store = await service.open_store(str(tmp_path / "x.db"))
        try:
            good, bad = await _create(store, passing), await _create(store, failing)
            runner = Runner(store, poll_seconds=0.05)
            stop = asyncio.Event()
            worker = asyncio.create_task(runner.serve(stop))
            await _settled(store, runner, [good, bad])
            await store.retry_phase(bad, "ideation", reason="tried again")
            await _settled(store, runner, [bad])
            stop.set()
            await worker
            _, phases, _ = await store.run_rows(bad)
            assert max(p.attempt for p in phases if p.phase == "ideation") == 2
            assert (await store.get_run(good)).status is RunStatus.COMPLETED
            assert (await store.get_run(bad)).status is RunStatus.FAILED
        finally:
            await store.close()

    asyncio.run(go())
