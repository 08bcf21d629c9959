"""Drive one run of a configuration folder to its end, in a test's own store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.runtime import DEFAULT_CONCURRENCY, actions, advance
from ideamine.runtime.runner import Runner
from ideamine.stores.base import Store
from ideamine.stores.records import RunRecord


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
