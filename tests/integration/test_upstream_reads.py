"""The tasks a phase starts together read its upstream artifacts once between them: the first
reads while the others wait for it (before, each of a wide phase's tasks made the same read).
The run's options likewise: one read shared by the tasks that start while it is in flight."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from tests.support.configs import write_callable_pipeline
from tests.support.records import new_run
from tests.support.runs import judge_gates_by_task

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus
from ideamine.runtime.context import BlobCache
from ideamine.runtime.runner import Runner
from ideamine.stores.options import RunOptions
from ideamine.stores.queries import Db
from ideamine.stores.records import ArtifactRecord
from ideamine.stores.sqlite import SqliteStore

T = TypeVar("T")
DAG = {"intake": [], "ideation": ["intake"], "critique": ["ideation"]}
AGENTS = 6


class CountingStore(SqliteStore):
    """The real SQLite store, counting reads of a run's artifact list."""

    reads = 0

    async def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        self.reads += 1
        return await super().artifacts(run_id)


@pytest.mark.parametrize("by_task", [False, True], ids=["gate in its step", "gate by a task"])
def test_a_phases_tasks_read_its_upstream_artifacts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_task: bool
) -> None:
    if by_task:
        judge_gates_by_task(monkeypatch)
    config = write_callable_pipeline(tmp_path / "config", DAG, agents_per_phase=AGENTS)
    pipeline = load_pipeline(config)

    async def go() -> tuple[RunStatus, int, Counter[str]]:
        store = CountingStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            run = await service.create_run(
                store, pipeline, "a farm", constraints={}, source="cli", config_dir=config
            )
            final = await Runner(store, pipeline, concurrency=16).drive(run.id)
            started = Counter(
                str(event.phase)
                for event in await store.events(run.id)
                if event.type == "task.started"
            )
            return final.status, store.reads, started
        finally:
            await store.close()

    status, reads, started = asyncio.run(go())
    assert status is RunStatus.COMPLETED
    judges = 1 if by_task else 0  # a gate that calls no model is judged without a task
    assert all(count == AGENTS + judges for count in started.values())
    # per phase: one read shared by its agents (the fan-in reuses it), one by a judge task
    assert reads <= (1 + judges) * len(DAG), reads


class BlobCountingStore(SqliteStore):
    """The real SQLite store, counting reads of artifact contents."""

    reads = 0

    async def blob(self, content_hash: str) -> object:
        self.reads += 1
        return await super().blob(content_hash)


def test_a_phase_starts_with_the_contents_its_fan_in_wrote_without_reading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifacts a passing fan-in wrote reach the phases it starts as reading them back
    would give them (``BlobCache.keep``; ``BlobCache.foresee`` for tasks handed out ahead of
    its commit): the agents, which echo every upstream content they got, write the same as
    when each content is read from the store."""
    config = write_callable_pipeline(
        tmp_path / "config", DAG, agents_per_phase=2, function="tests.support.agents:upstream_text"
    )
    pipeline = load_pipeline(config)

    async def go(folder: Path) -> tuple[RunStatus, int, list[object]]:
        store = BlobCountingStore(folder / "ideamine.db")
        await store.migrate()
        try:
            run = await service.create_run(
                store, pipeline, "a farm", constraints={}, source="cli", config_dir=config
            )
            final = await Runner(store, pipeline, concurrency=16).drive(run.id)
            reads = store.reads
            artifacts = sorted(await store.artifacts(run.id), key=lambda a: a.type)
            return final.status, reads, [await store.blob(a.content_hash) for a in artifacts]
        finally:
            await store.close()

    (tmp_path / "kept").mkdir()
    (tmp_path / "read").mkdir()
    status, kept_reads, kept = asyncio.run(go(tmp_path / "kept"))
    monkeypatch.setattr(BlobCache, "keep", lambda self, run_id, artifacts: None)
    monkeypatch.setattr(BlobCache, "foresee", lambda self, *_: [])  # tasks handed out ahead
    read_status, read_reads, read = asyncio.run(go(tmp_path / "read"))
    assert status is read_status is RunStatus.COMPLETED
    assert kept_reads == 0 and read_reads == len(DAG) - 1  # each phase's feeds the next
    assert kept == read
    critique, ideation, intake = kept  # by type: what critique got holds both upstream
    seen = json.loads(critique["value"]["00.CritiqueAgent0"])  # type: ignore[index]
    assert seen == {"IdeationResult": ideation, "IntakeResult": intake}


class ReadCountingStore(SqliteStore):
    """The real SQLite store, counting the reads of store extensions (run options)."""

    reads = 0

    async def run_read(self, work: Callable[[Db], T]) -> T:
        self.reads += 1
        return await super().run_read(work)


def test_tasks_starting_together_share_one_read_of_the_run_options(tmp_path: Path) -> None:
    async def go() -> tuple[list[dict[str, object]], int, dict[str, object]]:
        store = ReadCountingStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            run = await store.create_run(new_run())
            await RunOptions(store).update(run.id, {"ask": True})
            blobs = BlobCache(store)
            before = store.reads
            together = await asyncio.gather(*(blobs.options(run.id) for _ in range(10)))
            reads = store.reads - before
            await RunOptions(store).update(run.id, {"added_budget": 2.0})
            later = await blobs.options(run.id)  # nothing kept: a change shows at once
            return together, reads, later
        finally:
            await store.close()

    together, reads, later = asyncio.run(go())
    assert together == [{"ask": True}] * 10
    assert reads == 1
    assert later == {"ask": True, "added_budget": 2.0}
    assert together[0] is not together[1]  # each caller gets a copy of its own
