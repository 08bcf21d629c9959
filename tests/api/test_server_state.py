"""The server's background drives: a run reopened while its drive is ending (a phase retried
over the API right after the run failed) is driven again, not left running with nobody on
it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.configs import write_callable_pipeline

from ideamine import service, service_api
from ideamine.api.state import ServerSettings, ServerState
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus
from ideamine.stores.sqlite import SqliteStore


class _RetriedAsTheDriveEnds(SqliteStore):
    """A real store on which the phase is retried, as the API's retry endpoint does it, the
    moment the failed run's drive gives its advance lease back (the drive is ending, so the
    server finds the run still being driven)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.state: ServerState | None = None
        self.retried = False

    async def release_advance(self, run_id: str, *, owner: str) -> None:
        await super().release_advance(run_id, owner=owner)
        if self.retried or (await self.get_run(run_id)).status is not RunStatus.FAILED:
            return
        self.retried = True
        await service_api.retry_phase(self, run_id, "intake", reason="retried over the API")
        assert self.state is not None and self.state.driving(run_id)
        self.state.drive(self, run_id)  # what the endpoint does next: a drive is under way


def test_a_run_reopened_as_its_drive_ends_is_driven_again(tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "config",
        {"intake": []},
        agents_per_phase=1,
        function="tests.support.agents:wrong_shape",
    )

    async def go() -> tuple[RunStatus, list[tuple[str, object]]]:
        store = _RetriedAsTheDriveEnds(tmp_path / "ideamine.db")
        await store.migrate()
        state = ServerState(ServerSettings(config_dir=config))
        store.state = state
        try:
            run = await service.create_run(
                store,
                load_pipeline(config),
                "a marketplace for farmers",
                constraints={},
                source="api",
                config_dir=config,
            )
            state.drive(store, run.id)
            for _ in range(600):
                if not state.driving(run.id):
                    break
                await asyncio.sleep(0.05)
            events = await store.events(run.id)
            status = (await store.get_run(run.id)).status
        finally:
            await store.close()
        return status, [(e.type, e.payload.get("attempt")) for e in events]

    status, events = asyncio.run(go())

    assert status is RunStatus.FAILED
    started = [attempt for kind, attempt in events if kind == "phase.started"]
    assert started == [1, 2], events
    assert [kind for kind, _ in events].count("run.failed") == 2, events
