"""Fixtures shared by every test folder: real PostgreSQL databases, no Docker.

A session fixture creates one template database (named with the pid) and migrates it with the
real ``PostgresStore.migrate``; each test that asks for ``pg_url`` gets its own clone
(``CREATE DATABASE … TEMPLATE …``), dropped afterwards. Locally a missing server skips those
tests with a visible reason; with ``CI=true`` it fails them.

``$IDEAMINE_TEST_PG`` overrides the server URL (default
``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from ideamine.clock import Clock
from ideamine.stores.postgres import PostgresStore
from ideamine.stores.sqlite import SqliteStore

PG_ENV = "IDEAMINE_TEST_PG"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Tests never wait the production minute for a server that is gone.
TEST_RETRY_SECONDS = 15.0

AnyStore = SqliteStore | PostgresStore

# Every statement that inserts a task or changes its status or error must stamp `revision`
# (migration 8 dropped the triggers that used to): in the tests, each SQLite store's own
# connection gets temporary guards that fail such a write unless it raises the stamp. A
# hand edit through another connection (tests that tamper with rows) is not guarded.
_STAMP_GUARDS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS guard_task_insert_stamped BEFORE INSERT ON main.tasks "
    "WHEN NEW.revision <= 0 "
    "BEGIN SELECT RAISE(ABORT, 'a task inserted without its revision stamp'); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS guard_task_change_stamped "
    "BEFORE UPDATE OF status, error ON main.tasks WHEN NEW.revision <= OLD.revision "
    "BEGIN SELECT RAISE(ABORT, 'a task status or error written without a new revision'); END",
)
_unguarded_migrate = SqliteStore._migrate

# The suite's default test timeout (pyproject: 15 minutes) is for tests that run the shipped
# pipeline and its real tools; they say so with a marker of their own. A test here that waits
# on something that never comes (an event nobody sets) fails in minutes, not fifteen: the
# slowest of these folders' tests took 14 s on a busy 2-core machine.
_QUICK_FOLDERS = ("unit", "integration", "conformance")
QUICK_TIMEOUT_SECONDS = 180.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give the tests of ``_QUICK_FOLDERS`` without a timeout marker a shorter timeout."""
    here = Path(__file__).parent
    quick = [here / folder for folder in _QUICK_FOLDERS]
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        if any(folder in item.path.parents for folder in quick):
            item.add_marker(pytest.mark.timeout(QUICK_TIMEOUT_SECONDS))


def _guarded_migrate(self: SqliteStore) -> int:
    applied = _unguarded_migrate(self)
    with self._lock:
        connection = self._connect()
        for guard in _STAMP_GUARDS:
            connection.execute(guard)
    return applied


SqliteStore._migrate = _guarded_migrate  # type: ignore[method-assign]

# A shell starts a background job (`cmd &` in a script) with SIGINT ignored, and children
# inherit an ignored signal: the tests that stop `ideamine` with SIGINT (Ctrl-C) would find it
# ignored and the command running to its end. Handled here, it is back at its default in
# every process these tests start (a handler, unlike SIG_IGN, does not survive exec).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pg_base_url() -> str:
    return os.environ.get(PG_ENV) or DEFAULT_PG


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _shown(url: str) -> str:
    """The URL without a password, for skip and fail messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PgServer:
    """The test server: creates, clones and drops databases over an admin connection."""

    def __init__(self, base_url: str, template: str) -> None:
        self.base_url = base_url
        self.template = template
        self._names = itertools.count(1)

    def url(self, name: str) -> str:
        return with_database(self.base_url, name)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A fresh autocommit connection to the base database (close it after use)."""
        return psycopg.connect(self.base_url, autocommit=True, connect_timeout=5)

    def new_name(self, kind: str = "test") -> str:
        return f"ideamine_{kind}_{os.getpid()}_{next(self._names)}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create ``name`` (empty, or a clone of ``template``); returns its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self.admin() as connection:
            connection.execute(statement)
        return self.url(name)

    def terminate(self, name: str) -> int:
        """Terminate every backend connected to ``name``; returns how many."""
        with self.admin() as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def drop_database(self, name: str) -> None:
        self.terminate(name)
        with self.admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def _migrate(url: str) -> int:
    store = PostgresStore(url, retry_seconds=TEST_RETRY_SECONDS)
    try:
        return await store.migrate()
    finally:
        await store.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The reachable test server with a migrated template database (dropped at session end)."""
    base = pg_base_url()
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = f"PostgreSQL not reachable at {_shown(base)}: {first}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run; set ${PG_ENV})")
        pytest.skip(reason)
    server = PgServer(base, f"ideamine_tmpl_{os.getpid()}")
    server.drop_database(server.template)  # a leftover of a crashed session with our pid
    server.create_database(server.template)
    try:
        asyncio.run(_migrate(server.url(server.template)))
        yield server
    finally:
        server.drop_database(server.template)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[Callable[..., str]]:
    """Make databases for this test: ``pg_database()`` clones the migrated template,
    ``pg_database(empty=True)`` is a fresh empty one. All are dropped afterwards."""
    made: list[str] = []

    def make(*, empty: bool = False) -> str:
        name = pg_server.new_name("empty" if empty else "test")
        made.append(name)
        return pg_server.create_database(name, template=None if empty else pg_server.template)

    yield make
    for name in made:
        pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_database: Callable[..., str]) -> str:
    """A migrated PostgreSQL database of this test's own (a clone of the session template)."""
    return pg_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store reference for each dialect: a SQLite file path or a cloned PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "ideamine.db")
    url = request.getfixturevalue("pg_url")
    assert isinstance(url, str)
    return url


def is_postgres(reference: str) -> bool:
    return reference.startswith(POSTGRES_SCHEMES)


def build_store(reference: str, clock: Clock | None = None) -> AnyStore:
    """An unopened store of the right dialect for ``reference`` (call ``migrate`` next)."""
    if is_postgres(reference):
        return PostgresStore(reference, clock, retry_seconds=TEST_RETRY_SECONDS)
    return SqliteStore(reference, clock)


@asynccontextmanager
async def _opened(reference: str, clock: Clock | None = None) -> AsyncIterator[AnyStore]:
    store: AnyStore
    if clock is None:
        # The product's own entry point: both dialects, migrated.
        from ideamine.service import open_store  # imported late: heavy, rarely used

        opened = await open_store(reference)
        assert isinstance(opened, SqliteStore | PostgresStore)
        store = opened
    else:
        store = build_store(reference, clock)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def open_test_store() -> Callable[..., AbstractAsyncContextManager[AnyStore]]:
    """``async with open_test_store(ref, clock) as store:`` a migrated store, closed after."""
    return _opened


@pytest.fixture
def make_store() -> Callable[..., AnyStore]:
    """``make_store(ref, clock=None)``: an unopened store of the right dialect."""
    return build_store
