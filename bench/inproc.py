"""W1 and W2 in one process (the embedded mode: ``Runner.drive`` on a SQLite file).

One invocation is one round: a warm-up then timed runs, each a new run on the same store.
Prints one ``RESULT`` line. Usage::

    python -m bench.inproc w1 --dir DIR [--reps 5]
    python -m bench.inproc w2 --dir DIR --n 2000 [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench import configs, proc
from bench.shape import FANOUT_PHASE, expected_final, fanout_expected, result_type
from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.engine.states import RunStatus
from ideamine.runtime.collector import pace_collector
from ideamine.runtime.runner import Runner
from ideamine.stores.base import Store

CONCURRENCY = 64


async def final_artifact(store: Store, run_id: str, phase: str) -> object:
    """The content of the latest artifact ``phase`` wrote in ``run_id``."""
    records = [a for a in await store.artifacts(run_id) if a.type == result_type(phase)]
    latest = max(records, key=lambda a: a.version)
    return await store.blob(latest.content_hash)


def fanout_ok(content: object, n: int) -> bool:
    """W2's check: the merged artifact holds every index once."""
    value = content["value"] if isinstance(content, dict) else {}
    return len(value) == n and sum(value.values()) == fanout_expected(n)


async def one_run(
    store: Store, pipeline: PipelineSpec, config: Path, workload: str, n: int
) -> tuple[float, float]:
    """Create and drive one run; (wall seconds, of which create_run). Raises if incorrect."""
    started = time.perf_counter()
    run = await service.create_run(
        store,
        pipeline,
        f"benchmark {workload} run",
        constraints={},
        source="bench",
        config_dir=config,
    )
    created = time.perf_counter()
    done = await Runner(store, pipeline, concurrency=CONCURRENCY).drive(run.id)
    wall = time.perf_counter() - started
    if done.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"run {run.id} ended {done.status}: {done.error}")
    if workload == "w1":
        ok = await final_artifact(store, run.id, "beta") == expected_final()
    else:
        ok = fanout_ok(await final_artifact(store, run.id, FANOUT_PHASE), n)
    if not ok:
        raise RuntimeError(f"run {run.id}: the final artifact differs from the expected value")
    return wall, created - started


async def main(args: argparse.Namespace) -> None:
    folder = Path(args.dir)
    if args.workload == "w1":
        config = configs.w1_pipeline(folder / "config")
    else:
        config = configs.w2_pipeline(folder / "config", args.n)
    loaded = time.perf_counter()
    pipeline = load_pipeline(config)
    load_s = time.perf_counter() - loaded
    store = await service.open_store(args.store or str(folder / "ideamine.db"))
    walls, creates = [], []
    try:
        for rep in range(args.warmup + args.reps):
            wall, create = await one_run(store, pipeline, config, args.workload, args.n)
            if rep >= args.warmup:
                walls.append(wall)
                creates.append(create)
    finally:
        await store.close()
    proc.emit(
        workload=args.workload,
        store="sqlite" if not args.store else "postgresql",
        n=args.n if args.workload == "w2" else None,
        walls=walls,
        create_s=creates,
        load_pipeline_s=load_s,
        rss_mb=proc.vm_hwm_mb(),
        ok=True,
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc")
    parser.add_argument("workload", choices=["w1", "w2"])
    parser.add_argument("--dir", required=True, help="scratch folder (config, store file)")
    parser.add_argument("--store", help="a postgresql:// URL instead of a SQLite file in --dir")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    pace_collector()  # as `ideamine run` does
    asyncio.run(main(parse()))
