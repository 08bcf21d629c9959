"""Group commit: batches form while the writer is busy, a failing unit is undone alone, and
no caller hears of a result before its batch committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ideamine.errors import StoreError
from ideamine.stores import queries as q
from ideamine.stores import sqlite as sqlite_module
from ideamine.stores.groupcommit import Failure, GroupCommit, Outcome, Success
from ideamine.stores.sqlite import SqliteStore

DbWork = Callable[[q.Db], object]


class _Recorder:
    """An ``execute`` that holds its first batch until released and records every batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, works: Sequence[int]) -> list[Outcome]:
        if not self.batches:
            self.release.wait(5)
        self.batches.append(list(works))
        return [Success(work * 10) if work >= 0 else Failure(ValueError(work)) for work in works]


async def _queued(committer: GroupCommit[Any], count: int) -> None:
    """Wait until ``count`` units sit in the committer's queue."""
    for _ in range(500):
        if committer._queue.qsize() >= count:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"{count} units never queued")


def test_units_queued_while_the_writer_is_busy_commit_as_one_batch() -> None:
    recorder = _Recorder()
    committer: GroupCommit[int] = GroupCommit(recorder, name="test writer")

    async def scenario() -> list[object]:
        first = asyncio.create_task(committer.submit(0))
        await asyncio.sleep(0.05)  # the writer holds batch [0]
        rest = [asyncio.create_task(committer.submit(i)) for i in (1, 2, -3, 4)]
        await _queued(committer, 4)
        recorder.release.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    results = asyncio.run(scenario())
    committer.close()

    assert recorder.batches == [[0], [1, 2, -3, 4]]
    assert results[:3] == [0, 10, 20] and results[4] == 40
    assert isinstance(results[3], ValueError)  # only the failing unit sees its error


def test_an_execute_that_raises_fails_its_batch_and_the_writer_carries_on() -> None:
    calls: list[int] = []

    def execute(works: Sequence[int]) -> list[Outcome]:
        calls.append(len(works))
        if len(calls) == 1:
            raise OSError("disk gone")
        return [Success(work) for work in works]

    committer: GroupCommit[int] = GroupCommit(execute, name="test writer")
    with pytest.raises(OSError, match="disk gone"):
        asyncio.run(committer.submit(1))
    assert asyncio.run(committer.submit(2)) == 2
    committer.close()


def _insert(key: str, fail: bool = False) -> DbWork:
    def work(db: q.Db) -> str:
        db.query("INSERT INTO blobs_probe (key) VALUES (?)", (key,))
        if fail:
            raise RuntimeError(f"unit {key} failed after writing")
        return key

    return work


class _Blocker:
    """A unit that holds the writer inside its transaction until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, db: q.Db) -> str:
        self.started.set()
        self.release.wait(5)
        return "blocker"


async def _batch_after_blocker(store: SqliteStore, works: Sequence[DbWork]) -> list[object]:
    """Run ``works`` as one batch: queued while a blocker holds the writer."""
    blocker = _Blocker()
    first = asyncio.create_task(store._writer.submit(blocker))  # on the writer thread
    assert await asyncio.to_thread(blocker.started.wait, 5)
    rest = [asyncio.create_task(store.run_in_transaction(work)) for work in works]
    await _queued(store._writer, len(works))
    blocker.release.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))[1:]


def _keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT key FROM blobs_probe ORDER BY key")]


def _record_batches(store: SqliteStore) -> list[int]:
    """Give ``store`` a writer thread named "recording writer" that notes each batch's size."""
    sizes: list[int] = []
    run_batch = store._run_batch

    def recording(works: Sequence[DbWork]) -> list[Outcome]:
        sizes.append(len(works))
        return run_batch(works)

    store._writer = GroupCommit(recording, name="recording writer")
    return sizes


def test_a_failing_unit_is_rolled_back_alone_inside_a_committed_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ideamine.db")
    sizes = _record_batches(store)

    async def scenario() -> list[object]:
        await store.migrate()
        await store.run_in_transaction(
            lambda db: db.query("CREATE TABLE blobs_probe (key TEXT PRIMARY KEY)")
        )
        sizes.clear()
        works = (_insert("a"), _insert("b", fail=True), _insert("c"), _insert("a"))
        results = await _batch_after_blocker(store, works)
        await store.close()
        return results

    results = asyncio.run(scenario())

    assert sizes == [1, 4]
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[3], StoreError)  # the duplicate key, translated
    assert isinstance(results[3].__cause__, sqlite3.IntegrityError)
    assert _keys(tmp_path / "ideamine.db") == ["a", "c"]


def test_nothing_is_acknowledged_when_the_batch_cannot_commit(tmp_path: Path) -> None:
    """A unit that runs COMMIT's precondition away (here: it ends the transaction itself)
    fails the whole batch, and none of its units' writes survive."""
    store = SqliteStore(tmp_path / "ideamine.db")

    def sabotage(db: q.Db) -> None:
        db.query("RELEASE unit")
        db.query("ROLLBACK")

    async def scenario() -> list[object]:
        await store.migrate()
        await store.run_in_transaction(
            lambda db: db.query("CREATE TABLE blobs_probe (key TEXT PRIMARY KEY)")
        )
        await store.run_in_transaction(_insert("a"))
        results = await _batch_after_blocker(store, (_insert("b"), sabotage, _insert("c")))
        await store.close()
        return results

    results = asyncio.run(scenario())

    assert all(isinstance(result, StoreError) for result in results)
    assert _keys(tmp_path / "ideamine.db") == ["a"]


# -- a write with nothing queued runs at once on the caller's thread --------------------------


def _thread_name(db: q.Db) -> str:
    db.query("INSERT INTO blobs_probe (key) VALUES (?)", (threading.current_thread().name,))
    return threading.current_thread().name


async def _probe_store(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.migrate()
    await store.run_in_transaction(
        lambda db: db.query("CREATE TABLE blobs_probe (key TEXT PRIMARY KEY)")
    )
    return store


def test_a_write_with_nothing_queued_runs_at_once_on_the_callers_thread(tmp_path: Path) -> None:
    async def scenario() -> str:
        store = await _probe_store(tmp_path / "ideamine.db")
        try:
            return await store.run_in_transaction(_thread_name)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == threading.current_thread().name
    assert _keys(tmp_path / "ideamine.db") == [threading.current_thread().name]


def test_writes_made_while_another_thread_writes_queue_for_the_writer_thread(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[object], list[int]]:
        store = await _probe_store(tmp_path / "ideamine.db")
        sizes = _record_batches(store)
        blocker = _Blocker()
        elsewhere = asyncio.create_task(
            asyncio.to_thread(asyncio.run, store.run_in_transaction(blocker))
        )
        assert await asyncio.to_thread(blocker.started.wait, 5)  # it holds the store's lock
        queued = [asyncio.create_task(store.run_in_transaction(_insert(key))) for key in "xy"]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in queued)  # waiting for the lock, not failed
        blocker.release.set()
        await elsewhere
        keys = list(await asyncio.gather(*queued))
        await store.close()
        return keys, sizes

    keys, sizes = asyncio.run(scenario())

    assert keys == ["x", "y"] and sum(sizes) == 2  # both went through the writer thread
    assert _keys(tmp_path / "ideamine.db") == ["x", "y"]


def test_while_another_process_writes_a_write_waits_in_the_queue_not_in_the_event_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ideamine.db"

    async def scenario() -> tuple[int, bool, str]:
        store = await _probe_store(path)
        other = sqlite3.connect(path, isolation_level=None)  # another process, as SQLite sees it
        other.execute("BEGIN IMMEDIATE")
        ticks = 0
        try:
            write = asyncio.create_task(store.run_in_transaction(_thread_name))
            for _ in range(20):  # the loop keeps turning while the write waits for the lock
                await asyncio.sleep(0.01)
                ticks += 1
            waited = not write.done()
            other.execute("COMMIT")
            return ticks, waited, await write
        finally:
            other.close()
            await store.close()

    ticks, waited, thread = asyncio.run(scenario())

    assert ticks == 20 and waited
    assert thread.startswith("sqlite writer")
    assert _keys(path) == [thread]


def test_an_interrupt_between_begin_and_commit_leaves_no_transaction_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C lands on the event loop's thread, where a write now runs: it must not
    leave the write transaction open (every later write would fail, other processes wait)."""
    path = tmp_path / "ideamine.db"
    begin = sqlite_module._begin_at_once

    def interrupted(connection: sqlite3.Connection) -> bool:
        begin(connection)
        raise KeyboardInterrupt

    async def scenario() -> str:
        store = await _probe_store(path)
        try:
            monkeypatch.setattr(sqlite_module, "_begin_at_once", interrupted)
            with pytest.raises(KeyboardInterrupt):
                await store.run_in_transaction(_insert("lost"))
            monkeypatch.setattr(sqlite_module, "_begin_at_once", begin)
            return await store.run_in_transaction(_insert("kept"))
        finally:
            await store.close()

    assert asyncio.run(scenario()) == "kept"
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # nobody holds the write lock
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert _keys(path) == ["kept"]
