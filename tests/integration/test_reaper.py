"""The reaper reclaims a stalled gate judge (no configured agent) like any task (found by the
random-kill chaos test: workers exited with KeyError '@gate')."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.plan import GATE_AGENT, GATE_KEY
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.llm.registry import Providers
from ideamine.runtime.bundles import Bundles
from ideamine.runtime.reaper import reap
from ideamine.stores.records import EventDraft, NewTask

START = 1_700_000_000.0


class _Clock:
    def __init__(self, value: float) -> None:
        self.value = value

    def now(self) -> float:
        return self.value


def test_a_stalled_gate_judge_is_reclaimed_and_retried(tmp_path: Path) -> None:
    config = write_callable_pipeline(tmp_path / "cfg", {"intake": []}, agents_per_phase=1)

    async def go() -> tuple[int, TaskStatus, list[str]]:
        store = await service.open_store(str(tmp_path / "ideamine.db"))
        try:
            run = await service.create_run(
                store,
                load_pipeline(config),
                "a marketplace for farmers",
                constraints={},
                source="cli",
                config_dir=config,
            )
            await store.set_run_status(run.id, RunStatus.RUNNING, EventDraft(type="run.started"))
            await store.start_phase(run.id, "intake", 1, EventDraft(type="phase.started"))
            judge = NewTask(
                id=f"{run.id}.intake.1.{GATE_KEY}", key=GATE_KEY, agent=GATE_AGENT, iteration=1
            )
            await store.create_tasks(run.id, "intake", 1, [judge], EventDraft(type="created"))
            await store.claim_tasks(run.id, owner="gone:1:1", now=START, limit=1, lease_seconds=1)
            clock = _Clock(START + 60)
            reclaimed = await reap(store, Bundles(store, clock, Providers()), clock)
            _, _, tasks = await store.run_rows(run.id)
            events = [event.type for event in await store.events(run.id)]
            return reclaimed, tasks[0].status, events
        finally:
            await store.close()

    reclaimed, status, events = asyncio.run(go())

    assert reclaimed == 1
    assert status is TaskStatus.PENDING  # handed back for another try
    assert "phase.stalled" in events
