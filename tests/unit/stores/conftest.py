"""Fixtures for the store tests: a real SqliteStore on a temporary file and a fake clock."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ideamine.engine.states import RunStatus
from ideamine.stores.records import EventDraft, NewRun, NewTask, RunRecord
from ideamine.stores.sqlite import SqliteStore

START = 1_700_000_000.0


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.value = start

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def _new_run(run_id: str = "run-1", **constraints: object) -> NewRun:
    return NewRun(
        id=run_id,
        idea="a tool that turns ideas into products",
        constraints=dict(constraints),
        source="cli",
        config_dir=None,
        manifest={"pipeline.yaml": "ab" * 32},
        manifest_hash="cd" * 32,
    )


def _new_tasks(*keys: str, prefix: str = "t") -> list[NewTask]:
    return [
        NewTask(id=f"{prefix}-{key}", key=key, agent="writer", iteration=0, input={"k": key})
        for key in keys
    ]


@pytest.fixture
def new_run() -> Callable[..., NewRun]:
    """Build a ``NewRun``: ``new_run("run-1", budget=3)``."""
    return _new_run


@pytest.fixture
def new_tasks() -> Callable[..., list[NewTask]]:
    """Build pending tasks with ids ``{prefix}-{key}``: ``new_tasks("a", "b", prefix="r")``."""
    return _new_tasks


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ideamine.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[SqliteStore]:
    """A migrated store; closed after the test."""
    opened = SqliteStore(db_path, clock)
    try:
        asyncio.run(opened.migrate())
        yield opened
    finally:
        asyncio.run(opened.close())


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection (autocommit) to poke at the file behind the store's back."""
    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def running_run(store: SqliteStore) -> Callable[..., RunRecord]:
    """Create a run, set it running and (optionally) start a phase with pending tasks."""

    async def make(run_id: str, phase: str | None, keys: tuple[str, ...]) -> RunRecord:
        await store.create_run(_new_run(run_id))
        await store.set_run_status(run_id, RunStatus.RUNNING, EventDraft(type="run.started"))
        if phase is not None:
            await store.start_phase(run_id, phase, 1, EventDraft(type="phase.started", phase=phase))
            if keys:
                await store.create_tasks(
                    run_id,
                    phase,
                    1,
                    _new_tasks(*keys, prefix=run_id),
                    EventDraft(type="phase.fanned_out", phase=phase),
                )
        return await store.get_run(run_id)

    def sync(
        run_id: str = "run-1", phase: str | None = "ideation", keys: tuple[str, ...] = ("a",)
    ) -> RunRecord:
        return asyncio.run(make(run_id, phase, keys))

    return sync
