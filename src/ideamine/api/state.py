"""What one ``ideamine serve`` process holds: its settings, the store (opened in the
background, so the server answers ``/health`` with 503 while the store is unreachable), and
the runs it drives itself (created or resumed without ``?detach=true``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.engine.states import RunStatus
from ideamine.errors import IdeaMineError, StoreError, StoreUnavailableError
from ideamine.runtime.runner import DEFAULT_CONCURRENCY, Runner
from ideamine.stores.base import Store
from ideamine.stores.postgres import PostgresStore

__all__ = ["ServerSettings", "ServerState"]

log = logging.getLogger(__name__)
# A request gives up on an unreachable PostgreSQL after this long (the CLI waits a minute).
REQUEST_RETRY_SECONDS = 5.0
OPEN_RETRY_SECONDS = (0.5, 10.0)  # first and longest wait between attempts to open the store


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """How ``ideamine serve`` was started."""

    store_ref: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    config_dir: Path | None = None
    concurrency: int = DEFAULT_CONCURRENCY


class ServerState:
    """The store and the background drives of one server process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._store: Store | None = None
        self._problem: StoreError | None = None
        self._opener: asyncio.Task[None] | None = None
        self._drives: dict[str, asyncio.Task[None]] = {}
        # Set when the server is told to stop (before uvicorn waits for open requests): event
        # streams end on their next look instead of holding the shutdown up.
        self.stopping = False

    async def start(self) -> None:
        """Begin opening the store; returns at once (or when it is open, if that is quick)."""
        self._opener = asyncio.create_task(self._open_until_reachable(), name="store opener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._opener), timeout=2.0)

    async def stop(self) -> None:
        """Stop the drives (their tasks are handed back for `ideamine resume` or workers)
        and close the store."""
        for task in [self._opener, *self._drives.values()]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, IdeaMineError):
                    await task
        if self._store is not None:
            await self._store.close()

    async def store(self) -> Store:
        """The open store.

        Raises:
            StoreUnavailableError: it could not be opened (yet); the opener keeps trying.
        """
        if self._store is not None:
            return self._store
        problem = self._problem
        raise StoreUnavailableError(
            f"the store is not reachable: {problem or 'still opening'}",
            hint=(problem.hint if problem and problem.hint else "retry in a few seconds"),
        )

    async def _open_until_reachable(self) -> None:
        wait = OPEN_RETRY_SECONDS[0]
        while True:
            try:
                store = await service.open_store(self.settings.store_ref)
            except StoreError as exc:
                self._problem = exc
                log.warning("store not reachable (%s); retrying in %.1f s", exc, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, OPEN_RETRY_SECONDS[1])
                continue
            if isinstance(store, PostgresStore):
                store.retry_seconds = REQUEST_RETRY_SECONDS
            self._store, self._problem = store, None
            return

    def pipeline(self) -> PipelineSpec:
        """The current configuration (shipped defaults overlaid with ``--config``)."""
        return load_pipeline(self.settings.config_dir)

    def driving(self, run_id: str) -> bool:
        task = self._drives.get(run_id)
        return task is not None and not task.done()

    def drive(self, store: Store, run_id: str, pipeline: PipelineSpec | None = None) -> None:
        """Carry the run out in this process, in the background, unless it already is. A
        drive that is ending (its run just failed, say) when the run is reopened (a phase
        retried) drives it again: the request that reopened it found it still busy."""
        if self.driving(run_id):
            return
        task = asyncio.create_task(self._drive(store, run_id, pipeline), name=f"drive {run_id}")
        self._drives[run_id] = task

    async def _drive(self, store: Store, run_id: str, pipeline: PipelineSpec | None) -> None:
        try:
            while True:
                runner = Runner(store, pipeline, concurrency=self.settings.concurrency)
                run = await runner.drive(run_id)
                log.info("run %s: %s", run_id, run.status)
                if run.status is not RunStatus.RUNNING:  # else reopened as the drive ended
                    break
        except IdeaMineError as exc:  # recorded in the ledger where it matters; keep serving
            log.warning("driving run %s stopped: %s", run_id, exc)
        except Exception:  # a background task's boundary: log it, the server goes on
            log.exception("driving run %s failed", run_id)
        finally:
            self._drives.pop(run_id, None)
