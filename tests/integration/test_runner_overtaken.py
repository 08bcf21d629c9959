"""An advance step whose action finds the run moved on (another worker advanced it while this
one's lease lapsed, or the store retried a commit whose reply was lost) reads the run again
instead of stopping; the same conflict step after step is raised."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from tests.support.configs import write_callable_pipeline
from tests.support.runs import drive_new_run, judge_gates_by_task, record_outputs_alone
from tests.support.tcp_proxy import TcpProxy

from ideamine.engine.states import RunStatus
from ideamine.errors import IllegalTransitionError, RetriedWriteError
from ideamine.stores import postgres
from ideamine.stores.base import Store
from ideamine.stores.postgres import PostgresStore
from ideamine.stores.queries import Db
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    EventRecord,
    Lease,
    NewArtifact,
    NewTask,
    PhaseStart,
    ReadyAttempt,
)
from ideamine.stores.sqlite import SqliteStore

DAG = {"intake": [], "ideation": ["intake"]}
T = TypeVar("T")


class _RetriedFanIn(SqliteStore):
    """A real store whose fan-in commits, then runs again as a retry after a lost commit reply
    would (``retries`` times in all), so the caller sees the conflict of the retry. With
    ``broken`` every fan-in conflicts without writing: a bug, not a race. A fan-in is any
    transaction that records a phase attempt's artifacts (``_ready_in``): a gate task's
    fan-in, or one whose gate is judged in the same transaction."""

    def __init__(self, path: Path, retries: int, *, broken: bool = False) -> None:
        super().__init__(path)
        self.retries = retries
        self.broken = broken
        self._fanned: list[str] | None = None  # phases the unit being run fanned in

    async def _transaction(self, work: Callable[[Db], T]) -> T:
        fanned: list[str] = []

        def watched(db: Db) -> T:
            self._fanned = fanned
            try:
                return work(db)
            finally:
                self._fanned = None

        value = await super()._transaction(watched)
        if not fanned or self.retries <= 0:
            return value
        self.retries -= 1
        return await super()._transaction(watched)

    def _ready_in(self, db: Db, run_id: str, phase: str, *rest: Any, **options: Any) -> Any:
        if self.broken:
            raise IllegalTransitionError("phase", "running", "ready")
        if self._fanned is not None:
            self._fanned.append(phase)
        return super()._ready_in(db, run_id, phase, *rest, **options)


class _WatchingStarts(SqliteStore):
    """A real store that knows which phases each write started (``start_phases``, or a
    passing verdict) and, once it committed, lets ``_after`` decide what the caller meets."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._starts: list[str] | None = None  # phases the unit being run started

    async def _transaction(self, work: Callable[[Db], T]) -> T:
        started: list[str] = []

        def watched(db: Db) -> T:
            self._starts = started
            try:
                return work(db)
            finally:
                self._starts = None

        value = await super()._transaction(watched)
        return await self._after(started, value, lambda: SqliteStore._transaction(self, watched))

    async def _after(self, started: list[str], value: T, again: Callable[[], Awaitable[T]]) -> T:
        """What the caller of a write that started ``started`` meets (``again`` runs it
        once more)."""
        return value

    def _start_phases_in(
        self,
        db: Db,
        run_id: str,
        starts: Sequence[PhaseStart],
        claim: ClaimRequest | None,
        at: str,
        chosen: Mapping[str, Lease] | None = None,
    ) -> list[ClaimedTask]:
        if self._starts is not None:
            self._starts.extend(start.phase for start in starts)
        return super()._start_phases_in(db, run_id, starts, claim, at, chosen)


class _LostCreate(_WatchingStarts):
    """A real store whose first ``retries`` writes that start phases (each with its first
    tasks: ``start_phases``, or a passing verdict) commit and then report what the
    PostgreSQL store reports when a commit's reply was lost, the server could not say what
    became of it, and the retry found the rows stored (``RetriedWriteError``): the tasks
    exist, the caller does not know it."""

    def __init__(self, path: Path, retries: int) -> None:
        super().__init__(path)
        self.retries = retries
        self.lost_commits = 0

    @property
    def retried_writes(self) -> int:
        return self.lost_commits  # counted as the PostgreSQL store counts them

    async def _after(self, started: list[str], value: T, again: Callable[[], Awaitable[T]]) -> T:
        if not started or self.retries <= 0:
            return value
        self.retries -= 1
        self.lost_commits += 1
        # the tasks it claimed are leased to the caller, who does not know it
        raise RetriedWriteError('duplicate key value violates unique constraint "tasks_pkey"')


class _StartedTwice(_WatchingStarts):
    """A real store whose first write that starts phases (the run's first step) commits,
    and then, as another process that read the run before it would, runs again: the phases'
    rows are stored by then, so the caller meets the unique key the second write trips on
    (``RowsExistError``, no lost commit involved), and the tasks the first write claimed
    are leased to nobody who runs them."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.twice = 0

    async def _after(self, started: list[str], value: T, again: Callable[[], Awaitable[T]]) -> T:
        if started and not self.twice:
            self.twice += 1
            return await again()
        return value


SHORT_LEASES = {"interval_seconds": 0.2, "stall_after_missed": 2}


def _drive(
    tmp_path: Path, retries: int, *, broken: bool = False, store_class: type = _RetriedFanIn
) -> tuple[RunStatus, list[str]]:
    config = write_callable_pipeline(
        tmp_path / "cfg", DAG, agents_per_phase=2, heartbeat=SHORT_LEASES
    )

    async def go() -> tuple[RunStatus, list[str]]:
        if store_class is _LostCreate:
            store: SqliteStore = _LostCreate(tmp_path / "ideamine.db", retries)
        else:
            store = _RetriedFanIn(tmp_path / "ideamine.db", retries, broken=broken)
        status, events = await _run_to_end(store, config)
        return status, [event.type for event in events]

    return asyncio.run(go())


async def _run_to_end(store: Store, config: Path) -> tuple[RunStatus, list[EventRecord]]:
    """Create a run of ``config`` in ``store`` (migrated here, closed after) and drive it
    to its end: its status and ledger."""
    await store.migrate()
    try:
        done = await drive_new_run(store, config)
        return done.status, await store.events(done.id)
    finally:
        await store.close()


@pytest.mark.parametrize("way", ["gate in its step", "gate by a task", "fan-in with its outputs"])
def test_a_step_overtaken_by_a_retried_commit_reads_the_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """A fan-in whose retry finds the attempt fanned in, by a step or with the phase's last
    outputs (``Advancer.ride``: its retry finds them recorded, and the recorder, writing them
    alone, finds them stale): the runner reads the run again."""
    if way == "gate by a task":
        judge_gates_by_task(monkeypatch)
    elif way == "gate in its step":
        record_outputs_alone(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime"):
        status, types = _drive(tmp_path, retries=1)

    assert status is RunStatus.COMPLETED
    assert types.count("phase.ready") == 2  # each phase fanned in once, the retry wrote nothing
    assert types.count("task.succeeded") == 2 * 3  # two agents and a gate a phase, once each
    assert "moved on under this step" in caplog.text


@pytest.mark.parametrize("by_task", [False, True], ids=["gate in its step", "gate by a task"])
def test_the_same_conflict_step_after_step_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_task: bool
) -> None:
    if by_task:
        judge_gates_by_task(monkeypatch)
    with pytest.raises(IllegalTransitionError):
        _drive(tmp_path, retries=0, broken=True)  # MAX_CONFLICTS re-reads, then raised


def test_a_step_whose_tasks_were_created_by_a_commit_whose_reply_was_lost_reads_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL, should the server not account for such a commit, its retry finds the
    tasks stored (a unique violation): the runner reads the run again, hands back at once the tasks
    the lost commit had leased to it (no stall: their leases do not have to lapse), and the
    run completes with each task created once."""
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime.runner"):
        status, types = _drive(tmp_path, retries=2, store_class=_LostCreate)

    assert status is RunStatus.COMPLETED
    assert types.count("phase.progress") == 2  # one creation per phase: nothing made twice
    assert "phase.stalled" not in types, types
    assert types.count("task.retry") == 4  # each phase's 2 tasks handed back once
    assert types.count("phase.completed") == 2
    assert caplog.text.count("moved on under this step") == 2
    assert caplog.text.count("handed back 2 task(s) a lost commit claimed") == 2


def test_a_step_that_finds_the_rows_it_inserts_stored_reads_the_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process started the phase this step starts, after this step read the run
    (a worker whose advance lease lapsed, on reconnecting): the step's insert meets the
    phase's key, and the runner reads the run again instead of stopping. The tasks the
    other write claimed come back once their leases lapse; each agent runs once."""
    config = write_callable_pipeline(
        tmp_path / "cfg", DAG, agents_per_phase=2, heartbeat=SHORT_LEASES
    )
    store = _StartedTwice(tmp_path / "ideamine.db")
    with caplog.at_level(logging.WARNING, logger="ideamine.runtime"):
        status, events = asyncio.run(_run_to_end(store, config))

    assert store.twice == 1
    assert status is RunStatus.COMPLETED
    types = [event.type for event in events]
    assert [e.phase for e in events if e.type == "phase.started"] == ["intake", "ideation"]
    assert types.count("phase.completed") == 2
    succeeded = [e.task_id for e in events if e.type == "task.succeeded"]
    assert len(succeeded) == len(set(succeeded)) == 2 * 3  # two agents and a gate, once each
    assert "moved on under this step" in caplog.text
    assert "UNIQUE constraint failed: phases" in caplog.text


class _LostClaimReply(PostgresStore):
    """A real PostgreSQL store, reached through the TCP proxy, whose first fan-in (which
    claims the gate task it creates) commits and loses its reply. Before the store asked the
    server what became of such a commit, its retry failed or claimed nothing, and the task
    the first attempt had claimed was leased to a runner that never learned of it."""

    def __init__(self, url: str, proxy: TcpProxy) -> None:
        super().__init__(url, retry_seconds=30)
        self._proxy = proxy
        self._claiming = False
        self.lost = 0

    async def record_artifacts(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        event: EventDraft,
        tasks: Sequence[NewTask] = (),
        *,
        claim: ClaimRequest | None = None,
    ) -> ReadyAttempt:
        self._claiming = claim is not None
        try:
            return await super().record_artifacts(
                run_id, phase, attempt, artifacts, event, tasks, claim=claim
            )
        finally:
            self._claiming = False

    def _claim_in(self, db: Db, run_id: str | None, **options: Any) -> list[ClaimedTask]:
        claimed = super()._claim_in(db, run_id, **options)
        if claimed and self._claiming and not self.lost:
            self.lost += 1  # the COMMIT after this goes through; its reply does not
            assert isinstance(db, postgres._Db)
            db.sent(claimed)  # the store's question before COMMIT, asked now
            self._proxy.silence_replies()
            threading.Timer(0.3, self._proxy.reset).start()
        return claimed


def test_a_claim_whose_reply_is_lost_hands_its_tasks_to_the_runner(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store learns from the server that the lost claim committed and returns the task
    it claimed, so the runner runs it at once: no stall (``phase.stalled``), nothing handed
    back, the gate task started once."""
    judge_gates_by_task(monkeypatch)  # a gate task, claimed by the fan-in
    config = write_callable_pipeline(
        tmp_path / "cfg", DAG, agents_per_phase=2, heartbeat=SHORT_LEASES
    )
    target = urlsplit(pg_url)

    async def go(proxy: TcpProxy) -> tuple[RunStatus, list[EventRecord], int]:
        store = _LostClaimReply(proxy.url(pg_url), proxy)
        status, events = await _run_to_end(store, config)
        return status, events, store.lost

    with (
        TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy,
        caplog.at_level(logging.WARNING),
    ):
        status, events, lost = asyncio.run(go(proxy))

    assert lost == 1 and status is RunStatus.COMPLETED
    types = [event.type for event in events]
    assert "phase.stalled" not in types, types
    assert "task.retry" not in types, types
    gates = [e for e in events if e.type == "task.started" and e.payload["key"] == "~gate"]
    assert len(gates) == 2  # one per phase: the lost claim's start is the only one
    assert "the server says its transaction committed" in caplog.text
    assert "handed back" not in caplog.text
