"""One W1 level, step by step: when each agent of PHASE ended, then each store call and
engine action until the next phase's first agent started (milliseconds from the run's start,
and each store call's own duration). One warm-up run, then the run shown. Usage::

    python -m bench.timeline [--phase prd]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bench.agents
from bench import configs, storetime
from bench.shape import DAG
from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.snapshot import Action
from ideamine.runtime import advance
from ideamine.runtime.collector import pace_collector
from ideamine.runtime.runner import Runner


class Timeline:
    """Time-stamped lines, recorded only while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.start = 0.0
        self.lines: list[tuple[float, str]] = []

    def mark(self, what: str) -> None:
        if self.on:
            self.lines.append((time.perf_counter() - self.start, what))

    def store_call(self, name: str, started: float, ended: float) -> None:
        self.mark(f"    store.{name} {(ended - started) * 1000:.2f} ms")

    def marked(
        self, call: Callable[..., Awaitable[object]], names: Callable[[tuple[object, ...]], str]
    ) -> Callable[..., Awaitable[object]]:
        """``call`` with a line when it begins (``names(args)``: what it carries out) and one
        when it ends."""

        @functools.wraps(call)
        async def wrapper(*args: object, **kwargs: object) -> object:
            named = names(args)
            self.mark(f"  {named} begins")
            try:
                return await call(*args, **kwargs)
            finally:
                self.mark(f"  {named.split()[0]} ends")

        return wrapper


def _action(args: tuple[object, ...]) -> str:
    taken = args[4]  # apply_action(store, pipeline, blobs, run_id, action, …)
    return f"{type(taken).__name__} {getattr(taken, 'phase', '')}"


def _starts(args: tuple[object, ...]) -> str:
    taken: list[Action] = args[4]  # type: ignore[assignment]  # start_phases(…, run_id, starts, …)
    return f"StartPhase {' '.join(getattr(a, 'phase', '') for a in taken)} (with their first tasks)"


def instrument(timeline: Timeline) -> None:
    storetime.instrument(timeline.store_call)
    # the name the advancer calls the actions by (imported into `advance`, not re-exported)
    advance.apply_action = timeline.marked(advance.apply_action, _action)  # type: ignore[attr-defined,assignment]
    advance.start_phases = timeline.marked(advance.start_phases, _starts)  # type: ignore[attr-defined,assignment]
    log_exec = bench.agents.log_exec

    def logged(event: str, key: str) -> None:
        timeline.mark(f"agent {key} {'starts' if event == 'start' else 'ends'}")
        log_exec(event, key)

    bench.agents.log_exec = logged


def window(lines: list[tuple[float, str]], phase: str) -> list[tuple[float, str]]:
    """From ``phase``'s first agent end to the first agent start of a phase after it, or to
    the end of ``phase``'s fan-in when that comes later (its tasks handed out ahead of the
    commit, ``stores.ahead``, start during the fan-in's transaction)."""
    after = tuple(f"agent {name}/" for name, deps in DAG.items() if phase in deps)
    begin = next(
        i
        for i, (_, what) in enumerate(lines)
        if what.startswith(f"agent {phase}/") and what.endswith("ends")
    )
    start = next(
        i
        for i, (_, what) in enumerate(lines)
        if i > begin and what.startswith(after) and what.endswith("starts")
    )
    fanned = next(
        (i for i, (_, what) in enumerate(lines) if i > begin and what == "  FanIn ends"), start
    )
    return lines[begin : max(start, fanned) + 1]


async def main(phase: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ideamine-timeline-"))
    config = configs.w1_pipeline(folder / "config")
    pipeline = load_pipeline(config)
    store = await service.open_store(str(folder / "ideamine.db"))
    timeline = Timeline()
    instrument(timeline)
    try:
        for shown in (False, True):
            run = await service.create_run(
                store, pipeline, "timeline run", constraints={}, source="bench", config_dir=config
            )
            timeline.on, timeline.start = shown, time.perf_counter()
            await Runner(store, pipeline, concurrency=64).drive(run.id)
    finally:
        timeline.on = False
        await store.close()
    shown_lines = window(timeline.lines, phase)
    for at, what in shown_lines:
        print(f"{at * 1000:9.2f}  {what}")
    last_end = max(at for at, what in shown_lines if what.startswith("agent") and "ends" in what)
    first_start = next(at for at, what in shown_lines if what.endswith(" starts"))
    gap = (first_start - last_end) * 1000
    print(f"from the last agent's end to the next phase's first agent start: {gap:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.timeline")
    parser.add_argument("--phase", default="prd", choices=[p for p in DAG if p != "beta"])
    pace_collector()  # as `ideamine run` does
    asyncio.run(main(parser.parse_args().phase))
