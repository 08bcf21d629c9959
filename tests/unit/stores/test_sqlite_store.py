"""The SQLite store against its contract (``ideamine.stores.base.Store``), on a real file."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from ideamine.canonical import content_hash
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.errors import (
    IllegalTransitionError,
    OutputExistsError,
    RunNotFoundError,
    StaleLeaseError,
    StoreCorruptError,
    StoreError,
)
from ideamine.stores import coordination
from ideamine.stores import task_queries as tq
from ideamine.stores.queries import Db
from ideamine.stores.records import (
    ClaimedTask,
    EventDraft,
    EventRecord,
    ModelCallRecord,
    NewArtifact,
    NewRun,
    NewTask,
    RunRecord,
    TaskRecord,
)
from ideamine.stores.sqlite import SqliteStore

LEASE = 30.0


T = TypeVar("T")


class Ticking(Protocol):
    """The conftest ``FakeClock``."""

    value: float

    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


MakeRun = Callable[..., RunRecord]


def _events(store: SqliteStore, run_id: str = "run-1") -> list[EventRecord]:
    return asyncio.run(store.events(run_id))


def _types(events: Sequence[EventRecord]) -> list[str]:
    return [event.type for event in events]


def _tasks(store: SqliteStore, run_id: str = "run-1") -> dict[str, TaskRecord]:
    _, _, tasks = asyncio.run(store.run_rows(run_id))
    return {task.key: task for task in tasks}


def _claim(
    store: SqliteStore,
    clock: Ticking,
    *,
    limit: int = 1,
    owner: str = "worker-1",
    lease: float = LEASE,
    run_id: str = "run-1",
    at: float | None = None,
) -> list[ClaimedTask]:
    now = clock.now() if at is None else at
    return asyncio.run(
        store.claim_tasks(run_id, owner=owner, lease_seconds=lease, now=now, limit=limit)
    )


def _call(outcome: str = "ok") -> ModelCallRecord:
    return ModelCallRecord(
        provider="offline",
        model="offline-1",
        prompt_hash="ef" * 32,
        params={"temperature": 0},
        tokens_in=12,
        tokens_out=34,
        cost_usd=0.0,
        latency_ms=1.5,
        outcome=outcome,
    )


# -- runs -----------------------------------------------------------------------------------


def test_create_run_is_created_with_its_event(
    store: SqliteStore, new_run: Callable[..., NewRun], clock: Ticking
) -> None:
    run = asyncio.run(store.create_run(new_run("run-1", budget_usd=2.5)))

    assert run.status is RunStatus.CREATED
    assert run.constraints == {"budget_usd": 2.5}
    assert run.driver is None
    assert run.error is None
    assert run.created_at == run.updated_at
    assert run.created_at.startswith("2023-11-14T22:13:20")  # the fake clock's start
    assert asyncio.run(store.get_run("run-1")) == run
    events = _events(store)
    assert _types(events) == ["run.created"]
    assert events[0].payload == {
        "idea_chars": len(new_run().idea),
        "source": "cli",
        "manifest_hash": "cd" * 32,
    }


def test_create_run_twice_is_a_store_error(
    store: SqliteStore, new_run: Callable[..., NewRun]
) -> None:
    asyncio.run(store.create_run(new_run("run-1")))

    with pytest.raises(StoreError) as caught:
        asyncio.run(store.create_run(new_run("run-1")))

    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert _types(_events(store)) == ["run.created"]


def test_get_unknown_run_raises_run_not_found(store: SqliteStore) -> None:
    with pytest.raises(RunNotFoundError) as caught:
        asyncio.run(store.get_run("nope"))

    assert caught.value.run_id == "nope"
    assert caught.value.hint


def test_list_runs_newest_first(
    store: SqliteStore, new_run: Callable[..., NewRun], clock: Ticking
) -> None:
    for run_id in ("first", "second", "third"):
        asyncio.run(store.create_run(new_run(run_id)))
        clock.advance(1)

    assert [run.id for run in asyncio.run(store.list_runs())] == ["third", "second", "first"]
    assert [run.id for run in asyncio.run(store.list_runs(limit=2))] == ["third", "second"]


def test_set_run_status_moves_the_run_with_its_event(
    store: SqliteStore, new_run: Callable[..., NewRun], clock: Ticking
) -> None:
    asyncio.run(store.create_run(new_run("run-1")))
    clock.advance(5)

    asyncio.run(
        store.set_run_status(
            "run-1",
            RunStatus.RUNNING,
            EventDraft(type="run.started", payload={"why": "test"}),
            driver="host:1",
        )
    )

    run = asyncio.run(store.get_run("run-1"))
    assert run.status is RunStatus.RUNNING
    assert run.driver == "host:1"
    assert run.updated_at > run.created_at
    events = _events(store)
    assert _types(events) == ["run.created", "run.started"]
    assert events[-1].payload == {"why": "test"}


def test_illegal_run_transition_writes_nothing(
    store: SqliteStore, new_run: Callable[..., NewRun], clock: Ticking
) -> None:
    before = asyncio.run(store.create_run(new_run("run-1")))
    clock.advance(5)

    with pytest.raises(IllegalTransitionError) as caught:
        asyncio.run(
            store.set_run_status("run-1", RunStatus.COMPLETED, EventDraft(type="run.completed"))
        )

    assert (caught.value.kind, caught.value.source, caught.value.target) == (
        "run",
        "created",
        "completed",
    )
    assert asyncio.run(store.get_run("run-1")) == before
    assert _types(_events(store)) == ["run.created"]


def test_set_status_of_unknown_run_raises_run_not_found(store: SqliteStore) -> None:
    with pytest.raises(RunNotFoundError):
        asyncio.run(store.set_run_status("nope", RunStatus.RUNNING, EventDraft(type="run.started")))
    with pytest.raises(RunNotFoundError):
        asyncio.run(store.append_event("nope", EventDraft(type="run.progress")))
    assert asyncio.run(store.events("nope")) == []


# -- tasks ----------------------------------------------------------------------------------


def test_claim_takes_at_most_limit_with_distinct_tokens(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a", "b", "c", "d", "e"))

    first = _claim(store, clock, limit=3)

    assert [claimed.task.key for claimed in first] == ["a", "b", "c"]
    assert len({claimed.lease_token for claimed in first}) == 3
    for claimed in first:
        assert claimed.task.status is TaskStatus.RUNNING
        assert claimed.task.tries == 1
        assert claimed.task.lease_owner == "worker-1"
        assert claimed.task.lease_expires_at == clock.now() + LEASE
        assert claimed.checkpoint is None
    started = [event for event in _events(store) if event.type == "task.started"]
    assert [event.task_id for event in started] == [claimed.task.id for claimed in first]
    assert all(event.payload["owner"] == "worker-1" for event in started)
    assert all(event.kind == "task" for event in started)

    rest = _claim(store, clock, limit=10)
    assert [claimed.task.key for claimed in rest] == ["d", "e"]
    assert _claim(store, clock, limit=10) == []


def test_claim_with_no_room_claims_nothing(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    events = _events(store)

    assert _claim(store, clock, limit=0) == []

    assert _events(store) == events
    assert _tasks(store)["a"].status is TaskStatus.PENDING


def test_claim_takes_only_tasks_of_the_given_run(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run("run-1", keys=("a",))
    running_run("run-2", keys=("a", "b"))

    claimed = _claim(store, clock, limit=10, run_id="run-1")

    assert [task.task.id for task in claimed] == ["run-1-a"]
    assert {task.status for task in _tasks(store, "run-2").values()} == {TaskStatus.PENDING}


def test_task_whose_not_before_is_in_the_future_is_not_claimed(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    retry_at = clock.now() + 60
    asyncio.run(
        store.fail_task(
            claimed.task.id,
            claimed.lease_token,
            error="rate limited",
            retry_at=retry_at,
            strategy="backoff",
        )
    )

    assert _claim(store, clock, at=retry_at - 0.001) == []
    (again,) = _claim(store, clock, at=retry_at)
    assert again.task.id == claimed.task.id
    assert again.task.tries == 2
    assert again.lease_token != claimed.lease_token


def test_renew_lease_with_the_current_token_extends_it(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    later = clock.now() + 20

    asyncio.run(
        store.renew_lease(claimed.task.id, claimed.lease_token, lease_seconds=LEASE, now=later)
    )

    assert _tasks(store)["a"].lease_expires_at == later + LEASE
    last = _events(store)[-1]
    assert last.type == "task.heartbeat"
    assert last.task_id == claimed.task.id
    assert last.payload == {"key": "a", "lease_expires_at": later + LEASE}


def test_renew_lease_with_a_wrong_token_is_rejected_and_logged(
    store: SqliteStore, running_run: MakeRun, clock: Ticking, caplog: pytest.LogCaptureFixture
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    events = _events(store)

    with (
        caplog.at_level(logging.WARNING, logger="ideamine.stores"),
        pytest.raises(StaleLeaseError) as caught,
    ):
        asyncio.run(store.renew_lease(claimed.task.id, "not-the-token", lease_seconds=99, now=0))

    assert caught.value.task_id == claimed.task.id
    assert any("stale lease" in record.getMessage() for record in caplog.records)
    assert _events(store) == events
    assert _tasks(store)["a"].lease_expires_at == claimed.task.lease_expires_at


def test_a_zombie_with_a_superseded_token_cannot_write(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    """Invariant 3: once a task was reclaimed and claimed again, the old holder's token fences
    every write about it."""
    running_run(keys=("a",))
    (zombie,) = _claim(store, clock, owner="dead-worker")
    asyncio.run(store.reopen_run("run-1", driver="host:2", dead_owners=["dead-worker"], now=0))
    (winner,) = _claim(store, clock, owner="live-worker")
    events = _events(store)
    task_id, token = zombie.task.id, zombie.lease_token

    writes = [
        store.renew_lease(task_id, token, lease_seconds=LEASE, now=clock.now()),
        store.save_checkpoint(task_id, token, {"step": 1}),
        store.record_output(task_id, token, {"text": "zombie"}, [_call()], {}),
        store.fail_task(task_id, token, error="x", retry_at=None, strategy="none"),
    ]
    for write in writes:
        with pytest.raises(StaleLeaseError):
            asyncio.run(write)

    assert _events(store) == events
    assert asyncio.run(store.outputs("run-1", "ideation", 1)) == {}
    assert asyncio.run(store.model_calls("run-1")) == []
    task = _tasks(store)["a"]
    assert (task.status, task.lease_owner) == (TaskStatus.RUNNING, "live-worker")
    asyncio.run(store.record_output(task_id, winner.lease_token, {"text": "winner"}, [], {}))
    assert asyncio.run(store.outputs("run-1", "ideation", 1)) == {"a": {"text": "winner"}}


def test_record_output_is_written_once(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a", "b"))
    (claimed,) = _claim(store, clock)
    output = {"title": "IdeaMine", "score": 7}

    asyncio.run(
        store.record_output(
            claimed.task.id, claimed.lease_token, output, [_call()], {"cost_usd": 0.0}
        )
    )

    assert asyncio.run(store.outputs("run-1", "ideation", 1)) == {"a": output}
    task = _tasks(store)["a"]
    assert task.status is TaskStatus.SUCCEEDED
    assert task.finished_at is not None
    assert (task.lease_owner, task.lease_expires_at) == (None, None)
    calls = asyncio.run(store.model_calls("run-1"))
    assert [(c["task_id"], c["key"], c["tokens_in"], c["outcome"]) for c in calls] == [
        (claimed.task.id, "a", 12, "ok")
    ]
    events = _events(store)
    assert events[-1].type == "task.succeeded"
    assert events[-1].payload == {
        "key": "a",
        "agent": "writer",
        "cost_usd": 0.0,
        "output_hash": content_hash(output),
    }

    with pytest.raises(StaleLeaseError):
        asyncio.run(store.record_output(claimed.task.id, claimed.lease_token, {"x": 1}, [], {}))

    assert asyncio.run(store.outputs("run-1", "ideation", 1)) == {"a": output}
    assert _events(store) == events
    assert len(asyncio.run(store.model_calls("run-1"))) == 1


def test_record_output_when_an_output_exists_is_rejected(
    store: SqliteStore, running_run: MakeRun, clock: Ticking, raw: sqlite3.Connection
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    raw.execute(
        "INSERT INTO task_outputs (run_id, phase, attempt, key, task_id, output, output_hash, "
        "created_at) VALUES ('run-1', 'ideation', 1, 'a', ?, '{\"first\":1}', ?, 'then')",
        (claimed.task.id, content_hash({"first": 1})),
    )
    events = _events(store)

    with pytest.raises(OutputExistsError) as caught:
        asyncio.run(store.record_output(claimed.task.id, claimed.lease_token, {"x": 2}, [], {}))

    assert caught.value.task_id == claimed.task.id
    assert asyncio.run(store.outputs("run-1", "ideation", 1)) == {"a": {"first": 1}}
    assert _tasks(store)["a"].status is TaskStatus.RUNNING
    assert _events(store) == events


def test_fail_task_with_retry_at_goes_back_to_pending(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    retry_at = clock.now() + 45

    asyncio.run(
        store.fail_task(
            claimed.task.id,
            claimed.lease_token,
            error="timeout",
            retry_at=retry_at,
            strategy="backoff",
            calls=[_call("timeout")],
        )
    )

    task = _tasks(store)["a"]
    assert task.status is TaskStatus.PENDING
    assert task.not_before == retry_at
    assert task.error == "timeout"
    assert (task.lease_owner, task.lease_expires_at, task.finished_at) == (None, None, None)
    last = _events(store)[-1]
    assert last.type == "task.retry"
    assert last.payload["strategy"] == "backoff"
    assert last.payload["error"] == "timeout"
    assert last.payload["try"] == 1
    assert [c["outcome"] for c in asyncio.run(store.model_calls("run-1"))] == ["timeout"]


def test_fail_task_without_retry_at_fails_for_good(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)

    asyncio.run(
        store.fail_task(
            claimed.task.id, claimed.lease_token, error="bad", retry_at=None, strategy="none"
        )
    )

    task = _tasks(store)["a"]
    assert task.status is TaskStatus.FAILED
    assert task.error == "bad"
    assert task.finished_at is not None
    last = _events(store)[-1]
    assert last.type == "task.failed"
    assert last.payload == {"key": "a", "agent": "writer", "try": 1, "error": "bad"}
    assert _claim(store, clock, at=clock.now() + 10_000) == []


def test_checkpoint_is_handed_to_the_next_claim(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    progress = {"done": ["intro", "body"], "next": "outro"}

    asyncio.run(store.save_checkpoint(claimed.task.id, claimed.lease_token, progress))
    asyncio.run(
        store.fail_task(
            claimed.task.id,
            claimed.lease_token,
            error="crash",
            retry_at=clock.now(),
            strategy="resume",
        )
    )
    (again,) = _claim(store, clock)

    assert again.checkpoint == progress
    assert "task.checkpoint" in _types(_events(store))


def _revisions(store: SqliteStore) -> dict[str, int]:
    with sqlite3.connect(store.path) as raw:
        return dict(raw.execute("SELECT key, revision FROM tasks WHERE run_id = 'run-1'"))


def test_task_writes_stamp_one_revision_per_statement(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    """Inserting, leasing and finishing tasks stamp their rows in the statement (one stamp
    for all of them, no second write per row); so does every other change of a status or
    error, above everything stored. Since migration 8 no trigger stamps: a write made
    outside IdeaMine is not stamped."""
    running_run(keys=("a", "b", "c"))
    inserted = _revisions(store)
    assert len(set(inserted.values())) == 1 and 0 not in inserted.values()

    claimed = _claim(store, clock, limit=2)
    leased = _revisions(store)
    assert leased["a"] == leased["b"] > inserted["c"] == leased["c"]

    writes = [(c.task.id, c.lease_token) for c in claimed]
    asyncio.run(store.record_output(*writes[0], {"v": 1}, [_call()], {}))
    finished = _revisions(store)
    assert finished["a"] > leased["b"] and finished["b"] == leased["b"]

    asyncio.run(store.reopen_run("run-1", driver="h:1", dead_owners=["worker-1"], now=0))
    reopened = _revisions(store)
    assert reopened["b"] == finished["a"] + 1  # the dead owner's task, back to pending
    assert (reopened["a"], reopened["c"]) == (finished["a"], finished["c"])

    with sqlite3.connect(store.path) as raw:  # a hand edit: no trigger stamps it
        raw.execute("UPDATE tasks SET error = 'edited' WHERE key = 'c' AND run_id = 'run-1'")
        triggers = raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert [name for (name,) in triggers if name.startswith("tasks_")] == []
    assert _revisions(store)["c"] == reopened["c"]


def test_run_rows_reads_run_phases_and_tasks(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("b", "a"))

    run, phases, tasks = asyncio.run(store.run_rows("run-1"))

    assert run.status is RunStatus.RUNNING
    assert [(p.phase, p.attempt, p.status) for p in phases] == [
        ("ideation", 1, PhaseStatus.RUNNING)
    ]
    assert [(t.key, t.status, t.tries, t.not_before) for t in tasks] == [
        ("a", TaskStatus.PENDING, 0, 0.0),
        ("b", TaskStatus.PENDING, 0, 0.0),
    ]


class _Recording:
    """Captures the statements a query helper would run (SQLite explains them below)."""

    dialect = "sqlite"

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[object, ...]]] = []

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        self.seen.append((sql, tuple(params)))
        return []


def test_claims_walk_the_claim_index_in_order_and_never_scan_tasks(
    store: SqliteStore, running_run: MakeRun
) -> None:
    """Migrations 9 and 12: a run's claim reads its pending tasks in claim order from
    `tasks_claim`, a partial index of pending tasks (no sort of them all), and so does the
    check for a waiting task; a claim across runs starts from the running runs, never
    walking the tasks of every run the file ever held."""
    running_run(keys=("a", "b"))
    recording = _Recording()
    tq.claimable(recording, "run-1", 0.0, 64, "")  # type: ignore[arg-type]
    tq.claimable(recording, None, 0.0, 64, "")  # type: ignore[arg-type]
    tq.any_claimable(recording, "run-1", 0.0)  # type: ignore[arg-type]

    with sqlite3.connect(store.path) as raw:
        one_run, every_run, any_one = (
            [str(row[3]) for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in recording.seen
        )
    for plan in (one_run, every_run, any_one):
        assert any("USING INDEX tasks_claim (run_id=? AND status=?)" in s for s in plan), plan
        assert not any(step.startswith("SCAN t") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in one_run), one_run


def test_the_reaper_reads_running_tasks_in_expiry_order_from_their_own_index(
    store: SqliteStore, running_run: MakeRun
) -> None:
    """Migration 10: the look for expired leases reads the partial index of running tasks,
    not every task the file ever held."""
    running_run(keys=("a",))
    recording = _Recording()
    coordination.select_expired(recording, 0.0, 64, "")  # type: ignore[arg-type]

    [(sql, params)] = recording.seen
    with sqlite3.connect(store.path) as raw:
        plan = [str(row[3]) for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert plan == ["SEARCH t USING INDEX tasks_leased (lease_expires_at<?)"], plan


def test_duplicate_task_key_in_an_attempt_is_rejected_whole(
    store: SqliteStore,
    running_run: MakeRun,
    new_tasks: Callable[..., list[NewTask]],
) -> None:
    running_run(keys=("a",))
    events = _events(store)
    duplicate = [*new_tasks("z", prefix="other"), *new_tasks("a", prefix="other")]

    with pytest.raises(StoreError):
        asyncio.run(
            store.create_tasks("run-1", "ideation", 1, duplicate, EventDraft(type="phase.fanned"))
        )

    assert sorted(_tasks(store)) == ["a"]
    assert _events(store) == events


# -- resume ---------------------------------------------------------------------------------


def test_reopen_reclaims_dead_owners_and_expired_leases_only(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a", "b", "c", "d"))
    (dead,) = _claim(store, clock, owner="dead", lease=3600)
    (expired,) = _claim(store, clock, owner="slow", lease=10)
    (live,) = _claim(store, clock, owner="live", lease=3600)
    (done,) = _claim(store, clock, owner="live", lease=3600)
    asyncio.run(store.record_output(done.task.id, done.lease_token, {"ok": True}, [], {}))
    clock.advance(60)

    reclaimed = asyncio.run(
        store.reopen_run("run-1", driver="host:9", dead_owners=["dead"], now=clock.now())
    )

    assert sorted(reclaimed) == sorted([dead.task.id, expired.task.id])
    tasks = _tasks(store)
    assert tasks["a"].status is TaskStatus.PENDING
    assert tasks["b"].status is TaskStatus.PENDING
    assert (tasks["a"].lease_owner, tasks["b"].lease_owner) == (None, None)
    assert tasks["c"].status is TaskStatus.RUNNING
    assert tasks["c"].lease_owner == "live"
    assert tasks["d"].status is TaskStatus.SUCCEEDED  # invariant 2: never re-run
    assert asyncio.run(store.outputs("run-1", "ideation", 1)) == {"d": {"ok": True}}
    events = _events(store)
    retries = [event for event in events if event.type == "task.retry"]
    assert sorted(event.task_id or "" for event in retries) == sorted(reclaimed)
    assert {event.payload["strategy"] for event in retries} == {"resume"}
    assert {event.payload["previous_owner"] for event in retries} == {"dead", "slow"}
    assert events[-1].type == "run.resumed"
    assert events[-1].payload["reclaimed"] == 2
    assert asyncio.run(store.get_run("run-1")).driver == "host:9"
    # The live holder's token still works; the reclaimed holders' do not.
    asyncio.run(store.renew_lease(live.task.id, live.lease_token, lease_seconds=1, now=0))
    with pytest.raises(StaleLeaseError):
        asyncio.run(store.renew_lease(dead.task.id, dead.lease_token, lease_seconds=1, now=0))


def _fail_phase(store: SqliteStore, clock: Ticking, attempt: int, *, fail_run: bool) -> None:
    (claimed,) = _claim(store, clock)
    asyncio.run(
        store.fail_task(
            claimed.task.id, claimed.lease_token, error="boom", retry_at=None, strategy="none"
        )
    )
    asyncio.run(
        store.set_phase_status(
            "run-1",
            "ideation",
            attempt,
            PhaseStatus.FAILED,
            [EventDraft(type="phase.failed", phase="ideation")],
            error="a task failed",
            run_status=RunStatus.FAILED if fail_run else None,
        )
    )


def test_reopen_reopens_a_failed_phase_and_its_failed_task(
    store: SqliteStore, running_run: MakeRun, clock: Ticking
) -> None:
    running_run(keys=("a",))
    _fail_phase(store, clock, 1, fail_run=True)
    assert asyncio.run(store.get_run("run-1")).status is RunStatus.FAILED

    reclaimed = asyncio.run(store.reopen_run("run-1", driver="h:1", dead_owners=[], now=0))

    assert reclaimed == ["run-1-a"]
    run, phases, tasks = asyncio.run(store.run_rows("run-1"))
    assert run.status is RunStatus.RUNNING
    assert run.error is None
    assert [(p.status, p.finished_at, p.error) for p in phases] == [
        (PhaseStatus.RUNNING, None, None)
    ]
    assert tasks[0].status is TaskStatus.PENDING
    events = _events(store)
    retry = events[-2]
    assert (retry.type, retry.task_id) == ("task.retry", "run-1-a")
    assert retry.payload["strategy"] == "resume"
    assert retry.payload["previous_status"] == "failed"
    assert events[-1].type == "run.resumed"
    assert events[-1].payload["reopened_phases"] == ["ideation"]
    assert events[-1].payload["previous_status"] == "failed"
    assert [claimed.task.key for claimed in _claim(store, clock)] == ["a"]


def test_reopen_leaves_failed_tasks_of_older_attempts_alone(
    store: SqliteStore,
    running_run: MakeRun,
    clock: Ticking,
    new_tasks: Callable[..., list[NewTask]],
) -> None:
    """Only the latest attempt of a failed phase is reopened ("so *their* failed tasks can
    retry"); a superseded attempt's failed task must stay failed, or it becomes claimable."""
    running_run(keys=("a",))
    _fail_phase(store, clock, 1, fail_run=False)
    asyncio.run(store.start_phase("run-1", "ideation", 2, EventDraft(type="phase.started")))
    asyncio.run(
        store.create_tasks(
            "run-1", "ideation", 2, new_tasks("a", prefix="try2"), EventDraft(type="fanned")
        )
    )
    _fail_phase(store, clock, 2, fail_run=True)

    reclaimed = asyncio.run(store.reopen_run("run-1", driver="h:1", dead_owners=[], now=0))

    assert reclaimed == ["try2-a"]
    _, phases, tasks = asyncio.run(store.run_rows("run-1"))
    assert {(t.attempt, t.status) for t in tasks} == {
        (1, TaskStatus.FAILED),
        (2, TaskStatus.PENDING),
    }
    assert {(p.attempt, p.status) for p in phases} == {
        (1, PhaseStatus.FAILED),
        (2, PhaseStatus.RUNNING),
    }


def test_reopen_of_a_completed_run_is_illegal_and_writes_nothing(
    store: SqliteStore, running_run: MakeRun
) -> None:
    running_run(phase=None)
    asyncio.run(store.set_run_status("run-1", RunStatus.COMPLETED, EventDraft(type="run.done")))
    events = _events(store)

    with pytest.raises(IllegalTransitionError):
        asyncio.run(store.reopen_run("run-1", driver="h:1", dead_owners=[], now=0))

    assert _events(store) == events
    assert asyncio.run(store.get_run("run-1")).status is RunStatus.COMPLETED


# -- invariant 1: a state change and its event commit together ------------------------------


def _abort_inserts_of(raw: sqlite3.Connection, event_type: str) -> None:
    raw.execute(
        "CREATE TRIGGER abort_event BEFORE INSERT ON events "
        f"WHEN NEW.type = '{event_type}' BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )


def test_state_change_and_event_commit_together(
    store: SqliteStore, running_run: MakeRun, clock: Ticking, raw: sqlite3.Connection
) -> None:
    running_run(keys=("a",))
    (claimed,) = _claim(store, clock)
    events = _events(store)
    _abort_inserts_of(raw, "task.succeeded")

    with pytest.raises(StoreError) as caught:
        asyncio.run(
            store.record_output(claimed.task.id, claimed.lease_token, {"text": "x"}, [_call()], {})
        )

    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert raw.execute("SELECT COUNT(*) FROM task_outputs").fetchone() == (0,)
    assert raw.execute("SELECT COUNT(*) FROM model_calls").fetchone() == (0,)
    task = _tasks(store)["a"]
    assert task.status is TaskStatus.RUNNING
    assert task.lease_owner == "worker-1"
    assert _events(store) == events
    # The store is still usable, and the same lease can still record the output.
    raw.execute("DROP TRIGGER abort_event")
    asyncio.run(store.record_output(claimed.task.id, claimed.lease_token, {"text": "x"}, [], {}))
    assert _tasks(store)["a"].status is TaskStatus.SUCCEEDED


def test_a_failed_claim_leases_nothing(
    store: SqliteStore, running_run: MakeRun, clock: Ticking, raw: sqlite3.Connection
) -> None:
    running_run(keys=("a", "b"))
    _abort_inserts_of(raw, "task.started")

    with pytest.raises(StoreError):
        _claim(store, clock, limit=2)

    assert {t.status for t in _tasks(store).values()} == {TaskStatus.PENDING}
    assert {t.tries for t in _tasks(store).values()} == {0}


def test_translated_driver_errors_say_what_to_do_next(
    store: SqliteStore, running_run: MakeRun, clock: Ticking, raw: sqlite3.Connection
) -> None:
    """Every IdeaMineError carries a hint; the catch-all translations in ``_translate`` do not."""
    running_run(keys=("a",))
    _abort_inserts_of(raw, "task.started")

    with pytest.raises(StoreError) as caught:
        _claim(store, clock)

    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert caught.value.hint


# -- artifacts and blobs --------------------------------------------------------------------


def _ready(store: SqliteStore, attempt: int, artifacts: Sequence[NewArtifact]) -> list[EventRecord]:
    records = asyncio.run(
        store.record_artifacts(
            "run-1",
            "ideation",
            attempt,
            artifacts,
            EventDraft(type="phase.ready", phase="ideation", payload={"attempt": attempt}),
        )
    ).artifacts
    assert [record.type for record in records] == [artifact.type for artifact in artifacts]
    return _events(store)


def test_artifacts_are_content_addressed_and_versioned(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection, clock: Ticking
) -> None:
    running_run(keys=())
    same = {"title": "IdeaMine", "pitch": "ideas in, products out"}

    events = _ready(
        store,
        1,
        [
            NewArtifact(type="brief", content=same, provenance={"tasks": ["a"]}),
            NewArtifact(type="notes", content=same, provenance={}),
        ],
    )

    assert raw.execute("SELECT COUNT(*) FROM blobs").fetchone() == (1,)
    first = asyncio.run(store.artifacts("run-1"))
    assert [(a.type, a.version, a.attempt) for a in first] == [("brief", 1, 1), ("notes", 1, 1)]
    assert {a.content_hash for a in first} == {content_hash(same)}
    assert first[0].provenance == {"tasks": ["a"]}
    ready = events[-1]
    assert (ready.type, ready.kind, ready.phase) == ("phase.ready", "artifact", "ideation")
    assert ready.payload == {"attempt": 1, "artifacts": {a.type: a.id for a in first}}
    _, phases, _ = asyncio.run(store.run_rows("run-1"))
    assert phases[0].status is PhaseStatus.READY

    asyncio.run(
        store.set_phase_status(
            "run-1", "ideation", 1, PhaseStatus.FAILED, [EventDraft(type="phase.gate.failed")]
        )
    )
    clock.advance(1)
    asyncio.run(store.start_phase("run-1", "ideation", 2, EventDraft(type="phase.started")))
    changed = {**same, "pitch": "better"}
    _ready(store, 2, [NewArtifact(type="brief", content=changed, provenance={})])

    latest = asyncio.run(store.artifacts("run-1"))
    assert [(a.type, a.version, a.attempt) for a in latest] == [
        ("brief", 1, 1),
        ("notes", 1, 1),
        ("brief", 2, 2),
    ]
    assert raw.execute("SELECT COUNT(*) FROM blobs").fetchone() == (2,)
    assert asyncio.run(store.blob(content_hash(same))) == same
    assert asyncio.run(store.blob(latest[-1].content_hash)) == changed


def test_record_artifacts_twice_on_one_attempt_is_illegal(
    store: SqliteStore, running_run: MakeRun
) -> None:
    running_run(keys=())
    events = _ready(store, 1, [NewArtifact(type="brief", content={"v": 1}, provenance={})])

    with pytest.raises(IllegalTransitionError):
        _ready(store, 1, [NewArtifact(type="brief", content={"v": 2}, provenance={})])

    assert len(asyncio.run(store.artifacts("run-1"))) == 1
    assert _events(store) == events


def test_an_edited_blob_is_corrupt(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection
) -> None:
    running_run(keys=())
    _ready(store, 1, [NewArtifact(type="brief", content={"v": 1}, provenance={})])
    digest = content_hash({"v": 1})
    raw.execute("UPDATE blobs SET content = '{\"v\":2}' WHERE hash = ?", (digest,))

    with pytest.raises(StoreCorruptError) as caught:
        asyncio.run(store.blob(digest))

    assert digest in str(caught.value)
    assert caught.value.hint


def test_a_missing_blob_is_corrupt(store: SqliteStore) -> None:
    with pytest.raises(StoreCorruptError):
        asyncio.run(store.blob("00" * 32))


def test_undecodable_run_json_is_corrupt_and_the_row_is_left_intact(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection
) -> None:
    running_run(phase=None)
    raw.execute("UPDATE runs SET constraints = '{not json' WHERE id = 'run-1'")
    row = raw.execute("SELECT * FROM runs").fetchall()

    for read in (store.get_run("run-1"), store.list_runs(), store.run_rows("run-1")):
        with pytest.raises(StoreCorruptError) as caught:
            asyncio.run(read)
        assert "run-1" in str(caught.value)
        assert caught.value.hint
        assert isinstance(caught.value.__cause__, ValueError)

    assert raw.execute("SELECT * FROM runs").fetchall() == row


@pytest.mark.parametrize(
    ("table", "column"), [("runs", "id"), ("phases", "run_id"), ("tasks", "run_id")]
)
def test_an_unknown_stored_status_is_corrupt(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection, table: str, column: str
) -> None:
    """A row that does not decode is a ``StoreCorruptError`` with a hint, not a bare
    ``ValueError`` from the status enum."""
    running_run(keys=("a",))
    raw.execute(f"UPDATE {table} SET status = 'exploded' WHERE {column} = 'run-1'")

    with pytest.raises(StoreCorruptError) as caught:
        asyncio.run(store.run_rows("run-1"))

    assert caught.value.hint


@pytest.mark.parametrize("manifest", ["{not json", "[1, 2]"])
def test_a_run_whose_manifest_does_not_decode_is_corrupt_every_time(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection, manifest: str, db_path: Path
) -> None:
    """A store reads a run's manifest once per (run, manifest hash) and shares it read-only;
    a broken one is never remembered, so every read reports it until it is repaired."""
    running_run(keys=("a",))
    good = asyncio.run(store.get_run("run-1")).manifest
    assert asyncio.run(store.get_run("run-1")).manifest is good
    raw.execute("UPDATE runs SET manifest = ? WHERE id = 'run-1'", (manifest,))
    assert asyncio.run(store.get_run("run-1")).manifest is good  # not read again

    fresh = SqliteStore(db_path)
    try:
        for _ in range(2):
            with pytest.raises(StoreCorruptError, match="runs row 'run-1'") as caught:
                asyncio.run(fresh.get_run("run-1"))
            assert caught.value.hint
        raw.execute("UPDATE runs SET manifest = ? WHERE id = 'run-1'", (json.dumps(dict(good)),))
        repaired = asyncio.run(fresh.get_run("run-1")).manifest
        assert repaired == good
        with pytest.raises(TypeError):
            repaired["pipeline.yaml"] = "edited"  # type: ignore[index]  # read-only
    finally:
        asyncio.run(fresh.close())


# -- events ---------------------------------------------------------------------------------


def test_events_page_in_id_order(store: SqliteStore, running_run: MakeRun) -> None:
    running_run(phase=None)
    for step in range(5):
        asyncio.run(
            store.append_event("run-1", EventDraft(type="run.progress", payload={"n": step}))
        )
    every = _events(store)

    page = asyncio.run(store.events("run-1", after_id=every[1].id, limit=3))

    assert page == every[2:5]
    assert [event.id for event in every] == sorted(event.id for event in every)


# -- two processes on one file --------------------------------------------------------------


def test_two_stores_on_one_file_never_claim_a_task_twice(
    store: SqliteStore, db_path: Path, running_run: MakeRun, clock: Ticking
) -> None:
    keys = tuple(f"k{n:02d}" for n in range(40))
    running_run(keys=keys)

    async def drain(other: SqliteStore) -> list[ClaimedTask]:
        async def claim(target: SqliteStore, owner: str) -> list[ClaimedTask]:
            return await target.claim_tasks(
                "run-1", owner=owner, lease_seconds=LEASE, now=clock.now(), limit=3
            )

        batches = await asyncio.gather(
            *(claim(store if n % 2 else other, f"w{n % 2}") for n in range(20))
        )
        return [claimed for batch in batches for claimed in batch]

    other = SqliteStore(db_path, clock)
    try:
        claimed = asyncio.run(drain(other))
    finally:
        asyncio.run(other.close())

    ids = [c.task.id for c in claimed]
    assert len(ids) == len(set(ids)) == len(keys)
    assert len({c.lease_token for c in claimed}) == len(keys)
    assert {c.task.lease_owner for c in claimed} == {"w0", "w1"}
    started = [event.task_id for event in _events(store) if event.type == "task.started"]
    assert sorted(started) == sorted(ids)
    assert {t.tries for t in _tasks(store).values()} == {1}


# -- reads: on the caller's thread, a snapshot each, never behind the writer -----------------


def test_a_read_does_not_wait_for_a_write_in_progress(
    store: SqliteStore, running_run: MakeRun
) -> None:
    running_run(keys=())
    release = threading.Event()

    async def go() -> tuple[RunRecord, bool]:
        await store.get_run("run-1")  # a read before the write
        writing = store.run_in_transaction(lambda db: release.wait(10))
        stuck = asyncio.create_task(asyncio.to_thread(asyncio.run, writing))  # another thread
        await asyncio.sleep(0.05)  # that thread is now inside its write transaction
        try:
            return await store.get_run("run-1"), stuck.done()
        finally:
            release.set()
            await stuck

    run, writer_done = asyncio.run(go())

    assert run.status is RunStatus.RUNNING
    assert not writer_done  # the read finished while the writer was still busy


def test_a_read_sees_every_write_acknowledged_before_it(
    store: SqliteStore, running_run: MakeRun
) -> None:
    running_run(keys=())

    async def go() -> list[RunStatus]:
        seen = [(await store.get_run("run-1")).status]
        for status in (RunStatus.PAUSED, RunStatus.RUNNING, RunStatus.CANCELLED):
            await store.set_run_status("run-1", status, EventDraft(type=f"run.{status}"))
            seen.append((await store.get_run("run-1")).status)
        return seen

    assert asyncio.run(go()) == [
        RunStatus.RUNNING,
        RunStatus.PAUSED,
        RunStatus.RUNNING,
        RunStatus.CANCELLED,
    ]


def test_a_read_sees_one_snapshot_while_others_commit(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection
) -> None:
    running_run(keys=())

    def work(db: Db) -> tuple[object, object]:
        before = db.query("SELECT error FROM runs WHERE id = 'run-1'")[0][0]
        raw.execute("UPDATE runs SET error = 'changed meanwhile' WHERE id = 'run-1'")
        after = db.query("SELECT error FROM runs WHERE id = 'run-1'")[0][0]
        return before, after

    assert asyncio.run(store.run_read(work)) == (None, None)
    assert asyncio.run(store.get_run("run-1")).error == "changed meanwhile"  # the next read


def _on_another_thread(work: Callable[[], T]) -> T:
    """``work()`` on a thread of its own (where no write of the store ran)."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(work()))
    thread.start()
    thread.join()
    assert results, "the thread raised (see the warning pytest printed)"
    return results[0]


@pytest.mark.parametrize("where", ["on the writing thread", "on another thread"])
def test_a_read_that_writes_is_refused_and_writes_nothing(
    store: SqliteStore, running_run: MakeRun, where: str
) -> None:
    """Refused on the writer's connection (the thread whose writes ran at once there) as on
    a reading connection of its own (any other thread)."""
    running_run(keys=())

    def read_that_writes() -> StoreError:
        with pytest.raises(StoreError, match="tried to write") as caught:
            asyncio.run(store.run_read(lambda db: db.query("UPDATE runs SET error = 'x'")))
        return caught.value

    if where == "on the writing thread":
        refused = read_that_writes()
    else:
        refused = _on_another_thread(read_that_writes)

    assert "run_in_transaction" in refused.hint
    assert asyncio.run(store.get_run("run-1")).error is None
    asyncio.run(store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused")))
    assert asyncio.run(store.get_run("run-1")).status is RunStatus.PAUSED  # writes go on


def test_the_writing_thread_reads_on_the_writers_connection_with_what_it_wrote(
    store: SqliteStore, running_run: MakeRun, db_path: Path, raw: sqlite3.Connection
) -> None:
    """The thread whose writes run at once reads on the writer's connection (whose page
    cache holds what it wrote): no reading connection of its own is opened. It still sees
    what other connections committed."""
    running_run(keys=())

    async def write_then_read() -> RunRecord:
        await store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused"))
        raw.execute("UPDATE runs SET error = 'from another connection' WHERE id = 'run-1'")
        return await store.get_run("run-1")

    run = asyncio.run(write_then_read())

    assert (run.status, run.error) == (RunStatus.PAUSED, "from another connection")
    assert _open_files(db_path) == 2  # the writer's connection and `raw`: no reader
    other = _on_another_thread(lambda: asyncio.run(store.get_run("run-1")))
    assert (other.status, other.error) == (run.status, run.error)  # on a reader of its own


def test_the_writing_thread_reads_elsewhere_while_the_writers_connection_is_busy(
    store: SqliteStore, running_run: MakeRun
) -> None:
    """The thread whose writes ran at once does not wait for the writer's connection: while
    another thread holds it (as the writer thread does for a batch), it reads on its own."""
    running_run(keys=())  # this thread's writes ran at once
    held, released, let_go = threading.Event(), threading.Event(), threading.Event()

    def hold_the_writers_connection() -> None:
        with store._lock:  # what the writer thread holds during a batch
            held.set()
            released.wait(5)
        let_go.set()

    holder = threading.Thread(target=hold_the_writers_connection)
    holder.start()
    try:
        assert held.wait(5)
        run = asyncio.run(store.get_run("run-1"))
        read_while_held = not let_go.is_set()
    finally:
        released.set()
        holder.join()

    assert run.status is RunStatus.RUNNING
    assert read_while_held


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda db: db.query("SELECT nothing FROM nowhere"), id="a failing statement"),
        pytest.param(lambda db: db.query("COMMIT"), id="a read that ends its transaction"),
    ],
)
def test_a_read_that_fails_on_the_writers_connection_leaves_it_usable(
    store: SqliteStore, running_run: MakeRun, read: Callable[[Db], object]
) -> None:
    running_run(keys=())  # this thread's writes ran at once: it reads on the writer's

    with pytest.raises(StoreError):
        asyncio.run(store.run_read(read))
    with pytest.raises(RunNotFoundError):
        asyncio.run(store.get_run("no-such-run"))

    asyncio.run(store.set_run_status("run-1", RunStatus.PAUSED, EventDraft(type="run.paused")))
    assert asyncio.run(store.get_run("run-1")).status is RunStatus.PAUSED


def _open_files(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path``."""
    target = str(path.resolve())
    return sum(1 for fd in Path("/proc/self/fd").iterdir() if _link(fd) == target)


def _link(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:  # closed since it was listed
        return ""


def test_each_thread_reads_on_its_own_connection_closed_with_the_thread_or_the_store(
    store: SqliteStore, running_run: MakeRun, db_path: Path
) -> None:
    running_run(keys=())
    open_meanwhile: list[int] = []

    def four_threads_read() -> None:
        all_reading = threading.Barrier(4)

        def read() -> None:
            assert asyncio.run(store.get_run("run-1")).status is RunStatus.RUNNING
            if all_reading.wait() == 0:  # one of the four counts, while every thread is alive
                open_meanwhile.append(_open_files(db_path))
            all_reading.wait()

        threads = [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        read()  # this thread is the fourth
        for thread in threads:
            thread.join()

    four_threads_read()
    four_threads_read()  # three new threads: the ended ones' connections were closed

    # The writer's connection (this thread's writes ran there at once, so it reads there
    # too) and three readers'. (SQLite keeps a closed connection's file descriptor for the
    # next connection to the same file while others hold locks on it, so readers left open
    # by ended threads would show as 6 the second time.)
    assert open_meanwhile == [4, 4]
    asyncio.run(store.close())
    assert _open_files(db_path) == 0
    assert asyncio.run(store.get_run("run-1")).status is RunStatus.RUNNING  # opened again


def test_closing_the_store_while_other_threads_read_waits_for_their_reads(
    store: SqliteStore, running_run: MakeRun
) -> None:
    """``close`` closes every thread's reading connection, each after the read in progress
    on it (closing a connection under a running query crashes the process)."""
    running_run(keys=tuple(f"k{n:03d}" for n in range(200)))
    stop = threading.Event()
    failures: list[BaseException] = []
    reads = [0] * 4

    def keep_reading(index: int) -> None:
        async def loop() -> None:
            while not stop.is_set():
                try:
                    _, _, tasks = await store.run_rows("run-1")
                    assert len(tasks) == 200
                    reads[index] += 1
                except BaseException as exc:  # reported below
                    failures.append(exc)
                    return

        asyncio.run(loop())

    threads = [threading.Thread(target=keep_reading, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()

    async def close_repeatedly() -> None:
        for _ in range(20):
            await asyncio.sleep(0.005)
            await store.close()

    try:
        asyncio.run(close_repeatedly())
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert all(count > 0 for count in reads)  # each went on reading, reopening after a close


def test_task_revision_stamps_keep_rising_when_the_rows_that_carried_them_go(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection
) -> None:
    """Migration 12: the highest stamp handed out is kept in `task_revision`, not read back
    from the tasks, so deleting them (retention) never hands a stamp out twice."""
    running_run("run-1", keys=("a", "b"))
    (highest,) = raw.execute("SELECT MAX(revision) FROM tasks").fetchone()
    assert raw.execute("SELECT last FROM task_revision").fetchall() == [(highest,)]
    raw.execute("DELETE FROM tasks")

    running_run("run-2", keys=("c",))

    (stamp,) = raw.execute("SELECT revision FROM tasks WHERE run_id = 'run-2'").fetchone()
    assert stamp > highest


def test_migration_12_counts_on_from_the_highest_stamp_stored(
    store: SqliteStore, running_run: MakeRun, db_path: Path
) -> None:
    """A file at version 11 with tasks stamped up to 41: the counter starts there."""
    running_run("run-1", keys=("a", "b"))
    asyncio.run(store.close())
    with sqlite3.connect(db_path, isolation_level=None) as raw:  # back to version 11
        raw.execute("DELETE FROM schema_version WHERE version = 12")
        raw.execute("DROP TABLE task_revision")
        raw.execute("DROP INDEX tasks_claim")
        raw.execute("CREATE INDEX tasks_claim ON tasks (run_id, status, created_at, phase, key)")
        raw.execute("CREATE INDEX tasks_revision_latest ON tasks (revision)")
        raw.execute("UPDATE tasks SET revision = 41 WHERE key = 'a'")

    again = SqliteStore(db_path)
    asyncio.run(again.migrate())
    asyncio.run(again.close())

    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT last FROM task_revision").fetchall() == [(41,)]
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert "tasks_revision_latest" not in indexes


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE tasks SET status = 'exploded' WHERE key = 'a'", "tasks row 'run-1-a'"),
        ("UPDATE phases SET status = 'exploded'", "phases row run-1/ideation#1"),
        ("UPDATE runs SET status = 'exploded'", "run-1"),
    ],
)
def test_a_status_edited_to_nonsense_is_corrupt_naming_the_row(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection, edit: str, named: str
) -> None:
    """Statuses are decoded through a map of the known ones; anything else is a damaged or
    hand-edited row, named in the error, with what to do."""
    running_run(keys=("a",))
    raw.execute(edit)

    with pytest.raises(StoreCorruptError, match="unknown status 'exploded'") as caught:
        asyncio.run(store.run_rows("run-1"))

    assert named in str(caught.value)
    assert caught.value.hint
