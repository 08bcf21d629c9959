"""Where W1's time goes: wall time awaited in each store method while ``Runner.drive`` runs
W1 in this process (the SQLite store does its work in threads, which cProfile of the main
thread does not see). Usage: ``python -m bench.storetime [--reps 5]``."""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import configs
from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.runtime.collector import pace_collector
from ideamine.runtime.runner import Runner
from ideamine.stores.sqlite import SqliteStore

TOTALS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

# What a wrapped store method reports when it returns: (its name, started, ended).
Recorder = Callable[[str, float, float], None]


def timed(
    name: str, method: Callable[..., Awaitable[object]], record: Recorder
) -> Callable[..., Awaitable[object]]:
    @functools.wraps(method)
    async def wrapper(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            record(name, started, time.perf_counter())

    return wrapper


def instrument(record: Recorder) -> None:
    """Wrap every public coroutine method of ``SqliteStore`` so that it reports to ``record``."""
    for name, method in inspect.getmembers(SqliteStore, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            setattr(SqliteStore, name, timed(name, method, record))


def _total(name: str, started: float, ended: float) -> None:
    TOTALS[name][0] += 1
    TOTALS[name][1] += ended - started


async def main(reps: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ideamine-storetime-"))
    config = configs.w1_pipeline(folder / "config")
    pipeline = load_pipeline(config)
    store = await service.open_store(str(folder / "ideamine.db"))
    instrument(_total)
    walls = []
    for _ in range(reps):
        started = time.perf_counter()
        run = await service.create_run(
            store, pipeline, "storetime run", constraints={}, source="bench", config_dir=config
        )
        await Runner(store, pipeline, concurrency=64).drive(run.id)
        walls.append(time.perf_counter() - started)
    await store.close()
    print(f"{reps} W1 runs, wall {sum(walls):.3f} s (per run {sum(walls) / reps:.3f} s)")
    print(f"{'store method':24} {'calls/run':>9} {'ms/call':>8} {'s awaited/run':>13}")
    for name, (calls, total) in sorted(TOTALS.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:24} {calls / reps:9.1f} {total / calls * 1000:8.2f} {total / reps:13.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.storetime")
    parser.add_argument("--reps", type=int, default=5)
    pace_collector()  # as `ideamine run` does
    asyncio.run(main(parser.parse_args().reps))
