"""The ``Store`` contract (``ideamine.stores.base``), once, against SQLite and PostgreSQL.

Invariant 8: the same behaviour on both dialects. Every test runs twice, its id naming the
dialect (``[sqlite]``, ``[postgresql]``). Tests are plain functions that run small async
bodies with ``asyncio.run``; times come from a fake clock, so leases expire when a test says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any, Protocol

import psycopg
import pytest

from ideamine.canonical import canonical_json, content_hash
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.engine.unstick import Remedy, Strategy, choose_remedy
from ideamine.errors import (
    FinishingRefusedError,
    IllegalTransitionError,
    OutputExistsError,
    RunNotFoundError,
    RunStateError,
    StaleLeaseError,
    StoreCorruptError,
    StoreError,
)
from ideamine.stores import task_queries as tq
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.ledger import verify_chain
from ideamine.stores.outputs import insert_artifact
from ideamine.stores.postgres import PostgresStore
from ideamine.stores.queries import Db
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    EventRecord,
    ModelCallRecord,
    NewArtifact,
    NewRun,
    NewTask,
    OutputWrite,
    PhaseStart,
    TaskRecord,
)
from ideamine.stores.sqlite import SqliteStore
from ideamine.stores.usage import UsageStore
from ideamine.stores.verdicts import JudgedFanIn, Verdict, VerdictStore

Store = SqliteStore | PostgresStore
Raw = Callable[..., list[tuple[Any, ...]]]
LEASE = 30.0
PHASE = "ideation"


class Ticking(Protocol):
    """The conformance conftest's ``FakeClock``."""

    value: float

    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


# -- builders -------------------------------------------------------------------------------


def new_run(run_id: str = "run-1", **constraints: object) -> NewRun:
    return NewRun(
        id=run_id,
        idea="a tool that turns ideas into products",
        constraints=dict(constraints),
        source="cli",
        config_dir=None,
        manifest={"pipeline.yaml": "ab" * 32},
        manifest_hash="cd" * 32,
        config_files={"pipeline.yaml": "phases: [ideation]\n"},
        project="tool",
    )


def new_tasks(run_id: str, *keys: str, lease_seconds: float = 180.0) -> list[NewTask]:
    return [
        NewTask(
            id=f"{run_id}-{key}",
            key=key,
            agent="writer",
            iteration=0,
            input={"k": key},
            lease_seconds=lease_seconds,
        )
        for key in keys
    ]


def call(tokens_in: int = 12, tokens_out: int = 34, cost: float = 0.25) -> ModelCallRecord:
    return ModelCallRecord(
        provider="offline",
        model="offline-1",
        prompt_hash="ef" * 32,
        params={"temperature": 0},
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost,
        latency_ms=1.5,
        outcome="ok",
    )


def remedy(strategy: Strategy) -> Remedy:
    return Remedy(strategy=strategy, batch_scale=1.0, timeout_scale=1.0, model_shift=0)


async def running_run(
    store: Store,
    run_id: str = "run-1",
    *,
    keys: Sequence[str] = ("a",),
    lease_seconds: float = 180.0,
) -> None:
    """A running run whose phase ``ideation`` (attempt 1) has pending tasks ``keys``."""
    await store.create_run(new_run(run_id))
    await store.set_run_status(run_id, RunStatus.RUNNING, EventDraft(type="run.started"))
    await store.start_phase(run_id, PHASE, 1, EventDraft(type="phase.started", phase=PHASE))
    if keys:
        await store.create_tasks(
            run_id,
            PHASE,
            1,
            new_tasks(run_id, *keys, lease_seconds=lease_seconds),
            EventDraft(type="phase.fanned_out", phase=PHASE),
        )


async def claim(
    store: Store,
    clock: Ticking,
    run_id: str | None = "run-1",
    *,
    limit: int = 1,
    owner: str = "worker-1",
    lease: float | None = LEASE,
    at: float | None = None,
) -> list[ClaimedTask]:
    now = clock.now() if at is None else at
    return await store.claim_tasks(run_id, owner=owner, now=now, limit=limit, lease_seconds=lease)


async def claim_one(store: Store, clock: Ticking, **options: Any) -> ClaimedTask:
    claimed = await claim(store, clock, **options)
    assert len(claimed) == 1, claimed
    return claimed[0]


async def types(store: Store, run_id: str = "run-1") -> list[str]:
    return [event.type for event in await store.events(run_id)]


async def tasks_by_key(store: Store, run_id: str = "run-1") -> dict[str, TaskRecord]:
    _, _, tasks = await store.run_rows(run_id)
    return {task.key: task for task in tasks}


async def chain_ok(store: Store, run_id: str = "run-1") -> list[EventRecord]:
    events = await store.events(run_id, limit=100_000)
    report = verify_chain(events)
    assert report.ok, report
    return events


# -- runs -----------------------------------------------------------------------------------


def test_create_run_is_created_with_its_event_and_readable_back(store: Store) -> None:
    async def body() -> None:
        created = await store.create_run(new_run("run-1", budget_usd=2.5))

        assert created.status is RunStatus.CREATED
        assert created.constraints == {"budget_usd": 2.5}
        assert created.manifest == {"pipeline.yaml": "ab" * 32}
        assert created.project == "tool"
        assert created.created_at.startswith("2023-11-14T22:13:20")  # the fake clock
        assert await store.get_run("run-1") == created
        events = await store.events("run-1")
        assert [event.type for event in events] == ["run.created"]
        assert events[0].payload["manifest_hash"] == "cd" * 32

    asyncio.run(body())


def test_create_run_with_a_taken_id_is_a_store_error_and_writes_nothing(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        with pytest.raises(StoreError):
            await store.create_run(new_run("run-1"))
        assert await types(store) == ["run.created"]

    asyncio.run(body())


def test_unknown_run_raises_run_not_found_everywhere(store: Store) -> None:
    async def body() -> None:
        with pytest.raises(RunNotFoundError) as caught:
            await store.get_run("nope")
        assert caught.value.run_id == "nope"
        with pytest.raises(RunNotFoundError):
            await store.run_config("nope")
        with pytest.raises(RunNotFoundError):
            await store.set_run_status("nope", RunStatus.RUNNING, EventDraft(type="run.started"))
        with pytest.raises(RunNotFoundError):
            await store.append_event("nope", EventDraft(type="run.progress"))
        assert await store.events("nope") == []

    asyncio.run(body())


def test_list_runs_gives_the_newest_first_up_to_the_limit(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        for run_id in ("first", "second", "third"):
            await store.create_run(new_run(run_id))
            clock.advance(1)

        assert [run.id for run in await store.list_runs()] == ["third", "second", "first"]
        assert [run.id for run in await store.list_runs(limit=2)] == ["third", "second"]

    asyncio.run(body())


def test_active_runs_are_the_created_and_running_ones_oldest_first(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        moves = {
            "created": [],
            "running": [RunStatus.RUNNING],
            "paused": [RunStatus.RUNNING, RunStatus.PAUSED],
            "completed": [RunStatus.RUNNING, RunStatus.COMPLETED],
            "cancelled": [RunStatus.CANCELLED],
            "attention": [RunStatus.RUNNING, RunStatus.NEEDS_ATTENTION],
        }
        for run_id, statuses in moves.items():
            await store.create_run(new_run(run_id))
            for status in statuses:
                await store.set_run_status(run_id, status, EventDraft(type=f"run.{status}"))
            clock.advance(1)

        assert [run.id for run in await store.active_runs()] == ["created", "running"]
        assert [run.id for run in await store.active_runs(limit=1)] == ["created"]

    asyncio.run(body())


def test_compiled_config_is_stored_beside_the_texts_and_repin_replaces_it(store: Store) -> None:
    """The compiled form of a run's pipeline (bytes, any of the 256 values) comes back as
    written with the pinned texts; a run pinned without one reads ``None``; a re-pin stores
    the new one, or none."""
    packed = bytes(range(256)) * 3

    async def body() -> None:
        await store.create_run(dataclasses.replace(new_run("run-1"), config_compiled=packed))
        await store.create_run(new_run("run-2"))
        assert await store.compiled_config("run-1") == (
            {"pipeline.yaml": "phases: [ideation]\n"},
            packed,
        )
        assert await store.compiled_config("run-2") == (
            {"pipeline.yaml": "phases: [ideation]\n"},
            None,
        )
        with pytest.raises(RunNotFoundError):
            await store.compiled_config("nope")

        repin = {
            "manifest": {"pipeline.yaml": "99" * 32},
            "manifest_hash": "ee" * 32,
            "files": {"pipeline.yaml": "phases: [critique]\n"},
            "changes": ["pipeline.yaml changed"],
        }
        await store.repin_run("run-2", **repin, compiled=b"\x00new")  # type: ignore[arg-type]
        await store.repin_run("run-1", **repin)  # type: ignore[arg-type]
        assert await store.compiled_config("run-2") == (repin["files"], b"\x00new")
        assert await store.compiled_config("run-1") == (repin["files"], None)

    asyncio.run(body())


def test_run_config_returns_the_pinned_files_and_repin_replaces_them(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        assert await store.run_config("run-1") == {"pipeline.yaml": "phases: [ideation]\n"}

        await store.repin_run(
            "run-1",
            manifest={"pipeline.yaml": "99" * 32},
            manifest_hash="ee" * 32,
            files={"pipeline.yaml": "phases: [ideation, critique]\n", "x.yaml": "a: 1\n"},
            changes=["pipeline.yaml changed", "x.yaml added"],
        )

        run = await store.get_run("run-1")
        assert (run.manifest, run.manifest_hash) == ({"pipeline.yaml": "99" * 32}, "ee" * 32)
        assert await store.run_config("run-1") == {
            "pipeline.yaml": "phases: [ideation, critique]\n",
            "x.yaml": "a: 1\n",
        }
        events = await store.events("run-1")
        assert events[-1].type == "run.repinned"
        assert events[-1].payload == {
            "from": "cd" * 32,
            "to": "ee" * 32,
            "changes": ["pipeline.yaml changed", "x.yaml added"],
        }

    asyncio.run(body())


def test_set_run_status_follows_the_state_machine_with_its_event(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        clock.advance(5)
        await store.set_run_status(
            "run-1",
            RunStatus.RUNNING,
            EventDraft(type="run.started", payload={"why": "test"}),
            driver="host:1",
        )
        run = await store.get_run("run-1")
        assert (run.status, run.driver) == (RunStatus.RUNNING, "host:1")
        assert run.updated_at > run.created_at

        await store.set_run_status(
            "run-1", RunStatus.FAILED, EventDraft(type="run.failed"), error="boom"
        )
        run = await store.get_run("run-1")
        assert (run.status, run.error, run.driver) == (RunStatus.FAILED, "boom", "host:1")
        events = await store.events("run-1")
        assert [event.type for event in events] == ["run.created", "run.started", "run.failed"]
        assert events[1].payload == {"why": "test"}

    asyncio.run(body())


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ((), RunStatus.COMPLETED),
        ((), RunStatus.PAUSED),
        ((RunStatus.RUNNING, RunStatus.COMPLETED), RunStatus.RUNNING),
        ((RunStatus.CANCELLED,), RunStatus.RUNNING),
        ((RunStatus.RUNNING, RunStatus.PAUSED), RunStatus.COMPLETED),
    ],
    ids=[
        "created-completed",
        "created-paused",
        "completed-running",
        "cancelled-running",
        "paused-completed",
    ],
)
def test_set_run_status_refuses_an_illegal_transition_and_writes_nothing(
    store: Store, clock: Ticking, path: tuple[RunStatus, ...], refused: RunStatus
) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        for status in path:
            await store.set_run_status("run-1", status, EventDraft(type=f"run.{status}"))
        before = await store.get_run("run-1")
        events_before = await store.events("run-1")
        clock.advance(5)

        with pytest.raises(IllegalTransitionError) as caught:
            await store.set_run_status(
                "run-1", refused, EventDraft(type="run.refused"), error="x", driver="other"
            )

        assert (caught.value.kind, caught.value.target) == ("run", str(refused))
        assert await store.get_run("run-1") == before
        assert await store.events("run-1") == events_before

    asyncio.run(body())


def test_reopen_run_reclaims_expired_dead_and_failed_tasks_and_resumes(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b", "c", "d", "e"))
        now = clock.now()
        a = await claim_one(store, clock, owner="w1", lease=10)  # will have expired
        b = await claim_one(store, clock, owner="dead", lease=1000)  # its owner died
        c = await claim_one(store, clock, owner="w3", lease=1000)  # alive and well
        d = await claim_one(store, clock, owner="w4", lease=1000)
        await store.fail_task(d.task.id, d.lease_token, error="bad", retry_at=None, strategy="x")
        await store.set_phase_status(
            "run-1",
            PHASE,
            1,
            PhaseStatus.FAILED,
            [EventDraft(type="run.failed")],
            error="d failed",
            run_status=RunStatus.FAILED,
        )
        clock.advance(100)

        reclaimed = await store.reopen_run(
            "run-1", driver="host:2", dead_owners=["dead"], now=now + 100
        )

        assert sorted(reclaimed) == sorted([a.task.id, b.task.id, d.task.id])
        run, phases, _ = await store.run_rows("run-1")
        assert (run.status, run.driver, run.error) == (RunStatus.RUNNING, "host:2", None)
        assert [(p.attempt, p.status) for p in phases] == [(1, PhaseStatus.RUNNING)]
        tasks = await tasks_by_key(store)
        assert {key: task.status for key, task in tasks.items()} == {
            "a": TaskStatus.PENDING,
            "b": TaskStatus.PENDING,
            "c": TaskStatus.RUNNING,
            "d": TaskStatus.PENDING,
            "e": TaskStatus.PENDING,
        }
        assert tasks["c"].lease_owner == "w3"
        events = await chain_ok(store)
        retries = [
            e for e in events if e.type == "task.retry" and e.payload["strategy"] == "resume"
        ]
        assert sorted(str(e.task_id) for e in retries) == sorted(reclaimed)
        assert events[-1].type == "run.resumed"
        assert events[-1].payload["reclaimed"] == 3
        assert events[-1].payload["previous_status"] == "failed"
        # The reclaimed leases no longer fence anything; the live one still does.
        with pytest.raises(StaleLeaseError):
            await store.record_output(a.task.id, a.lease_token, {"late": True}, [], {})
        await store.renew_lease(c.task.id, c.lease_token, lease_seconds=60, now=now + 100)

    asyncio.run(body())


def test_reopen_run_refuses_a_finished_run(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.set_run_status("run-1", RunStatus.COMPLETED, EventDraft(type="run.completed"))
        before = await store.events("run-1")

        with pytest.raises(IllegalTransitionError):
            await store.reopen_run("run-1", driver="host:2", dead_owners=[], now=0)

        assert (await store.get_run("run-1")).status is RunStatus.COMPLETED
        assert await store.events("run-1") == before

    asyncio.run(body())


# -- the advance lease ----------------------------------------------------------------------


def test_hold_advance_is_exclusive_until_expiry_and_renewable_by_its_owner(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        t = 1000.0

        assert await store.hold_advance("run-1", owner="A", seconds=10, now=t)
        assert not await store.hold_advance("run-1", owner="B", seconds=10, now=t + 5)
        assert await store.hold_advance("run-1", owner="A", seconds=10, now=t + 9)  # renew
        assert not await store.hold_advance("run-1", owner="B", seconds=10, now=t + 15)
        assert await store.hold_advance("run-1", owner="B", seconds=10, now=t + 19.5)  # lapsed
        assert not await store.hold_advance("run-1", owner="A", seconds=10, now=t + 20)

    asyncio.run(body())


def test_release_advance_frees_the_lease_only_for_its_owner(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        await store.create_run(new_run("run-2"))
        assert await store.hold_advance("run-1", owner="A", seconds=60, now=0)
        assert await store.hold_advance("run-2", owner="A", seconds=60, now=0)

        await store.release_advance("run-1", owner="B")  # not B's to give up
        assert not await store.hold_advance("run-1", owner="B", seconds=60, now=1)

        await store.release_advance("run-1", owner="A")
        assert await store.hold_advance("run-1", owner="B", seconds=60, now=1)
        assert not await store.hold_advance("run-2", owner="B", seconds=60, now=1)  # untouched
        assert not await store.hold_advance("nope", owner="A", seconds=60, now=1)

    asyncio.run(body())


def test_start_run_sets_it_running_and_takes_its_advance_lease_in_one_write(
    store: Store,
) -> None:
    """``start_run``: running, driven by the starter, its event appended, and the advance
    lease taken as ``hold_advance`` takes it; another's unexpired lease stays (the run is
    started all the same, the starter told it holds none); a run that cannot go to running
    is refused with nothing written."""

    async def body() -> None:
        for run_id in ("run-1", "run-2", "run-3"):
            await store.create_run(new_run(run_id))
        started = EventDraft(type="run.started", payload={"driver": "A"})

        assert await store.start_run("run-1", started, driver="A", seconds=60, now=0)
        run = await store.get_run("run-1")
        assert (run.status, run.driver) == (RunStatus.RUNNING, "A")
        assert [e.type for e in await store.events("run-1")] == ["run.created", "run.started"]
        assert not await store.hold_advance("run-1", owner="B", seconds=60, now=1)

        assert await store.hold_advance("run-2", owner="B", seconds=60, now=0)
        assert not await store.start_run("run-2", started, driver="A", seconds=60, now=1)
        assert (await store.get_run("run-2")).status is RunStatus.RUNNING
        assert await store.hold_advance("run-2", owner="B", seconds=60, now=2)  # still B's

        await store.set_run_status("run-3", RunStatus.CANCELLED, EventDraft(type="run.cancelled"))
        before = await store.events("run-3")
        with pytest.raises(IllegalTransitionError):
            await store.start_run("run-3", started, driver="A", seconds=60, now=0)
        assert (await store.get_run("run-3")).status is RunStatus.CANCELLED
        assert await store.events("run-3") == before
        assert await store.hold_advance("run-3", owner="B", seconds=60, now=1)

    asyncio.run(body())


# -- phases ---------------------------------------------------------------------------------


def test_start_phase_inserts_a_running_attempt_with_its_event(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        _, phases, _ = await store.run_rows("run-1")
        assert [(p.phase, p.attempt, p.status, p.finished_at) for p in phases] == [
            (PHASE, 1, PhaseStatus.RUNNING, None)
        ]
        assert (await types(store))[-1] == "phase.started"
        with pytest.raises(StoreError):  # the same attempt twice
            await store.start_phase("run-1", PHASE, 1, EventDraft(type="phase.started"))
        assert (await types(store)).count("phase.started") == 1

    asyncio.run(body())


@pytest.mark.parametrize("outcome", [PhaseStatus.PASSED, PhaseStatus.FAILED])
def test_a_finished_phase_writes_its_phase_metrics_row(
    store: Store, clock: Ticking, raw: Raw, outcome: PhaseStatus
) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        first = await claim_one(store, clock)
        await store.fail_task(
            first.task.id, first.lease_token, error="flaky", retry_at=clock.now(), strategy="retry"
        )
        for claimed in await claim(store, clock, limit=2):
            await store.record_output(
                claimed.task.id, claimed.lease_token, {"ok": 1}, [call(10, 5, 0.5)], {}
            )
        clock.advance(2.5)
        await store.record_artifacts(
            "run-1", PHASE, 1, [], EventDraft(type="phase.ready", phase=PHASE)
        )
        assert raw("SELECT * FROM phase_metrics") == []

        await store.set_phase_status(
            "run-1", PHASE, 1, outcome, [EventDraft(type=f"phase.{outcome}", phase=PHASE)]
        )

        rows = raw(
            "SELECT run_id, phase, attempt, status, duration_ms, tokens, cost_usd, tasks, "
            "retries FROM phase_metrics"
        )
        assert rows == [("run-1", PHASE, 1, outcome.value, 2500.0, 30, 1.0, 2, 1)]
        _, phases, _ = await store.run_rows("run-1")
        assert phases[0].status is outcome
        assert phases[0].finished_at is not None

    asyncio.run(body())


def test_set_phase_status_moves_phase_and_run_together(store: Store, raw: Raw) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.set_phase_status(
            "run-1",
            PHASE,
            1,
            PhaseStatus.FAILED,
            [EventDraft(type="phase.failed", phase=PHASE), EventDraft(type="run.failed")],
            error="gate failed",
            run_status=RunStatus.FAILED,
        )
        run, phases, _ = await store.run_rows("run-1")
        assert (run.status, run.error) == (RunStatus.FAILED, "gate failed")
        assert phases[0].status is PhaseStatus.FAILED
        assert (await types(store))[-2:] == ["phase.failed", "run.failed"]
        assert len(raw("SELECT * FROM phase_metrics")) == 1

    asyncio.run(body())


def test_set_phase_status_refusals_write_nothing(store: Store, raw: Raw) -> None:
    """An illegal phase move, or a legal one paired with an illegal run move, is refused
    whole: no phase change, no metrics row, no event."""

    async def body() -> None:
        await running_run(store, keys=())
        before = await store.run_rows("run-1")
        events_before = await store.events("run-1")

        with pytest.raises(IllegalTransitionError):  # running → passed skips ready
            await store.set_phase_status(
                "run-1", PHASE, 1, PhaseStatus.PASSED, [EventDraft(type="phase.passed")]
            )
        with pytest.raises(IllegalTransitionError):  # the run cannot go back to created
            await store.set_phase_status(
                "run-1",
                PHASE,
                1,
                PhaseStatus.FAILED,
                [EventDraft(type="phase.failed")],
                run_status=RunStatus.CREATED,
            )
        with pytest.raises(RunNotFoundError):  # no such attempt
            await store.set_phase_status(
                "run-1", PHASE, 2, PhaseStatus.FAILED, [EventDraft(type="phase.failed")]
            )

        assert await store.run_rows("run-1") == before
        assert await store.events("run-1") == events_before
        assert raw("SELECT * FROM phase_metrics") == []

    asyncio.run(body())


def test_retry_phase_starts_a_new_attempt_and_reopens_the_run(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.set_phase_status(
            "run-1",
            PHASE,
            1,
            PhaseStatus.FAILED,
            [EventDraft(type="phase.failed")],
            run_status=RunStatus.FAILED,
        )

        assert await store.retry_phase("run-1", PHASE, reason="try again") == 2

        run, phases, _ = await store.run_rows("run-1")
        assert run.status is RunStatus.RUNNING
        assert sorted((p.attempt, p.status) for p in phases) == [
            (1, PhaseStatus.FAILED),
            (2, PhaseStatus.RUNNING),
        ]
        events = await chain_ok(store)
        assert [e.type for e in events[-2:]] == ["phase.started", "run.resumed"]
        assert events[-2].payload == {"attempt": 2, "reason": "try again"}

        # A running attempt is superseded (failed) by the retry; the run stays running.
        assert await store.retry_phase("run-1", PHASE, reason="again") == 3
        _, phases, _ = await store.run_rows("run-1")
        statuses = {p.attempt: p.status for p in phases}
        assert statuses == {1: PhaseStatus.FAILED, 2: PhaseStatus.FAILED, 3: PhaseStatus.RUNNING}
        assert (await types(store))[-1] == "phase.started"

    asyncio.run(body())


def test_retry_phase_refuses_a_phase_that_has_not_started_or_has_passed(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        await store.set_phase_status(
            "run-1", PHASE, 1, PhaseStatus.PASSED, [EventDraft(type="phase.passed")]
        )
        before = await store.events("run-1")

        with pytest.raises(RunStateError) as caught:
            await store.retry_phase("run-1", "critique", reason="x")
        assert caught.value.run_id == "run-1"
        with pytest.raises(RunStateError):
            await store.retry_phase("run-1", PHASE, reason="x")

        assert await store.events("run-1") == before

    asyncio.run(body())


# -- tasks: create and claim ----------------------------------------------------------------


def test_create_tasks_inserts_pending_tasks_with_their_event(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=("b", "a"))
        tasks = await tasks_by_key(store)
        assert sorted(tasks) == ["a", "b"]
        assert all(t.status is TaskStatus.PENDING and t.tries == 0 for t in tasks.values())
        assert all((t.phase, t.attempt, t.agent) == (PHASE, 1, "writer") for t in tasks.values())
        assert (await types(store))[-1] == "phase.fanned_out"

    asyncio.run(body())


def test_create_tasks_with_a_duplicate_key_writes_nothing(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=("a",))
        before = await store.events("run-1")
        duplicate = [*new_tasks("run-1", "b"), NewTask(id="other", key="a", agent="w", iteration=0)]

        with pytest.raises(StoreError):
            await store.create_tasks("run-1", PHASE, 1, duplicate, EventDraft(type="x"))

        assert sorted(await tasks_by_key(store)) == ["a"]
        assert await store.events("run-1") == before

    asyncio.run(body())


def test_claim_tasks_takes_up_to_limit_oldest_first_each_with_a_distinct_token(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=("c", "a", "b"))
        clock.advance(1)
        await store.create_tasks(
            "run-1", PHASE, 1, new_tasks("run-1", "0-late"), EventDraft(type="more")
        )
        now = clock.now()

        first = await claim(store, clock, limit=2, owner="w1", lease=45)
        rest = await claim(store, clock, limit=5, owner="w2", lease=None)

        assert [c.task.key for c in first] == ["a", "b"]
        assert [c.task.key for c in rest] == ["c", "0-late"]
        tokens = [c.lease_token for c in first + rest]
        assert len(set(tokens)) == 4 and all(tokens)
        assert await claim(store, clock, limit=5) == []  # nothing left to claim
        tasks = await tasks_by_key(store)
        assert tasks["a"].status is TaskStatus.RUNNING
        assert (tasks["a"].lease_owner, tasks["a"].lease_expires_at) == ("w1", now + 45)
        assert (tasks["c"].lease_owner, tasks["c"].lease_expires_at) == ("w2", now + 180)
        assert all(t.tries == 1 for t in tasks.values())
        started = [e for e in await chain_ok(store) if e.type == "task.started"]
        assert [e.payload["key"] for e in started] == ["a", "b", "c", "0-late"]
        assert started[0].payload["owner"] == "w1"
        assert await claim(store, clock, limit=0) == []

    asyncio.run(body())


def test_claim_tasks_waits_for_not_before(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, keys=("a",))
        held = await claim_one(store, clock)
        retry_at = clock.now() + 60
        await store.fail_task(
            held.task.id, held.lease_token, error="429", retry_at=retry_at, strategy="backoff"
        )

        assert await claim(store, clock, at=retry_at - 1) == []
        again = await claim_one(store, clock, at=retry_at)
        assert again.task.tries == 2
        assert again.lease_token != held.lease_token

    asyncio.run(body())


@pytest.mark.parametrize(
    "path",
    [
        (),
        (RunStatus.RUNNING, RunStatus.PAUSED),
        (RunStatus.RUNNING, RunStatus.NEEDS_ATTENTION),
        (RunStatus.RUNNING, RunStatus.CANCELLED),
    ],
    ids=["created", "paused", "needs_attention", "cancelled"],
)
def test_claim_tasks_never_claims_tasks_of_a_run_that_is_not_running(
    store: Store, clock: Ticking, path: tuple[RunStatus, ...]
) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        await store.start_phase("run-1", PHASE, 1, EventDraft(type="phase.started"))
        await store.create_tasks("run-1", PHASE, 1, new_tasks("run-1", "a"), EventDraft(type="x"))
        for status in path:
            await store.set_run_status("run-1", status, EventDraft(type=f"run.{status}"))
        before = await store.events("run-1")

        assert await claim(store, clock, "run-1", limit=5) == []
        assert await claim(store, clock, None, limit=5) == []

        assert (await tasks_by_key(store))["a"].status is TaskStatus.PENDING
        assert await store.events("run-1") == before

    asyncio.run(body())


def test_a_claim_returns_each_task_as_the_store_then_holds_it(store: Store, clock: Ticking) -> None:
    """The records a claim returns are made from the rows it read before leasing them
    (``task_queries.leased``): they equal the rows read back, for a fresh task and for one
    claimed again after a failure, which resumes from its checkpoint."""

    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        first = await claim_one(store, clock)
        await store.save_checkpoint(first.task.id, first.lease_token, {"done": 3})
        await store.fail_task(
            first.task.id, first.lease_token, error="flaky", retry_at=clock.now(), strategy="retry"
        )
        clock.advance(1.0)

        claimed = {item.task.key: item for item in await claim(store, clock, limit=2)}

        stored = await tasks_by_key(store)
        assert {key: item.task for key, item in claimed.items()} == stored
        assert claimed["a"].task.tries == 2 and claimed["b"].task.tries == 1
        assert claimed["a"].checkpoint == {"done": 3} and claimed["b"].checkpoint is None
        assert all(item.task.lease_owner == "worker-1" for item in claimed.values())

    asyncio.run(body())


def lease(clock: Ticking, *, limit: int = 8, concurrency: int = 8, held: int = 0) -> ClaimRequest:
    return ClaimRequest(
        owner="worker-1", now=clock.now(), limit=limit, concurrency=concurrency, held=held
    )


def test_create_tasks_with_a_claim_claims_them_in_the_same_transaction(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        before = len(await store.events("run-1"))

        claimed = await store.create_tasks(
            "run-1",
            PHASE,
            1,
            new_tasks("run-1", "b", "a", "c"),
            EventDraft(type="phase.progress", phase=PHASE),
            claim=lease(clock, limit=2),
        )

        assert [c.task.key for c in claimed] == ["a", "b"]  # as claim_tasks: oldest, by key
        assert all(c.lease_token and c.checkpoint is None for c in claimed)
        tasks = await tasks_by_key(store)
        assert tasks["a"].status is TaskStatus.RUNNING and tasks["a"].lease_owner == "worker-1"
        assert tasks["a"].lease_expires_at == clock.now() + 180  # the task's own lease
        assert tasks["c"].status is TaskStatus.PENDING
        events = (await chain_ok(store))[before:]
        assert [e.type for e in events] == ["phase.progress", "task.started", "task.started"]
        assert [c.task.key for c in await claim(store, clock, limit=5)] == ["c"]

    asyncio.run(body())


def test_start_phases_starts_attempts_with_their_first_tasks_in_one_transaction(
    store: Store, clock: Ticking
) -> None:
    """Two phases that start together: both ``phase.started`` first, then each one's tasks,
    then the claim, all stamped with one commit's time."""

    async def body() -> None:
        await store.create_run(new_run("run-1"))
        await store.set_run_status("run-1", RunStatus.RUNNING, EventDraft(type="run.started"))
        before = len(await store.events("run-1"))

        claimed = await store.start_phases(
            "run-1",
            [
                PhaseStart(
                    phase=phase,
                    attempt=1,
                    started=EventDraft(type="phase.started", phase=phase),
                    tasks=[
                        NewTask(id=f"run-1.{phase}.1.{key}", key=key, agent="a", iteration=1)
                        for key in keys
                    ],
                    created=EventDraft(type="phase.progress", phase=phase),
                )
                for phase, keys in (("security", ("s1",)), ("story-loop", ("l1", "l2")))
            ],
            claim=lease(clock, limit=2),
        )

        assert [(c.task.phase, c.task.key) for c in claimed] == [
            ("security", "s1"),
            ("story-loop", "l1"),
        ]
        _, phases, tasks = await store.run_rows("run-1")
        assert {(p.phase, p.attempt, p.status) for p in phases} == {
            ("security", 1, PhaseStatus.RUNNING),
            ("story-loop", 1, PhaseStatus.RUNNING),
        }
        assert sorted(t.key for t in tasks) == ["l1", "l2", "s1"]
        events = (await chain_ok(store))[before:]
        assert [(e.type, e.phase) for e in events] == [
            ("phase.started", "security"),
            ("phase.started", "story-loop"),
            ("phase.progress", "security"),
            ("phase.progress", "story-loop"),
            ("task.started", "security"),
            ("task.started", "story-loop"),
        ]
        assert len({e.at for e in events}) == 1

    asyncio.run(body())


def test_start_phases_writes_nothing_when_an_attempt_already_exists(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())  # ideation attempt 1 is running
        before = await store.events("run-1")

        with pytest.raises(StoreError):
            await store.start_phases(
                "run-1",
                [
                    PhaseStart(phase="prd", attempt=1, started=EventDraft(type="phase.started")),
                    PhaseStart(phase=PHASE, attempt=1, started=EventDraft(type="phase.started")),
                ],
            )

        _, phases, _ = await store.run_rows("run-1")
        assert [(p.phase, p.attempt) for p in phases] == [(PHASE, 1)]
        assert await store.events("run-1") == before

    asyncio.run(body())


def test_record_artifacts_with_a_claim_claims_the_gate_task_in_the_same_transaction(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        before = len(await store.events("run-1"))

        ready = await store.record_artifacts(
            "run-1",
            PHASE,
            1,
            [NewArtifact(type="IdeaSpec", content={"a": 1}, provenance={})],
            EventDraft(type="phase.ready", phase=PHASE),
            new_tasks("run-1", "~gate"),
            claim=lease(clock),
        )

        assert [a.type for a in ready.artifacts] == ["IdeaSpec"]
        assert [c.task.key for c in ready.claimed] == ["~gate"]
        assert (await tasks_by_key(store))["~gate"].lease_owner == "worker-1"
        events = (await chain_ok(store))[before:]
        assert [e.type for e in events] == ["phase.ready", "task.started"]
        assert await claim(store, clock, limit=5) == []

    asyncio.run(body())


def test_create_tasks_with_a_claim_writes_nothing_when_the_claim_fails(
    store: Store, clock: Ticking, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tasks, their event and the claim are one transaction."""

    async def body() -> None:
        await running_run(store, keys=())
        before = await store.events("run-1")

        def broken(*args: object, **kwargs: object) -> None:
            raise StoreError("the lease could not be written")

        monkeypatch.setattr(tq, "lease_tasks", broken)
        with pytest.raises(StoreError, match="lease could not"):
            await store.create_tasks(
                "run-1", PHASE, 1, new_tasks("run-1", "a"), EventDraft(type="x"), claim=lease(clock)
            )

        assert await tasks_by_key(store) == {}
        assert await store.events("run-1") == before

    asyncio.run(body())


def test_create_tasks_claims_the_runs_due_tasks_oldest_first_and_no_other_runs(
    store: Store, clock: Ticking
) -> None:
    """The claim is ``claim_tasks``'s: a retry that has come due goes first, one that has
    not waits, another run's pending task is left alone."""

    async def body() -> None:
        await running_run(store, keys=("due", "later"))
        await running_run(store, "run-2", keys=("theirs",))
        due, later = await claim(store, clock, limit=2)
        await store.fail_task(
            due.task.id, due.lease_token, error="x", retry_at=clock.now(), strategy="backoff"
        )
        await store.fail_task(
            later.task.id,
            later.lease_token,
            error="x",
            retry_at=clock.now() + 60,
            strategy="backoff",
        )
        clock.advance(1)

        claimed = await store.create_tasks(
            "run-1", PHASE, 1, new_tasks("run-1", "new"), EventDraft(type="x"), claim=lease(clock)
        )

        assert [c.task.key for c in claimed] == ["due", "new"]
        assert (await tasks_by_key(store, "run-2"))["theirs"].status is TaskStatus.PENDING

    asyncio.run(body())


def test_create_tasks_without_a_claim_or_room_claims_nothing(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        drafts = [new_tasks("run-1", "a"), new_tasks("run-1", "b")]

        assert await store.create_tasks("run-1", PHASE, 1, drafts[0], EventDraft(type="x")) == []
        assert (
            await store.create_tasks(
                "run-1", PHASE, 1, drafts[1], EventDraft(type="x"), claim=lease(clock, limit=0)
            )
            == []
        )

        tasks = await tasks_by_key(store)
        assert {t.status for t in tasks.values()} == {TaskStatus.PENDING}
        assert "task.started" not in await types(store)

    asyncio.run(body())


def test_create_tasks_claims_no_task_of_a_run_that_is_not_running(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused"))

        claimed = await store.create_tasks(
            "run-1", PHASE, 1, new_tasks("run-1", "a"), EventDraft(type="x"), claim=lease(clock)
        )

        assert claimed == []
        assert (await tasks_by_key(store))["a"].status is TaskStatus.PENDING

    asyncio.run(body())


@pytest.mark.parametrize(
    ("throttled", "concurrency", "held", "expected"),
    [(True, 4, 0, 2), (True, 4, 1, 1), (True, 4, 2, 0), (True, 1, 0, 1), (False, 4, 3, 3)],
)
def test_create_tasks_claims_half_the_concurrency_for_a_throttled_run(
    store: Store, clock: Ticking, throttled: bool, concurrency: int, held: int, expected: int
) -> None:
    """The cap ``claim_within_budget`` applies (``budget.throttled``): half of the
    claimer's concurrency (at least one), less the run's tasks it holds; none otherwise."""

    async def body() -> None:
        await running_run(store, keys=())
        if throttled:
            mark = EventDraft(type="budget.throttled", payload={"mark": "run:tokens:throttle"})
            assert len(await UsageStore(store).announce("run-1", [mark])) == 1

        claimed = await store.create_tasks(
            "run-1",
            PHASE,
            1,
            new_tasks("run-1", "a", "b", "c"),
            EventDraft(type="x"),
            claim=lease(clock, limit=8, concurrency=concurrency, held=held),
        )

        assert len(claimed) == expected

    asyncio.run(body())


@pytest.mark.parametrize(
    ("throttled", "concurrency", "held", "expected"),
    [(True, 4, 0, 2), (True, 4, 2, 0), (True, 8, 0, 3), (False, 4, 3, 3)],
)
def test_a_phase_start_claims_half_the_concurrency_for_a_throttled_run(
    store: Store, clock: Ticking, throttled: bool, concurrency: int, held: int, expected: int
) -> None:
    """The same cap on the tasks a phase start claims, whether they are inserted leased (the
    room holds them all) or claimed after the insert (it does not)."""

    async def body() -> None:
        await running_run(store, keys=())
        if throttled:
            mark = EventDraft(type="budget.throttled", payload={"mark": "run:tokens:throttle"})
            assert len(await UsageStore(store).announce("run-1", [mark])) == 1
        starts = [_started_with_tasks("prd", "a", "b", "c")]

        claimed = await store.start_phases(
            "run-1", starts, claim=lease(clock, limit=8, concurrency=concurrency, held=held)
        )

        assert [item.task.key for item in claimed] == ["a", "b", "c"][:expected]
        stored = await tasks_by_key(store)
        assert [item.task for item in claimed] == [stored[item.task.key] for item in claimed]
        running = sorted(key for key, task in stored.items() if task.status is TaskStatus.RUNNING)
        assert running == ["a", "b", "c"][:expected]

    asyncio.run(body())


def test_claim_tasks_without_a_run_claims_across_running_runs(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, "run-1", keys=("a", "b"))
        await running_run(store, "run-2", keys=("a",))
        await running_run(store, "run-3", keys=("a",))
        await store.set_run_status("run-3", RunStatus.PAUSED, EventDraft(type="run.paused"))

        claimed = await claim(store, clock, None, limit=10, owner="w")

        assert sorted(c.task.id for c in claimed) == ["run-1-a", "run-1-b", "run-2-a"]
        assert len({c.lease_token for c in claimed}) == 3
        for run_id in ("run-1", "run-2"):
            await chain_ok(store, run_id)
        assert await claim(store, clock, "run-2", limit=10) == []

    asyncio.run(body())


# -- tasks: leases and fenced writes --------------------------------------------------------


def test_renew_lease_extends_the_lease_with_a_heartbeat(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)

        await store.renew_lease(held.task.id, held.lease_token, lease_seconds=90, now=500.0 + 1e9)

        task = (await tasks_by_key(store))["a"]
        assert task.lease_expires_at == 500.0 + 1e9 + 90
        events = await store.events("run-1")
        assert events[-1].type == "task.heartbeat"
        assert events[-1].task_id == held.task.id

    asyncio.run(body())


def test_renew_lease_with_a_stale_token_raises_and_writes_no_event(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)
        before = await store.events("run-1")

        with pytest.raises(StaleLeaseError):
            await store.renew_lease(held.task.id, "not-the-token", lease_seconds=90, now=0)
        with pytest.raises(StaleLeaseError):
            await store.renew_lease("no-such-task", held.lease_token, lease_seconds=90, now=0)

        assert await store.events("run-1") == before
        assert (await tasks_by_key(store))["a"].lease_expires_at == clock.now() + LEASE

    asyncio.run(body())


def test_save_checkpoint_is_fenced_and_comes_back_with_the_next_claim(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)
        assert held.checkpoint is None

        await store.save_checkpoint(held.task.id, held.lease_token, {"done": [1, 2], "é": "ü"})
        with pytest.raises(StaleLeaseError):
            await store.save_checkpoint(held.task.id, "stale", {"done": []})
        await store.release_task(held.task.id, held.lease_token, reason="shutdown")

        again = await claim_one(store, clock)
        assert again.checkpoint == {"done": [1, 2], "é": "ü"}
        assert "task.checkpoint" in await types(store)

    asyncio.run(body())


def test_record_output_writes_once_with_its_calls_and_event(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        held = await claim_one(store, clock)
        output = {"ideas": ["x", "y"], "score": 0.5, "text": "naïve ✓"}

        await store.record_output(
            held.task.id, held.lease_token, output, [call(), call(1, 2, 0.0)], {"chars": 9}
        )

        assert await store.outputs("run-1", PHASE, 1) == {"a": output}
        task = (await tasks_by_key(store))["a"]
        assert task.status is TaskStatus.SUCCEEDED
        assert (task.lease_owner, task.lease_expires_at) == (None, None)
        assert task.finished_at is not None
        events = await store.events("run-1")
        assert events[-1].type == "task.succeeded"
        assert events[-1].payload == {
            "key": "a",
            "agent": "writer",
            "chars": 9,
            "output_hash": content_hash(output),  # of what the store holds
        }
        calls = await store.model_calls("run-1")
        assert [(c["key"], c["tokens_in"], c["tokens_out"]) for c in calls] == [
            ("a", 12, 34),
            ("a", 1, 2),
        ]
        # The same holder cannot write again: the lease ended with the output.
        with pytest.raises(StaleLeaseError):
            await store.record_output(held.task.id, held.lease_token, {"again": 1}, [], {})
        assert await store.outputs("run-1", PHASE, 1) == {"a": output}

    asyncio.run(body())


def test_record_output_refuses_a_second_output_for_the_same_key(
    store: Store, clock: Ticking, raw: Raw
) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)
        await store.record_output(held.task.id, held.lease_token, {"first": 1}, [], {})
        # Behind the store's back, make the task claimable again.
        raw("UPDATE tasks SET status = 'pending' WHERE id = ?", (held.task.id,))
        again = await claim_one(store, clock)
        before = await store.events("run-1")

        with pytest.raises(OutputExistsError):
            await store.record_output(again.task.id, again.lease_token, {"second": 2}, [call()], {})

        assert await store.outputs("run-1", PHASE, 1) == {"a": {"first": 1}}
        assert await store.model_calls("run-1") == []
        assert await store.events("run-1") == before
        assert (await tasks_by_key(store))["a"].status is TaskStatus.RUNNING

    asyncio.run(body())


def test_record_outputs_writes_a_batch_across_runs_in_one_call(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, "run-1", keys=("a", "b"))
        await running_run(store, "run-2", keys=("c",))
        held = [
            *await claim(store, clock, "run-1", limit=2),
            await claim_one(store, clock, run_id="run-2"),
        ]
        writes = [
            OutputWrite(
                task_id=item.task.id,
                token=item.lease_token,
                output={"key": item.task.key},
                calls=[call(index + 1, 1)],
                payload={"n": index},
            )
            for index, item in enumerate(held)
        ]

        assert await store.record_outputs(writes) == [None, None, None]

        assert await store.outputs("run-1", PHASE, 1) == {"a": {"key": "a"}, "b": {"key": "b"}}
        assert await store.outputs("run-2", PHASE, 1) == {"c": {"key": "c"}}
        for run_id in ("run-1", "run-2"):
            done = [e for e in await chain_ok(store, run_id) if e.type == "task.succeeded"]
            expected = [w for w, h in zip(writes, held, strict=True) if h.task.run_id == run_id]
            assert [e.task_id for e in done] == [w.task_id for w in expected]  # write order
            assert [e.payload["n"] for e in done] == [w.payload["n"] for w in expected]
        calls = await store.model_calls("run-1") + await store.model_calls("run-2")
        assert sorted((c["key"], c["tokens_in"]) for c in calls) == [("a", 1), ("b", 2), ("c", 3)]
        assert {t.status for t in (await tasks_by_key(store)).values()} == {TaskStatus.SUCCEEDED}
        assert await store.record_outputs([]) == []

    asyncio.run(body())


def test_record_outputs_rejects_bad_writes_alone_and_writes_the_rest(
    store: Store, clock: Ticking, raw: Raw
) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b", "c"))
        first = await claim_one(store, clock)
        await store.record_output(first.task.id, first.lease_token, {"first": 1}, [], {})
        raw("UPDATE tasks SET status = 'pending' WHERE id = ?", (first.task.id,))
        again, b, c = await claim(store, clock, limit=3)
        assert [again.task.key, b.task.key, c.task.key] == ["a", "b", "c"]

        def write(item: ClaimedTask, token: str | None = None) -> OutputWrite:
            return OutputWrite(
                task_id=item.task.id,
                token=token or item.lease_token,
                output={"by": item.task.key},
                calls=[call()],
            )

        errors = await store.record_outputs(
            [write(again), write(b, "stale"), write(c), write(c), write(b)]
        )

        assert [type(e).__name__ if e else None for e in errors] == [
            "OutputExistsError",  # a's slot holds the first output
            "StaleLeaseError",  # not b's token
            None,
            "StaleLeaseError",  # c's lease ended with the write before it
            None,
        ]
        assert await store.outputs("run-1", PHASE, 1) == {
            "a": {"first": 1},
            "b": {"by": "b"},
            "c": {"by": "c"},
        }
        assert len(await store.model_calls("run-1")) == 2  # rejected writes left none
        done = [e.task_id for e in await chain_ok(store) if e.type == "task.succeeded"]
        assert done == [first.task.id, c.task.id, b.task.id]
        assert (await tasks_by_key(store))["a"].status is TaskStatus.RUNNING

    asyncio.run(body())


def test_concurrent_batches_spanning_the_same_runs_do_not_wait_on_each_other(
    store: Store,
    clock: Ticking,
    store_url: str,
    make_store: Callable[..., Store],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two processes' batches, each with a task of run A and one of run B in opposite orders,
    take the runs' ledger locks in one order: no deadlock (on PostgreSQL each one cost a
    second of deadlock detection and a retry logged as the database being unavailable)."""
    pairs = 12

    async def body() -> None:
        keys = [f"k{i:02d}" for i in range(2 * pairs)]
        await running_run(store, "run-a", keys=keys)
        await running_run(store, "run-b", keys=keys)
        a = await claim(store, clock, "run-a", limit=len(keys))
        b = await claim(store, clock, "run-b", limit=len(keys))
        other = make_store(store_url, clock)  # a second process, as it were
        try:

            def write(item: ClaimedTask) -> OutputWrite:
                return OutputWrite(
                    task_id=item.task.id, token=item.lease_token, output={"k": item.task.key}
                )

            for i in range(0, 2 * pairs, 2):
                results = await asyncio.gather(
                    store.record_outputs([write(a[i]), write(b[i])]),
                    other.record_outputs([write(b[i + 1]), write(a[i + 1])]),
                )
                assert results == [[None, None], [None, None]]
        finally:
            await other.close()
        for run_id in ("run-a", "run-b"):
            assert len(await store.outputs(run_id, PHASE, 1)) == 2 * pairs
            await chain_ok(store, run_id)

    with caplog.at_level("WARNING"):
        asyncio.run(body())
    assert not [r.getMessage() for r in caplog.records if "deadlock" in r.getMessage()]


def test_record_outputs_refuses_an_output_that_is_not_json_alone(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        a, b = await claim(store, clock, limit=2)
        writes = [
            OutputWrite(task_id=a.task.id, token=a.lease_token, output={"score": float("nan")}),
            OutputWrite(task_id=b.task.id, token=b.lease_token, output={"score": 1.0}),
        ]

        bad, good = await store.record_outputs(writes)

        assert isinstance(bad, StoreError)
        assert "not JSON" in str(bad)
        assert good is None
        assert await store.outputs("run-1", PHASE, 1) == {"b": {"score": 1.0}}
        assert (await tasks_by_key(store))["a"].status is TaskStatus.RUNNING

    asyncio.run(body())


def test_fail_task_with_retry_at_puts_the_task_back_with_task_retry(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)
        retry_at = clock.now() + 30

        await store.fail_task(
            held.task.id,
            held.lease_token,
            error="rate limited",
            retry_at=retry_at,
            strategy="backoff",
            calls=[call()],
        )

        task = (await tasks_by_key(store))["a"]
        assert (task.status, task.error, task.not_before) == (
            TaskStatus.PENDING,
            "rate limited",
            retry_at,
        )
        assert task.lease_owner is None
        events = await store.events("run-1")
        assert events[-1].type == "task.retry"
        assert events[-1].payload["strategy"] == "backoff"
        assert events[-1].payload["error"] == "rate limited"
        assert len(await store.model_calls("run-1")) == 1
        with pytest.raises(StaleLeaseError):
            await store.fail_task(
                held.task.id, held.lease_token, error="x", retry_at=None, strategy="x"
            )

    asyncio.run(body())


def test_a_failure_message_with_a_nul_character_is_kept_alike_on_both_dialects(
    store: Store, clock: Ticking
) -> None:
    """Agent errors echo model or tool output, which may hold a NUL; PostgreSQL's text columns
    refuse NUL, so both dialects store it as the visible escape ``\\x00``."""

    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)
        message = "model replied: bad\x00byte"

        await store.fail_task(
            held.task.id, held.lease_token, error=message, retry_at=None, strategy="none"
        )

        task = (await tasks_by_key(store))["a"]
        assert task.status is TaskStatus.FAILED
        assert task.error == "model replied: bad\\x00byte"
        await chain_ok(store)

    asyncio.run(body())


def test_fail_task_without_retry_at_fails_it_for_good(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)

        await store.fail_task(
            held.task.id, held.lease_token, error="schema", retry_at=None, strategy="none"
        )

        task = (await tasks_by_key(store))["a"]
        assert (task.status, task.error) == (TaskStatus.FAILED, "schema")
        assert task.finished_at is not None
        assert (await store.events("run-1"))[-1].type == "task.failed"
        assert await claim(store, clock, at=clock.now() + 10_000) == []

    asyncio.run(body())


def test_release_task_hands_it_back_and_stops_the_token(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock)

        await store.release_task(held.task.id, held.lease_token, reason="shutdown")

        task = (await tasks_by_key(store))["a"]
        assert (task.status, task.lease_owner) == (TaskStatus.PENDING, None)
        last = (await store.events("run-1"))[-1]
        assert (last.type, last.payload["strategy"], last.payload["reason"]) == (
            "task.retry",
            "released",
            "shutdown",
        )
        with pytest.raises(StaleLeaseError):
            await store.release_task(held.task.id, held.lease_token, reason="again")
        with pytest.raises(StaleLeaseError):
            await store.record_output(held.task.id, held.lease_token, {}, [], {})

    asyncio.run(body())


def test_release_unrun_hands_back_only_the_owners_tasks_it_is_not_running(
    store: Store, clock: Ticking
) -> None:
    """A lost commit's reply can leave tasks leased to a process that never learned it:
    they go back at once, and the tasks it runs, another owner's and pending ones stay."""

    async def body() -> None:
        await running_run(store, keys=("a", "b", "c", "d"))
        mine = await claim(store, clock, limit=2)  # a, b
        theirs = await claim_one(store, clock, owner="worker-2")  # c
        running = {mine[0].task.id}

        released = await store.release_unrun(
            "run-1", owner="worker-1", running=running, reason="lost reply"
        )

        assert released == [mine[1].task.id]
        tasks = await tasks_by_key(store)
        assert (tasks[mine[1].task.key].status, tasks[mine[1].task.key].lease_owner) == (
            TaskStatus.PENDING,
            None,
        )
        assert tasks[mine[1].task.key].stalls == 0
        assert tasks[mine[0].task.key].lease_owner == "worker-1"
        assert tasks[theirs.task.key].lease_owner == "worker-2"
        assert tasks["d"].status is TaskStatus.PENDING
        last = (await store.events("run-1"))[-1]
        assert (last.type, last.task_id, last.payload["strategy"], last.payload["reason"]) == (
            "task.retry",
            mine[1].task.id,
            "released",
            "lost reply",
        )
        with pytest.raises(StaleLeaseError):  # its old lease token stopped working
            await store.record_output(mine[1].task.id, mine[1].lease_token, {}, [], {})
        before = len(await store.events("run-1"))
        assert (
            await store.release_unrun("run-1", owner="worker-1", running=running, reason="again")
            == []
        )
        assert len(await store.events("run-1")) == before  # nothing to hand back: no event

    asyncio.run(body())


# -- expiry and the unsticker ---------------------------------------------------------------


def test_expired_tasks_lists_only_running_tasks_whose_lease_ran_out(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b", "c", "d"))
        now = clock.now()
        await claim_one(store, clock, lease=10)  # a: expires at now + 10
        await claim_one(store, clock, lease=20)  # b: expires at now + 20
        await claim_one(store, clock, lease=500)  # c: still held; d stays pending

        assert await store.expired_tasks(now=now + 10) == []  # not before its expiry
        assert [t.key for t in await store.expired_tasks(now=now + 15)] == ["a"]
        assert [t.key for t in await store.expired_tasks(now=now + 100)] == ["a", "b"]
        assert [t.key for t in await store.expired_tasks(now=now + 100, limit=1)] == ["a"]

    asyncio.run(body())


def test_reclaim_task_applies_the_remedy_with_stalled_then_retry_events(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock, lease=10)
        [expired] = await store.expired_tasks(now=clock.now() + 11)
        chosen = choose_remedy(
            stalls=expired.stalls,
            batch_scale=expired.batch_scale,
            timeout_scale=expired.timeout_scale,
            model_shift=expired.model_shift,
            fallbacks=1,
            optional=False,
        )
        assert chosen.strategy is Strategy.SMALLER_BATCH

        assert await store.reclaim_task(
            expired, now=clock.now() + 11, remedy=chosen, cause="missed heartbeats"
        )

        task = (await tasks_by_key(store))["a"]
        assert (task.status, task.stalls, task.batch_scale) == (TaskStatus.PENDING, 1, 0.5)
        assert (task.lease_owner, task.lease_expires_at) == (None, None)
        events = await chain_ok(store)
        stalled, retry = events[-2:]
        assert (stalled.type, retry.type) == ("phase.stalled", "task.retry")
        assert stalled.payload["cause"] == "missed heartbeats"
        assert stalled.payload["owner"] == "worker-1"
        assert retry.payload["strategy"] == "smaller-batch"
        assert retry.payload["batch_scale"] == 0.5
        # The zombie's late writes are rejected; the next claim carries the new settings.
        with pytest.raises(StaleLeaseError):
            await store.record_output(held.task.id, held.lease_token, {"zombie": 1}, [], {})
        with pytest.raises(StaleLeaseError):
            await store.renew_lease(held.task.id, held.lease_token, lease_seconds=10, now=0)
        again = await claim_one(store, clock, owner="worker-2")
        assert (again.task.batch_scale, again.task.stalls) == (0.5, 1)
        assert await store.outputs("run-1", PHASE, 1) == {}

    asyncio.run(body())


def test_reclaim_task_with_skip_optional_skips_the_task(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store)
        await claim_one(store, clock, lease=10)
        [expired] = await store.expired_tasks(now=clock.now() + 11)

        assert await store.reclaim_task(
            expired, now=clock.now() + 11, remedy=remedy(Strategy.SKIP_OPTIONAL), cause="stall"
        )

        assert (await tasks_by_key(store))["a"].status is TaskStatus.SKIPPED
        assert (await store.get_run("run-1")).status is RunStatus.RUNNING
        assert (await store.events("run-1"))[-1].payload["strategy"] == "skip-optional"
        assert await claim(store, clock, at=clock.now() + 100) == []

    asyncio.run(body())


def test_reclaim_task_with_escalate_sets_the_run_needs_attention(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store)
        await claim_one(store, clock, lease=10)
        [expired] = await store.expired_tasks(now=clock.now() + 11)

        assert await store.reclaim_task(
            expired, now=clock.now() + 11, remedy=remedy(Strategy.ESCALATE), cause="stall"
        )

        run = await store.get_run("run-1")
        assert run.status is RunStatus.NEEDS_ATTENTION
        assert run.error
        events = await chain_ok(store)
        assert [e.type for e in events[-3:]] == [
            "phase.stalled",
            "task.retry",
            "run.needs_attention",
        ]
        assert events[-2].payload["strategy"] == "escalate"
        assert await claim(store, clock, at=clock.now() + 100) == []  # the run is not running

    asyncio.run(body())


def test_a_renewed_lease_is_not_reclaimed(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store)
        held = await claim_one(store, clock, lease=10)
        later = clock.now() + 11
        [expired] = await store.expired_tasks(now=later)
        # The owner's heartbeat lands between the reaper's read and its reclaim.
        await store.renew_lease(held.task.id, held.lease_token, lease_seconds=60, now=later)
        before = await store.events("run-1")

        assert not await store.reclaim_task(
            expired, now=later, remedy=remedy(Strategy.RETRY), cause="stall"
        )

        assert await store.events("run-1") == before
        assert (await tasks_by_key(store))["a"].status is TaskStatus.RUNNING
        await store.record_output(held.task.id, held.lease_token, {"ok": 1}, [], {})

    asyncio.run(body())


def test_a_task_is_reclaimed_once(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store)
        await claim_one(store, clock, lease=10)
        later = clock.now() + 11
        [expired] = await store.expired_tasks(now=later)

        assert await store.reclaim_task(
            expired, now=later, remedy=remedy(Strategy.RETRY), cause="x"
        )
        count = len(await store.events("run-1"))
        assert not await store.reclaim_task(
            expired, now=later, remedy=remedy(Strategy.RETRY), cause="x"
        )

        assert len(await store.events("run-1")) == count
        assert (await tasks_by_key(store))["a"].stalls == 1

    asyncio.run(body())


# -- artifacts and blobs --------------------------------------------------------------------


def test_record_artifacts_are_content_addressed_and_versioned(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        spec = {"title": "Tool", "features": ["a", "b"], "note": "ü"}
        ready_attempt = await store.record_artifacts(
            "run-1",
            PHASE,
            1,
            [
                NewArtifact(type="IdeaSpec", content=spec, provenance={"from": ["a"]}),
                NewArtifact(type="Copy", content=spec, provenance={}),
            ],
            EventDraft(type="phase.ready", phase=PHASE, payload={"n": 2}),
        )
        records = ready_attempt.artifacts
        assert ready_attempt.claimed == []

        assert [(r.type, r.version) for r in records] == [("IdeaSpec", 1), ("Copy", 1)]
        assert records[0].content_hash == records[1].content_hash == content_hash(spec)
        assert await store.blob(records[0].content_hash) == spec
        _, phases, _ = await store.run_rows("run-1")
        assert phases[0].status is PhaseStatus.READY
        ready = (await store.events("run-1"))[-1]
        assert ready.type == "phase.ready"
        assert ready.payload == {"n": 2, "artifacts": {r.type: r.id for r in records}}

        await store.retry_phase("run-1", PHASE, reason="better")
        changed = {**spec, "title": "Tool 2"}
        [second] = (
            await store.record_artifacts(
                "run-1",
                PHASE,
                2,
                [NewArtifact(type="IdeaSpec", content=changed, provenance={})],
                EventDraft(type="phase.ready", phase=PHASE),
            )
        ).artifacts
        assert (second.version, second.attempt) == (2, 2)
        stored = await store.artifacts("run-1")
        assert [(a.type, a.version) for a in stored] == [
            ("Copy", 1),
            ("IdeaSpec", 1),
            ("IdeaSpec", 2),
        ]
        assert stored[0].provenance == {}
        assert stored[1].provenance == {"from": ["a"]}
        assert await store.blob(second.content_hash) == changed

    asyncio.run(body())


def test_record_artifacts_refuses_a_phase_that_is_not_running(store: Store) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        before = await store.events("run-1")

        with pytest.raises(IllegalTransitionError):
            await store.record_artifacts(
                "run-1",
                PHASE,
                1,
                [NewArtifact(type="IdeaSpec", content={}, provenance={})],
                EventDraft(type="phase.ready"),
            )

        assert await store.artifacts("run-1") == []
        assert await store.events("run-1") == before

    asyncio.run(body())


def test_blob_that_is_missing_or_altered_is_store_corrupt(store: Store, raw: Raw) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        [record] = (
            await store.record_artifacts(
                "run-1",
                PHASE,
                1,
                [NewArtifact(type="IdeaSpec", content={"a": 1}, provenance={})],
                EventDraft(type="phase.ready"),
            )
        ).artifacts
        with pytest.raises(StoreCorruptError):
            await store.blob("00" * 32)
        raw("UPDATE blobs SET content = ? WHERE hash = ?", ('{"a":2}', record.content_hash))
        with pytest.raises(StoreCorruptError) as caught:
            await store.blob(record.content_hash)
        assert caught.value.hint

    asyncio.run(body())


# -- the ledger -----------------------------------------------------------------------------


def test_events_page_in_id_order_per_run(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        await store.create_run(new_run("run-2"))
        for n in range(7):
            await store.append_event("run-1", EventDraft(type="run.progress", payload={"n": n}))
            await store.append_event("run-2", EventDraft(type="run.progress", payload={"n": -n}))

        everything = await store.events("run-1")
        assert len(everything) == 8
        assert all(e.run_id == "run-1" for e in everything)
        ids = [e.id for e in everything]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

        pages: list[EventRecord] = []
        after = 0
        while page := await store.events("run-1", after_id=after, limit=3):
            assert len(page) <= 3
            pages += page
            after = page[-1].id
        assert pages == everything
        assert await store.events("run-1", after_id=ids[-1]) == []
        assert [e.payload["n"] for e in everything[1:]] == list(range(7))

    asyncio.run(body())


def test_append_event_records_the_kind_and_keeps_the_chain(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        drafts = [
            EventDraft(type="task.progress", phase=PHASE, task_id="t", payload={"pct": 50}),
            EventDraft(type="phase.gate.judged", phase=PHASE, payload={"score": 0.75}),
            EventDraft(type="budget.warning", payload={"spent": 1.25, "of": 2}),
            EventDraft(type="run.note", payload={"text": "ünïcode ✓ \n\t", "nested": {"b": [1]}}),
        ]
        for draft in drafts:
            await store.append_event("run-1", draft)

        events = await chain_ok(store)
        assert [e.kind for e in events[1:]] == ["task", "gate", "cost", "decision"]
        assert [dict(e.payload) for e in events[1:]] == [dict(d.payload) for d in drafts]
        assert (events[1].phase, events[1].task_id) == (PHASE, "t")
        assert events[1].prev_hash == events[0].hash

    asyncio.run(body())


def test_every_state_change_keeps_one_verifiable_chain(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b", "c"))
        a, b, c = await claim(store, clock, limit=3, lease=10)
        await store.renew_lease(a.task.id, a.lease_token, lease_seconds=30, now=clock.now())
        await store.save_checkpoint(a.task.id, a.lease_token, {"step": 1})
        await store.record_output(a.task.id, a.lease_token, {"a": 1}, [call()], {})
        await store.fail_task(b.task.id, b.lease_token, error="e", retry_at=0.0, strategy="r")
        [expired] = await store.expired_tasks(now=clock.now() + 11)
        assert expired.id == c.task.id
        await store.reclaim_task(
            expired, now=clock.now() + 11, remedy=remedy(Strategy.RETRY), cause="x"
        )
        for held in await claim(store, clock, limit=2):
            await store.record_output(held.task.id, held.lease_token, {"k": 1}, [], {})
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        await store.set_phase_status(
            "run-1",
            PHASE,
            1,
            PhaseStatus.PASSED,
            [EventDraft(type="phase.passed"), EventDraft(type="run.completed")],
            run_status=RunStatus.COMPLETED,
        )

        events = await chain_ok(store)
        assert events[0].type == "run.created" and events[-1].type == "run.completed"
        assert len(events) > 15

    asyncio.run(body())


def test_model_calls_are_listed_oldest_first_with_their_task(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        a, b = await claim(store, clock, limit=2)
        await store.fail_task(
            b.task.id, b.lease_token, error="e", retry_at=0.0, strategy="r", calls=[call(1, 1)]
        )
        await store.record_output(a.task.id, a.lease_token, {}, [call(2, 2), call(3, 3)], {})

        calls = await store.model_calls("run-1")

        assert [(c["key"], c["tokens_in"]) for c in calls] == [("b", 1), ("a", 2), ("a", 3)]
        assert calls[0] == {
            "task_id": b.task.id,
            "phase": PHASE,
            "attempt": 1,
            "key": "b",
            "provider": "offline",
            "model": "offline-1",
            "prompt_hash": "ef" * 32,
            "tokens_in": 1,
            "tokens_out": 1,
            "cost_usd": 0.25,
            "latency_ms": 1.5,
            "outcome": "ok",
        }
        assert await store.model_calls("run-2") == []

    asyncio.run(body())


# -- wake-ups -------------------------------------------------------------------------------


def test_wait_for_work_returns_within_its_timeout(store: Store) -> None:
    async def body() -> None:
        await store.create_run(new_run("run-1"))
        await store.wait_for_work(0.05)  # may consume a wake-up from our own append
        started = time.monotonic()
        assert await store.wait_for_work(0.3) is False
        assert time.monotonic() - started < 2.0

    asyncio.run(body())


def test_wait_for_work_wakes_on_an_event_from_another_connection(
    store: Store, store_url: str, make_store: Callable[..., Store]
) -> None:
    """PostgreSQL wakes the waiter soon after another connection appends (NOTIFY); SQLite has
    no wake-ups, so it times out."""

    async def body() -> None:
        await store.create_run(new_run("run-1"))
        await store.wait_for_work(0.05)  # start listening; drop our own wake-up
        other = make_store(store_url)
        try:
            await other.migrate()

            async def append_soon() -> None:
                await asyncio.sleep(0.3)
                await other.append_event("run-1", EventDraft(type="run.progress"))

            timeout = 10.0 if isinstance(store, PostgresStore) else 0.8
            started = time.monotonic()
            woke, _ = await asyncio.gather(store.wait_for_work(timeout), append_soon())
            elapsed = time.monotonic() - started
        finally:
            await other.close()

        if isinstance(store, PostgresStore):
            assert woke is True
            assert elapsed < 5.0
        else:
            assert woke is False
            assert elapsed >= 0.75

    asyncio.run(body())


# -- run_changes: the advance step's incremental read --------------------------------------


def test_phase_tasks_reads_one_phase_attempt_with_its_record(store: Store, clock: Ticking) -> None:
    async def body() -> None:
        await running_run(store, keys=("b", "a"))
        await store.start_phase("run-1", "prd", 1, EventDraft(type="phase.started", phase="prd"))
        await store.create_tasks(
            "run-1", "prd", 1, new_tasks("run-1", "p"), EventDraft(type="phase.fanned_out")
        )
        await running_run(store, "run-2", keys=("x",))
        held = await claim_one(store, clock)

        record, tasks = await store.phase_tasks("run-1", PHASE, 1)

        assert (record.phase, record.attempt, record.status) == (PHASE, 1, PhaseStatus.RUNNING)
        assert [t.key for t in tasks] == ["a", "b"]  # by key; not prd's, not run-2's
        assert {t.key: t.status for t in tasks}[held.task.key] is TaskStatus.RUNNING
        assert [t.key for t in (await store.phase_tasks("run-1", "prd", 1))[1]] == ["p"]
        with pytest.raises(RunNotFoundError):
            await store.phase_tasks("run-1", PHASE, 2)

    asyncio.run(body())


def test_run_changes_reads_every_task_first_then_only_the_changed_ones(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=("a", "b", "c"))
        await running_run(store, "run-2", keys=("x",))

        first = await store.run_changes("run-1", 0)
        assert sorted(t.key for t in first.tasks) == ["a", "b", "c"]
        _, _, rows = await store.run_rows("run-1")
        fields = ("id", "phase", "attempt", "key", "agent", "iteration", "status", "error")
        assert sorted(tuple(getattr(t, f) for f in fields) for t in first.tasks) == sorted(
            tuple(getattr(t, f) for f in fields) for t in rows
        )
        assert first.run.id == "run-1" and [p.phase for p in first.phases] == [PHASE]

        held = await claim_one(store, clock)  # "a": pending -> running
        await store.record_output(held.task.id, held.lease_token, {"v": 1}, [call()], {})
        await claim_one(store, clock, run_id="run-2")  # another run's change
        second = await store.run_changes("run-1", first.cursor)

        changed = {t.key: t.status for t in second.tasks}
        assert changed["a"] is TaskStatus.SUCCEEDED
        if isinstance(store, SqliteStore):  # numbered in commit order: exactly the changes
            assert set(changed) == {"a"}
            assert (await store.run_changes("run-1", second.cursor)).tasks == []

    asyncio.run(body())


def test_run_changes_sees_reclaims_retries_and_reopened_tasks(store: Store, clock: Ticking) -> None:
    """Every statement that changes a task's status or error stamps its revision (no trigger
    does on SQLite): a reclaimed lease, a failed try and a task reopened on resume are each
    read again by the incremental read."""

    async def body() -> None:
        await running_run(store, keys=("a", "b", "c"))
        held = await claim_one(store, clock, lease=10)
        cursor = (await store.run_changes("run-1", 0)).cursor

        [expired] = await store.expired_tasks(now=clock.now() + 11)
        remedy = choose_remedy(
            stalls=0, batch_scale=1, timeout_scale=1, model_shift=0, fallbacks=0, optional=False
        )
        assert await store.reclaim_task(expired, now=clock.now() + 11, remedy=remedy, cause="x")
        changes = await store.run_changes("run-1", cursor)
        assert {t.key: t.status for t in changes.tasks}[held.task.key] is TaskStatus.PENDING

        again = await claim_one(store, clock, owner="worker-2")
        cursor = (await store.run_changes("run-1", changes.cursor)).cursor
        await store.fail_task(
            again.task.id, again.lease_token, error="bad", retry_at=None, strategy="none"
        )
        changes = await store.run_changes("run-1", cursor)
        assert {t.key: t.error for t in changes.tasks}[again.task.key] == "bad"

        dead = await claim_one(store, clock, owner="dead-worker")
        cursor = (await store.run_changes("run-1", changes.cursor)).cursor
        await store.reopen_run("run-1", driver="h:1", dead_owners=["dead-worker"], now=0)
        changes = await store.run_changes("run-1", cursor)
        assert {t.key: t.status for t in changes.tasks}[dead.task.key] is TaskStatus.PENDING

    asyncio.run(body())


def test_run_changes_never_misses_a_change_committed_after_a_later_one(
    store: Store, clock: Ticking, store_url: str
) -> None:
    """PostgreSQL stamps transaction ids, which commit out of order: a change still being
    written while another one commits and is read must come back in a later read."""
    if not isinstance(store, PostgresStore):
        pytest.skip("SQLite has one writer at a time: stamps follow commit order")

    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        start = await store.run_changes("run-1", 0)
        with psycopg.connect(store_url) as slow:  # a transaction left open mid-write
            slow.execute(  # stamped as IdeaMine's own statements stamp (migration 8)
                "UPDATE tasks SET error = 'slow', revision = pg_current_xact_id()::text::bigint "
                "WHERE key = 'a' AND run_id = 'run-1'"
            )
            await claim_one(store, clock)  # "a" is locked: this claims and commits "b"
            middle = await store.run_changes("run-1", start.cursor)
            # "b" is read; "a" too when another transaction anywhere on the server kept the
            # horizon back (rows are read again rather than missed), but never its change
            assert "b" in {t.key for t in middle.tasks}
            assert {t.key: t.error for t in middle.tasks}.get("a") is None
            slow.commit()
        late = await store.run_changes("run-1", middle.cursor)
        assert "a" in {t.key for t in late.tasks}
        assert {t.key: t.error for t in late.tasks}["a"] == "slow"

    asyncio.run(body())


def _started_with_tasks(phase: str, *keys: str) -> PhaseStart:
    return PhaseStart(
        phase=phase,
        attempt=1,
        started=EventDraft(type="phase.started", phase=phase),
        tasks=[
            NewTask(id=f"run-1.{phase}.1.{key}", key=key, agent="a", iteration=1) for key in keys
        ],
        created=EventDraft(type="phase.progress", phase=phase),
    )


@pytest.mark.parametrize("outcome", [PhaseStatus.PASSED, PhaseStatus.FAILED])
def test_a_verdict_starts_the_phases_it_lets_start_only_when_it_passes(
    store: Store, clock: Ticking, outcome: PhaseStatus
) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        before = len(await store.events("run-1"))
        verdict = Verdict(
            run_id="run-1",
            phase=PHASE,
            attempt=1,
            result={"pass": outcome is PhaseStatus.PASSED, "score": 1.0, "threshold": 0.7},
            phase_status=outcome,
            events=[EventDraft(type="phase.completed", phase=PHASE)],
            starts=[_started_with_tasks("prd", "p1", "p2")],
            claim=lease(clock, limit=1),
        )

        claimed = await VerdictStore(store).record(verdict)
        again = await VerdictStore(store).record(verdict)  # judged already: a no-op

        assert again == []
        events = (await chain_ok(store))[before:]
        _, phases, tasks = await store.run_rows("run-1")
        if outcome is PhaseStatus.FAILED:
            assert claimed == [] and tasks == []
            assert [p.phase for p in phases] == [PHASE]
            assert [e.type for e in events] == ["phase.completed"]
            return
        assert [c.task.key for c in claimed] == ["p1"]
        assert {(p.phase, p.status) for p in phases} == {
            (PHASE, PhaseStatus.PASSED),
            ("prd", PhaseStatus.RUNNING),
        }
        assert sorted(t.key for t in tasks) == ["p1", "p2"]
        assert [e.type for e in events] == [
            "phase.completed",
            "phase.started",
            "phase.progress",
            "task.started",
        ]
        assert len({e.at for e in events}) == 1

    asyncio.run(body())


def test_a_passing_verdict_starts_nothing_in_a_run_paused_meanwhile(
    store: Store, clock: Ticking
) -> None:
    """The verdict is recorded; the phases it would let start wait for the run's next step."""

    async def body() -> None:
        await running_run(store, keys=())
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        await store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused"))

        claimed = await VerdictStore(store).record(
            Verdict(
                run_id="run-1",
                phase=PHASE,
                attempt=1,
                result={"pass": True, "score": 1.0, "threshold": 0.7},
                phase_status=PhaseStatus.PASSED,
                events=[EventDraft(type="phase.completed", phase=PHASE)],
                starts=[_started_with_tasks("prd", "p1")],
                claim=lease(clock),
            )
        )

        assert claimed == []
        _, phases, tasks = await store.run_rows("run-1")
        assert [(p.phase, p.status) for p in phases] == [(PHASE, PhaseStatus.PASSED)]
        assert tasks == []
        assert (await chain_ok(store))[-1].type == "phase.completed"

    asyncio.run(body())


@pytest.mark.parametrize(
    ("outcome", "meanwhile"),
    [
        (PhaseStatus.PASSED, RunStatus.RUNNING),
        (PhaseStatus.FAILED, RunStatus.RUNNING),
        (PhaseStatus.PASSED, RunStatus.PAUSED),
    ],
    ids=["passed", "failed", "passed in a paused run"],
)
def test_a_verdict_on_the_last_phase_completes_the_run_in_its_transaction(
    store: Store, outcome: PhaseStatus, meanwhile: RunStatus
) -> None:
    """``completes``: a passing verdict ends the run with ``run.completed`` in its own
    transaction; a failing one, or a run paused meanwhile, is left for the next step."""

    async def body() -> None:
        await running_run(store, keys=())
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        if meanwhile is RunStatus.PAUSED:
            await store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused"))
        before = len(await store.events("run-1"))
        verdict = Verdict(
            run_id="run-1",
            phase=PHASE,
            attempt=1,
            result={"pass": outcome is PhaseStatus.PASSED, "score": 1.0, "threshold": 0.7},
            phase_status=outcome,
            events=[EventDraft(type="phase.completed", phase=PHASE)],
            completes=True,
        )

        assert await VerdictStore(store).record(verdict) == []

        events = (await chain_ok(store))[before:]
        run = await store.get_run("run-1")
        if outcome is PhaseStatus.PASSED and meanwhile is RunStatus.RUNNING:
            assert run.status is RunStatus.COMPLETED
            assert [e.type for e in events] == ["phase.completed", "run.completed"]
            assert events[1].payload == {"tokens": 0, "cost_usd": 0, "model_calls": 0}
            assert events[0].at == events[1].at
        else:
            assert run.status is meanwhile
            assert [e.type for e in events] == ["phase.completed"]

    asyncio.run(body())


@pytest.mark.parametrize(
    ("waiting", "limit"),
    [(False, 8), (False, 2), (True, 8)],
    ids=["all taken as inserted", "a claim after the insert", "an older task waits"],
)
def test_the_tasks_phases_start_with_are_claimed_in_order_and_read_back_as_returned(
    store: Store, clock: Ticking, waiting: bool, limit: int
) -> None:
    """Starting phases with a claim takes their tasks in the claim order (phase, key), up to
    the limit: leased as they are inserted when the claim takes them all and none of the run
    waits before them, else by a claim after the insert. Each record returned equals the row
    read back; the rest wait, pending. A task of the run already waiting is claimed first."""

    async def body() -> None:
        await running_run(store, keys=("a",) if waiting else ())
        clock.advance(1.0)
        starts = [_started_with_tasks("prd", "p2", "p1"), _started_with_tasks("bizdev", "b1")]

        claimed = await store.start_phases("run-1", starts, claim=lease(clock, limit=limit))

        order = (["a"] if waiting else []) + ["b1", "p1", "p2"]
        order = order[:limit]
        assert [item.task.key for item in claimed] == order
        stored = await tasks_by_key(store)
        assert [item.task for item in claimed] == [stored[key] for key in order]
        assert all(item.checkpoint is None for item in claimed)
        assert [item.task.tries for item in claimed] == [1] * len(order)
        left = sorted(key for key, task in stored.items() if task.status is TaskStatus.PENDING)
        assert left == sorted(set(stored) - set(order))  # the rest wait
        events = await chain_ok(store)
        started = [e for e in events if e.type == "task.started"]
        assert [e.payload["key"] for e in started] == order
        assert all(e.payload["try"] == 1 and e.payload["owner"] == "worker-1" for e in started)

    asyncio.run(body())


_JUDGE_OUTPUT = {"result": {"pass": True}, "evidence": {"artifact_ids": ["art-1"]}}


def _judged_fan_in(content: object = None) -> JudgedFanIn:
    """Phase ``PHASE``'s fan-in with its gate judged in the same transaction."""
    return JudgedFanIn(
        artifacts=[NewArtifact(type="IdeaSpec", content=content or {"a": 1}, provenance={})],
        artifact_ids=["art-1"],
        ready=EventDraft(type="phase.ready", phase=PHASE, payload={"settled": ["~gate"]}),
        judge=NewTask(id="run-1.ideation.1.~gate", key="~gate", agent="@gate", iteration=1),
        output_json=canonical_json(_JUDGE_OUTPUT),
        payload={"tokens": 0, "cost_usd": 0.0, "inputs": []},
    )


def _passing(**options: Any) -> Verdict:
    """Phase ``PHASE``'s attempt 1 passed (``options``: what else the verdict carries)."""
    return Verdict(
        run_id="run-1",
        phase=PHASE,
        attempt=1,
        result={"pass": True, "score": 1.0, "threshold": 0.7},
        phase_status=PhaseStatus.PASSED,
        events=[EventDraft(type="phase.completed", phase=PHASE)],
        **options,
    )


def test_a_fan_in_judged_in_its_step_writes_the_verdict_and_next_phase_in_one_transaction(
    store: Store, clock: Ticking
) -> None:
    async def body() -> None:
        await running_run(store, keys=())
        before = len(await store.events("run-1"))
        verdict = _passing(
            starts=[_started_with_tasks("prd", "p1", "p2")], claim=lease(clock, limit=1)
        )

        claimed = await VerdictStore(store).record_fan_in(_judged_fan_in(), verdict)

        assert [c.task.key for c in claimed] == ["p1"]
        [artifact] = await store.artifacts("run-1")
        assert (artifact.id, artifact.type, artifact.version) == ("art-1", "IdeaSpec", 1)
        judge = (await tasks_by_key(store))["~gate"]
        assert (judge.status, judge.tries, judge.agent) == (TaskStatus.SUCCEEDED, 1, "@gate")
        assert judge.started_at is not None and judge.lease_owner is None
        outputs = await store.outputs("run-1", PHASE, 1)
        assert outputs == {"~gate": _JUDGE_OUTPUT}
        events = (await chain_ok(store))[before:]
        assert [e.type for e in events] == [
            "phase.ready",
            "task.succeeded",
            "phase.completed",
            "phase.started",
            "phase.progress",
            "task.started",
        ]
        assert events[0].payload["artifacts"] == {"IdeaSpec": "art-1"}
        assert events[1].task_id == judge.id and "output_hash" in events[1].payload
        assert len({e.at for e in events}) == 1
        [gate] = await DossierStore(store).gate_evaluations("run-1")
        assert gate.passed and gate.phase == PHASE

    asyncio.run(body())


def test_a_fan_in_judged_in_its_step_writes_nothing_once_the_attempt_fanned_in(
    store: Store,
) -> None:
    """A retry after a lost commit reply finds the attempt moved on: refused, nothing written."""

    async def body() -> None:
        await running_run(store, keys=())
        await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
        before = len(await store.events("run-1"))
        verdict = Verdict(
            run_id="run-1",
            phase=PHASE,
            attempt=1,
            result={"pass": True, "score": 1.0, "threshold": 0.7},
            phase_status=PhaseStatus.PASSED,
            events=[],
        )

        with pytest.raises(IllegalTransitionError):
            await VerdictStore(store).record_fan_in(_judged_fan_in(), verdict)

        assert len(await chain_ok(store)) == before
        assert await store.artifacts("run-1") == []
        assert "~gate" not in await tasks_by_key(store)

    asyncio.run(body())


def test_a_fan_in_records_the_last_outputs_of_its_attempt_first_in_its_transaction(
    store: Store, clock: Ticking
) -> None:
    """The outputs that finish the attempt (``finishing``) are written as ``record_outputs``
    writes them, then the fan-in, the verdict and the next phase: one commit."""

    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        done, last = await claim(store, clock, limit=2)
        await store.record_output(done.task.id, done.lease_token, {"n": 1}, [], {})
        before = len(await store.events("run-1"))
        finishing = [
            OutputWrite(
                task_id=last.task.id,
                token=last.lease_token,
                output={"n": 2},
                calls=[call()],
                payload={"tokens": 7},
            )
        ]

        claimed = await VerdictStore(store).record_fan_in(
            _judged_fan_in(),
            _passing(starts=[_started_with_tasks("prd", "p1")], claim=lease(clock)),
            finishing,
        )

        assert [c.task.key for c in claimed] == ["p1"]
        tasks = await tasks_by_key(store)
        assert tasks["b"].status is TaskStatus.SUCCEEDED and tasks["b"].lease_owner is None
        outputs = await store.outputs("run-1", PHASE, 1)
        assert outputs == {"a": {"n": 1}, "b": {"n": 2}, "~gate": _JUDGE_OUTPUT}
        assert [c["task_id"] for c in await store.model_calls("run-1")] == [last.task.id]
        events = (await chain_ok(store))[before:]
        assert [e.type for e in events] == [
            "task.succeeded",
            "phase.ready",
            "task.succeeded",
            "phase.completed",
            "phase.started",
            "phase.progress",
            "task.started",
        ]
        assert events[0].task_id == last.task.id and events[0].payload["tokens"] == 7
        assert len({e.at for e in events}) == 1

    asyncio.run(body())


def test_a_fan_in_whose_finishing_output_is_refused_writes_nothing(
    store: Store, clock: Ticking
) -> None:
    """A stale lease token among the outputs to record first: refused whole, nothing of the
    outputs or the fan-in written; the outputs are then recorded on their own."""

    async def body() -> None:
        await running_run(store, keys=("a", "b"))
        first, second = await claim(store, clock, limit=2)
        before = len(await store.events("run-1"))
        writes = [
            OutputWrite(task_id=first.task.id, token=first.lease_token, output=1),
            OutputWrite(task_id=second.task.id, token="not-the-token", output=2),
        ]

        with pytest.raises(FinishingRefusedError) as refused:
            await VerdictStore(store).record_fan_in(_judged_fan_in(), _passing(), writes)

        assert [type(e) for e in refused.value.errors] == [StaleLeaseError]
        assert len(await chain_ok(store)) == before
        assert await store.outputs("run-1", PHASE, 1) == {}
        assert await store.artifacts("run-1") == []
        tasks = await tasks_by_key(store)
        assert {tasks[k].status for k in ("a", "b")} == {TaskStatus.RUNNING}
        assert "~gate" not in tasks
        errors = await store.record_outputs(writes)  # on their own: one stands, one refused
        assert errors[0] is None and isinstance(errors[1], StaleLeaseError)

    asyncio.run(body())


def test_fan_ins_writing_the_same_content_at_once_both_commit(store: Store) -> None:
    """Blobs are content-addressed: a transaction writing a blob another one is writing (an
    identical artifact of a phase fanning in beside it) waits for it and keeps it, instead of
    failing on the blob's key (PostgreSQL runs the two at once; SQLite one after the other)."""

    def slow_fan_in(run_id: str) -> Callable[[Db], None]:
        def work(db: Db) -> None:
            artifact = NewArtifact(type="IdeaSpec", content={"same": True}, provenance={})
            insert_artifact(db, run_id, PHASE, 1, artifact, f"{run_id}-art", "2026-01-01")
            time.sleep(0.3)  # hold the new blob row, uncommitted, while the other writes it

        return work

    async def body() -> None:
        for run_id in ("run-1", "run-2"):
            await running_run(store, run_id, keys=())
        await asyncio.gather(
            *(store.run_in_transaction(slow_fan_in(run_id)) for run_id in ("run-1", "run-2"))
        )
        for run_id in ("run-1", "run-2"):
            [artifact] = await store.artifacts(run_id)
            assert await store.blob(artifact.content_hash) == {"same": True}

    asyncio.run(body())


def test_a_fan_in_waits_for_one_in_flight_elsewhere_and_then_refuses(
    store: Store, store_url: str
) -> None:
    """Two advancers fanning in one attempt at once (the first's advance lease lapsed while
    the network was cut, its transaction still open): the second waits for the first, then
    finds the attempt moved on and writes nothing, instead of failing on the gate task's key
    or writing the fan-in twice."""

    def first_fan_in(opened: threading.Event) -> None:
        """Another advancer's fan-in: it holds the run's lock and has moved the phase on."""
        moved = "UPDATE phases SET status = 'ready' WHERE run_id = 'run-1'"
        if store_url.startswith(("postgresql://", "postgres://")):
            with psycopg.connect(store_url) as connection:
                connection.execute("SELECT pg_advisory_xact_lock(hashtextextended('run-1', 0))")
                connection.execute(moved)
                opened.set()
                time.sleep(0.5)
            return  # committed on leaving the block
        with closing(sqlite3.connect(store_url, isolation_level=None)) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(moved)
            opened.set()
            time.sleep(0.5)
            connection.execute("COMMIT")

    async def body() -> None:
        await running_run(store, keys=())
        before = len(await store.events("run-1"))
        opened = threading.Event()
        first = threading.Thread(target=first_fan_in, args=(opened,))
        first.start()
        try:
            assert opened.wait(10)
            with pytest.raises(IllegalTransitionError):
                await store.record_artifacts(
                    "run-1",
                    PHASE,
                    1,
                    [NewArtifact(type="IdeaSpec", content={"a": 1}, provenance={})],
                    EventDraft(type="phase.ready", phase=PHASE),
                    new_tasks("run-1", "~gate"),
                )
        finally:
            first.join()
        assert len(await chain_ok(store)) == before
        assert await store.artifacts("run-1") == []

    asyncio.run(body())


@pytest.mark.parametrize("meanwhile", ["nothing", "the run paused", "an older task waits"])
def test_a_fan_in_writes_the_leases_its_step_chose_ahead_when_its_claim_takes_every_task(
    store: Store, clock: Ticking, meanwhile: str
) -> None:
    """``Verdict.ahead`` (``lease_ahead``, ``stores.ahead``): the claim's leases are chosen
    before the transaction, and it writes exactly those, stamped with the time they were
    chosen, so the tasks handed out ahead equal the rows read back. A run paused meanwhile
    starts nothing; with an older task waiting the claim after the insert decides (other
    tokens: the step then revokes the tasks it handed out)."""

    async def body() -> None:
        await running_run(store, keys=("a",) if meanwhile == "an older task waits" else ())
        clock.advance(1.0)
        starts = [_started_with_tasks("prd", "p2", "p1")]
        request = lease(clock, limit=8)
        verdicts = VerdictStore(store)
        assert store.lease_ahead("run-1", starts, lease(clock, limit=1)) is None
        leased = store.lease_ahead("run-1", starts, request)
        assert leased is not None
        assert [item.task.key for item in leased.claimed] == ["p1", "p2"]
        if meanwhile == "the run paused":
            await store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused"))
        before = len(await store.events("run-1"))
        clock.advance(0.5)  # the transaction runs after the choice

        verdict = _passing(starts=starts, claim=request, ahead=leased)
        claimed = await verdicts.record_fan_in(_judged_fan_in(), verdict)

        stored = await tasks_by_key(store)
        events = (await chain_ok(store))[before:]
        if meanwhile == "nothing":
            assert claimed == list(leased.claimed)
            assert [item.task for item in claimed] == [stored["p1"], stored["p2"]]
            assert {event.at for event in events} == {leased.at}
            started = [e.task_id for e in events if e.type == "task.started"]
            assert started == [item.task.id for item in leased.claimed]
        elif meanwhile == "the run paused":
            assert claimed == []
            assert "p1" not in stored  # the phases it opens start on the run's next step
        else:
            assert [item.task.key for item in claimed] == ["a", "p1", "p2"]
            tokens = {item.lease_token for item in leased.claimed}
            assert not tokens & {item.lease_token for item in claimed}
            assert [item.task for item in claimed] == [stored[k] for k in ("a", "p1", "p2")]

    asyncio.run(body())


@pytest.mark.parametrize("ending", ["completed by its last verdict", "cancelled", "paused"])
def test_a_run_that_ends_gives_its_advance_lease_up_in_the_same_write(
    store: Store, clock: Ticking, ending: str
) -> None:
    """Completed or cancelled, a run is advanced by nobody again: the write that ends it
    drops its advance lease (its driver makes no write of its own to give it up). A paused
    run keeps it until its driver gives it up."""

    async def body() -> None:
        await running_run(store, keys=())
        now = clock.now()
        assert await store.hold_advance("run-1", owner="A", seconds=60, now=now)
        if ending == "completed by its last verdict":
            await store.record_artifacts("run-1", PHASE, 1, [], EventDraft(type="phase.ready"))
            await VerdictStore(store).record(_passing(completes=True))
            assert (await store.get_run("run-1")).status is RunStatus.COMPLETED
        else:
            status = RunStatus.CANCELLED if ending == "cancelled" else RunStatus.PAUSED
            await store.set_run_status("run-1", status, EventDraft(type=f"run.{status}"))
        taken = await store.hold_advance("run-1", owner="B", seconds=60, now=now + 1)
        assert taken is (ending != "paused")

    asyncio.run(body())


@pytest.mark.parametrize("throttled", [False, True], ids=["running", "throttled"])
def test_outputs_recorded_with_a_claim_claim_the_runs_next_tasks_in_the_same_transaction(
    store: Store, clock: Ticking, throttled: bool
) -> None:
    """``record_outputs_claiming``: the outputs, then the claim on the run's next tasks (in
    claim order, up to the limit; a throttled run's room at most: half the concurrency less
    what the claimer holds), stamped alike; a refused write refuses only itself."""

    async def body() -> None:
        await running_run(store, keys=("a", "b", "c", "d", "e"))
        if throttled:
            mark = EventDraft(type="budget.throttled", payload={"mark": "run:tokens:throttle"})
            assert len(await UsageStore(store).announce("run-1", [mark])) == 1
        held = await claim(store, clock, limit=2)
        writes = [
            OutputWrite(task_id=held[0].task.id, token=held[0].lease_token, output={"k": 1}),
            OutputWrite(task_id=held[1].task.id, token="stale", output={"k": 2}),
        ]
        before = len(await store.events("run-1"))
        request = ClaimRequest(owner="worker-1", now=clock.now(), limit=3, concurrency=4, held=1)

        errors, claimed = await store.record_outputs_claiming(writes, "run-1", request)

        assert errors[0] is None and isinstance(errors[1], StaleLeaseError)
        keys = ["c"] if throttled else ["c", "d", "e"]  # room: 4 // 2 - 1 when throttled
        assert [item.task.key for item in claimed] == keys
        stored = await tasks_by_key(store)
        assert [item.task for item in claimed] == [stored[key] for key in keys]
        events = (await chain_ok(store))[before:]
        assert [e.type for e in events] == ["task.succeeded"] + ["task.started"] * len(keys)
        assert len({e.at for e in events}) == 1

    asyncio.run(body())
