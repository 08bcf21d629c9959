"""Drive one run of a configuration folder to its end, in a test's own store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.runtime import DEFAULT_CONCURRENCY, actions, advance
from ideamine.runtime.runner import Runner
from ideamine.stores.base import Store
from ideamine.stores.records import ClaimedTask, OutputWrite, RunRecord
from ideamine.stores.verdicts import JudgedFanIn, Verdict, VerdictStore


async def drive_new_run(
    store: Store, config: Path, *, concurrency: int = DEFAULT_CONCURRENCY
) -> RunRecord:
    """Create a run of ``config`` ("a marketplace for farmers") in ``store`` and drive it in
    this process until it ends; the run as it ended."""
    pipeline = load_pipeline(config)
    run = await service.create_run(
        store,
        pipeline,
        "a marketplace for farmers",
        constraints={},
        source="cli",
        config_dir=config,
    )
    return await Runner(store, pipeline, concurrency=concurrency).drive(run.id)


def judge_gates_by_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judge every gate by a task of its own, as a gate that calls a model is; a gate that
    calls none is otherwise judged in its fan-in's step (``runtime.gatestep``)."""
    monkeypatch.setattr(actions, "calls_no_model", lambda *_: False)
    monkeypatch.setattr(advance, "calls_no_model", lambda *_: False)


def record_outputs_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record every task's output in a transaction of its own (a batch's), as a worker does;
    driving a run, the last outputs of a phase whose gate is judged in its step otherwise go
    with its fan-in (``runtime.finishing``)."""

    async def declined(self: advance.Advancer, *_: object) -> None:
        return None

    monkeypatch.setattr(advance.Advancer, "ride", declined)


Recording = Callable[[], Awaitable[list[ClaimedTask]]]
Around = Callable[
    [VerdictStore, Verdict, Sequence[OutputWrite], Recording], Awaitable[list[ClaimedTask]]
]


def around_fan_ins(monkeypatch: pytest.MonkeyPatch, around: Around) -> None:
    """Call ``around(verdicts, verdict, finishing, record)`` for each fan-in recorded with its
    verdict (``VerdictStore.record_fan_in``), where ``record()`` makes the real write."""
    record_fan_in = VerdictStore.record_fan_in

    async def wrapped(
        self: VerdictStore,
        fanned: JudgedFanIn,
        verdict: Verdict,
        finishing: Sequence[OutputWrite] = (),
        at: str | None = None,
    ) -> list[ClaimedTask]:
        def record() -> Awaitable[list[ClaimedTask]]:
            return record_fan_in(self, fanned, verdict, finishing, at)

        return await around(self, verdict, finishing, record)

    monkeypatch.setattr(VerdictStore, "record_fan_in", wrapped)


def hold_fan_ins_with_outputs(
    monkeypatch: pytest.MonkeyPatch, arrived: asyncio.Event, gate: asyncio.Event
) -> None:
    """A fan-in that records its phase's last outputs (``runtime.finishing``) sets
    ``arrived``, then waits for ``gate`` before it writes (a slow disk, as it were)."""

    async def held(
        _: VerdictStore, verdict: Verdict, finishing: Sequence[OutputWrite], record: Recording
    ) -> list[ClaimedTask]:
        if finishing:
            arrived.set()
            await gate.wait()
        return await record()

    around_fan_ins(monkeypatch, held)


def comparable(result: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict's result without what differs between any two runs: artifact ids and
    timings."""
    evidence = dict(result["evidence"])
    evidence.pop("artifact_ids")
    metrics = dict(evidence.pop("metrics"))
    for timing in ("duration_ms", "judge_ms"):
        metrics.pop(timing)
    return {**result, "evidence": {**evidence, "metrics": metrics}}
