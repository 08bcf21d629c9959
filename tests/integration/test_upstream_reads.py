"""The tasks a phase starts together read its upstream artifacts once between them: the first
reads while the others wait for it (before, each of a wide phase's tasks made the same read)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus
from ideamine.runtime.runner import Runner
from ideamine.stores.records import ArtifactRecord
from ideamine.stores.sqlite import SqliteStore

DAG = {"intake": [], "ideation": ["intake"], "critique": ["ideation"]}
AGENTS = 6


class CountingStore(SqliteStore):
    """The real SQLite store, counting reads of a run's artifact list."""

    reads = 0

    async def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        self.reads += 1
        return await super().artifacts(run_id)


def test_a_phases_tasks_read_its_upstream_artifacts_once(tmp_path: Path) -> None:
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
    assert all(count == AGENTS + 1 for count in started.values())  # the agents and the judge
    # per phase: one read shared by its agents, one by its judge (not one per task)
    assert reads <= 2 * len(DAG), reads
