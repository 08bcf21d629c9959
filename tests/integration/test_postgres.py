"""PostgreSQL-only behaviour of the store: SKIP LOCKED races between separate pools, the per-run
ledger lock, migrations on real databases, lost connections, an unreachable server and
password redaction (lost COMMIT replies: ``test_postgres_lost_commit.py``). Each test gets its
own database cloned from the migrated template."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ideamine.engine.states import RunStatus
from ideamine.errors import (
    SchemaTooNewError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from ideamine.stores.ledger import verify_chain
from ideamine.stores.postgres import PostgresStore
from ideamine.stores.records import EventDraft, NewRun, NewTask
from ideamine.stores.schema import migrations
from ideamine.stores.sqlite import SqliteStore

FAKE_PASSWORD = "s3cret-Pa55word-do-not-show"


def _run(run_id: str = "run-1") -> NewRun:
    return NewRun(
        id=run_id,
        idea="a tool that turns ideas into products",
        constraints={},
        source="cli",
        config_dir=None,
        manifest={},
        manifest_hash="cd" * 32,
    )


def _rows(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def _columns(url: str) -> list[tuple[Any, ...]]:
    return _rows(
        url,
        "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
        "column_default, is_identity FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )


def _tables(url: str) -> set[str]:
    return {
        str(name)
        for (name,) in _rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }


async def _with_stores(url: str, count: int) -> list[PostgresStore]:
    stores = [PostgresStore(url, retry_seconds=15) for _ in range(count)]
    for store in stores:
        await store.migrate()
    return stores


async def _close_all(stores: list[PostgresStore]) -> None:
    for store in stores:
        await store.close()


def test_a_task_write_in_a_read_is_refused_and_a_transaction_stamps_one_id(pg_url: str) -> None:
    """Reads run in autocommit mode, where each statement is a transaction of its own: a task
    write there could not be stamped with its transaction's id, so it is refused (SQLite's
    reads refuse every write). Within a transaction every stamp is that transaction's id."""

    async def body() -> None:
        [store] = await _with_stores(pg_url, 1)
        try:
            with pytest.raises(StoreError, match="a read tried to write tasks"):
                await store.run_read(lambda db: db.next_task_revision())
            first, again, xid = await store.run_in_transaction(
                lambda db: (
                    db.next_task_revision(),
                    db.next_task_revision(),
                    int(str(db.query("SELECT pg_current_xact_id()::text")[0][0])),
                )
            )
            assert first == again == xid
            assert await store.run_in_transaction(lambda db: db.next_task_revision()) > first
        finally:
            await store.close()

    asyncio.run(body())


# -- races between processes ----------------------------------------------------------------


def test_concurrent_claimers_never_double_claim_and_together_claim_everything(
    pg_url: str,
) -> None:
    """Five stores (five pools, like five worker processes) race for 50 pending tasks."""

    async def body() -> None:
        stores = await _with_stores(pg_url, 5)
        try:
            setup = stores[0]
            await setup.create_run(_run())
            await setup.set_run_status("run-1", RunStatus.RUNNING, EventDraft(type="run.started"))
            await setup.start_phase("run-1", "ideation", 1, EventDraft(type="phase.started"))
            tasks = [
                NewTask(id=f"t-{n:02}", key=f"{n:02}", agent="writer", iteration=0)
                for n in range(50)
            ]
            await setup.create_tasks("run-1", "ideation", 1, tasks, EventDraft(type="fanned"))

            async def worker(store: PostgresStore, owner: str) -> list[tuple[str, str]]:
                got: list[tuple[str, str]] = []
                while claimed := await store.claim_tasks(
                    None, owner=owner, now=time.time(), limit=3, lease_seconds=60
                ):
                    got += [(c.task.id, c.lease_token) for c in claimed]
                return got

            results = await asyncio.gather(
                *(worker(store, f"w{n}") for n, store in enumerate(stores))
            )
            claims = [claim for result in results for claim in result]
            ids = [task_id for task_id, _ in claims]
            assert len(ids) == len(set(ids)), "a task was claimed twice"
            assert sorted(ids) == sorted(task.id for task in tasks)
            assert len({token for _, token in claims}) == 50
            events = await setup.events("run-1", limit=10_000)
            assert verify_chain(events).ok
            assert sum(1 for e in events if e.type == "task.started") == 50
        finally:
            await _close_all(stores)

    asyncio.run(body())


def test_concurrent_appends_from_several_stores_keep_one_valid_chain(pg_url: str) -> None:
    """The per-run advisory lock serialises appends: one chain, ids strictly increasing."""

    async def body() -> None:
        stores = await _with_stores(pg_url, 4)
        try:
            await stores[0].create_run(_run())

            async def writer(store: PostgresStore, n: int) -> None:
                for i in range(25):
                    draft = EventDraft(type="run.progress", payload={"writer": n, "i": i})
                    await store.append_event("run-1", draft)

            await asyncio.gather(*(writer(store, n) for n, store in enumerate(stores)))

            events = await stores[1].events("run-1", limit=10_000)
            assert len(events) == 1 + 4 * 25
            report = verify_chain(events)
            assert report.ok, report
            ids = [event.id for event in events]
            assert all(a < b for a, b in itertools.pairwise(ids))
        finally:
            await _close_all(stores)

    asyncio.run(body())


# -- migrations -----------------------------------------------------------------------------


def test_replaying_the_migrations_on_an_empty_database_gives_the_template_schema(
    pg_url: str, pg_database: Callable[..., str]
) -> None:
    empty = pg_database(empty=True)
    latest = migrations("postgresql")[-1][0]

    async def migrate_twice() -> tuple[int, int]:
        store = PostgresStore(empty, retry_seconds=15)
        try:
            return await store.migrate(), await store.migrate()
        finally:
            await store.close()

    assert asyncio.run(migrate_twice()) == (latest, latest)
    assert _columns(empty) == _columns(pg_url)
    assert _rows(empty, "SELECT version FROM schema_version ORDER BY version") == [
        (version,) for version, _ in migrations("postgresql")
    ]


def test_concurrent_first_migrations_apply_once(pg_database: Callable[..., str]) -> None:
    """Workers starting together on an empty database: the migration lock lets one migrate."""
    empty = pg_database(empty=True)

    async def body() -> list[int]:
        stores = [PostgresStore(empty, retry_seconds=15) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(store.migrate() for store in stores)))
        finally:
            await _close_all(stores)

    latest = migrations("postgresql")[-1][0]
    assert asyncio.run(body()) == [latest] * 4
    assert len(_rows(empty, "SELECT version FROM schema_version")) == latest


def test_both_dialects_declare_the_same_tables_and_columns(pg_url: str, tmp_path: Path) -> None:
    """Invariant 8 at the schema level: the migrations of both dialects agree on names."""

    async def migrate_sqlite() -> None:
        store = SqliteStore(tmp_path / "ideamine.db")
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate_sqlite())
    with closing(sqlite3.connect(tmp_path / "ideamine.db")) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE 'knowledge_search%'"  # FTS5 (an index on PostgreSQL)
                "AND name != 'task_revision'"  # the highest stamp (PostgreSQL stamps xids)
            )
        ]
        in_sqlite = {
            (table, str(column[1]))
            for table in tables
            for column in connection.execute(f"PRAGMA table_info({table})")
        }
    base_tables = {
        str(name)
        for (name,) in _rows(
            pg_url,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
    }
    in_postgres = {
        (str(table), str(column))
        for table, column, *_ in _columns(pg_url)
        if table in base_tables  # PostgreSQL may add views (STYLE: "Stores")
    }
    assert in_postgres == in_sqlite


def test_a_database_newer_than_the_code_is_schema_too_new(pg_url: str) -> None:
    latest = migrations("postgresql")[-1][0]
    _rows(pg_url, "INSERT INTO schema_version (version) VALUES (%s)", (latest + 5,))
    before = _columns(pg_url)

    async def body() -> None:
        store = PostgresStore(pg_url, retry_seconds=15)
        try:
            with pytest.raises(SchemaTooNewError) as caught:
                await store.migrate()
        finally:
            await store.close()
        assert (caught.value.found, caught.value.known) == (latest + 5, latest)
        assert caught.value.hint

    asyncio.run(body())
    assert _columns(pg_url) == before


def test_a_database_with_foreign_tables_is_store_corrupt_and_left_untouched(
    pg_database: Callable[..., str],
) -> None:
    foreign = pg_database(empty=True)
    _rows(foreign, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    _rows(foreign, "INSERT INTO customers VALUES (1, 'Ada')")

    async def body() -> None:
        store = PostgresStore(foreign, retry_seconds=15)
        try:
            with pytest.raises(StoreCorruptError) as caught:
                await store.migrate()
        finally:
            await store.close()
        assert "customers" in str(caught.value)
        assert caught.value.hint

    asyncio.run(body())
    assert _tables(foreign) == {"customers"}
    assert _rows(foreign, "SELECT id, name FROM customers") == [(1, "Ada")]


# -- lost connections and an unreachable server ---------------------------------------------


def test_writes_survive_terminated_backends_and_the_chain_verifies(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """For ~3 s another connection keeps terminating the store's backends; every write still
    succeeds (the store retries whole transactions with backoff) and the ledger verifies."""
    database = pg_url.rsplit("/", 1)[1]
    admin_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    kills: list[int] = []
    done = threading.Event()

    def killer() -> None:
        started = time.monotonic()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            while time.monotonic() - started < 3.0:
                rows = connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                kills.append(sum(1 for (ok,) in rows if ok))
                time.sleep(0.15)
        done.set()

    async def body() -> None:
        store = PostgresStore(pg_url, retry_seconds=30)
        try:
            await store.migrate()
            await store.create_run(_run())
            thread = threading.Thread(target=killer)
            thread.start()
            written = 0
            try:
                while not done.is_set() or written < 10:
                    draft = EventDraft(type="run.progress", payload={"n": written})
                    await store.append_event("run-1", draft)  # must not raise
                    written += 1
            finally:
                thread.join()
            events = await store.events("run-1", limit=100_000)
        finally:
            await store.close()
        report = verify_chain(events)
        assert report.ok, report
        seen = {event.payload["n"] for event in events if event.type == "run.progress"}
        assert seen == set(range(written))
        assert sum(kills) > 0, "the test never hit a backend"

    with caplog.at_level(logging.ERROR):  # the pool warns about every lost connection
        asyncio.run(body())


def _fake_password_urls(port: int) -> list[str]:
    return [
        f"postgresql://ideamine:{FAKE_PASSWORD}@127.0.0.1:{port}/ideamine",
        f"postgresql://ideamine@127.0.0.1:{port}/ideamine?password={FAKE_PASSWORD}",
    ]


@pytest.mark.parametrize("url", _fake_password_urls(1), ids=["userinfo", "query"])
def test_repr_never_shows_the_password(url: str) -> None:
    store = PostgresStore(url, retry_seconds=1)
    assert FAKE_PASSWORD not in repr(store)
    assert "127.0.0.1" in repr(store)


def test_an_unreachable_server_is_store_unavailable_within_retry_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on port 1: the store gives up after its ``retry_seconds`` with a hint,
    and no message, hint, repr or log line shows the password."""
    url = _fake_password_urls(1)[0]

    async def body() -> tuple[StoreUnavailableError, float]:
        store = PostgresStore(url, retry_seconds=1)
        started = time.monotonic()
        try:
            with pytest.raises(StoreUnavailableError) as caught:
                await store.create_run(_run())
            return caught.value, time.monotonic() - started
        finally:
            await store.close()

    with caplog.at_level(logging.DEBUG):
        error, elapsed = asyncio.run(body())

    assert error.hint
    assert isinstance(error.__cause__, Exception)
    for shown in (str(error), repr(error), error.hint, caplog.text):
        assert FAKE_PASSWORD not in shown
    assert "127.0.0.1" in str(error)
    assert elapsed < 1 + 2.5, f"gave up after {elapsed:.1f} s, not within retry_seconds=1"


def test_a_failed_read_leaves_its_connection_transactional(pg_url: str) -> None:
    """Reads run in autocommit mode; the connection goes back to the pool as it came, so a
    write on it is still one transaction: a failing statement undoes the ones before it."""

    async def body() -> list[tuple[Any, ...]]:
        store = PostgresStore(pg_url, pool_size=1)  # one connection: the read's is the write's
        try:
            await store.create_run(_run())
            await store.set_run_status("run-1", RunStatus.RUNNING, EventDraft(type="run.started"))
            await store.start_phase("run-1", "p", 1, EventDraft(type="phase.started", phase="p"))
            _rows(pg_url, "UPDATE runs SET constraints = '{broken' WHERE id = 'run-1'")
            with pytest.raises(StoreCorruptError):
                await store.get_run("run-1")  # fails inside the read
            tasks = [NewTask(id="run-1.p.1.a", key="a", agent="A", iteration=1)]
            unencodable = EventDraft(type="x", phase="p", payload={"at": object()})
            with pytest.raises(TypeError):  # after the insert, in the same transaction
                await store.create_tasks("run-1", "p", 1, tasks, unencodable)
        finally:
            await store.close()
        return _rows(pg_url, "SELECT id FROM tasks WHERE run_id = 'run-1'")

    assert asyncio.run(body()) == []  # the insert was undone with the failed event
