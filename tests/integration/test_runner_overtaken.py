"""An advance step whose action finds the run moved on (another worker advanced it while this
one's lease lapsed, or the store retried a commit whose reply was lost) reads the run again
instead of stopping; the same conflict step after step is raised."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus
from ideamine.errors import IllegalTransitionError
from ideamine.runtime.runner import Runner
from ideamine.stores.records import ArtifactRecord, EventDraft, NewArtifact, NewTask
from ideamine.stores.sqlite import SqliteStore

DAG = {"intake": [], "ideation": ["intake"]}


class _RetriedFanIn(SqliteStore):
    """A real store whose fan-in commits, then runs again as a retry after a lost commit reply
    would (``retries`` times in all), so the caller sees the conflict of the retry. With
    ``broken`` every fan-in conflicts without writing: a bug, not a race."""

    def __init__(self, path: Path, retries: int, *, broken: bool = False) -> None:
        super().__init__(path)
        self.retries = retries
        self.broken = broken

    async def record_artifacts(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        event: EventDraft,
        tasks: Sequence[NewTask] = (),
    ) -> list[ArtifactRecord]:
        if self.broken:
            raise IllegalTransitionError("phase", "running", "ready")
        first = await super().record_artifacts(run_id, phase, attempt, artifacts, event, tasks)
        if self.retries <= 0:
            return first
        self.retries -= 1
        return await super().record_artifacts(run_id, phase, attempt, artifacts, event, tasks)


def _drive(tmp_path: Path, retries: int, *, broken: bool = False) -> tuple[RunStatus, list[str]]:
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)

    async def go() -> tuple[RunStatus, list[str]]:
        pipeline = load_pipeline(config)
        store = _RetriedFanIn(tmp_path / "ideamine.db", retries, broken=broken)
        await store.migrate()
        try:
            run = await service.create_run(
                store,
                pipeline,
                "a marketplace for farmers",
                constraints={},
                source="cli",
                config_dir=config,
            )
            done = await Runner(store, pipeline).drive(run.id)
            return done.status, [event.type for event in await store.events(run.id)]
        finally:
            await store.close()

    return asyncio.run(go())


def test_a_step_overtaken_by_a_retried_commit_reads_the_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime.runner"):
        status, types = _drive(tmp_path, retries=1)

    assert status is RunStatus.COMPLETED
    assert types.count("phase.ready") == 2  # each phase fanned in once, the retry wrote nothing
    assert "moved on under this step" in caplog.text


def test_the_same_conflict_step_after_step_is_raised(tmp_path: Path) -> None:
    with pytest.raises(IllegalTransitionError):
        _drive(tmp_path, retries=0, broken=True)  # MAX_CONFLICTS re-reads, then raised
