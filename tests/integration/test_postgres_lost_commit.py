"""A PostgreSQL write whose connection is lost around its ``COMMIT`` (``stores.lostcommit``),
on the real server behind a TCP proxy that loses exactly what each test names: the write is
carried out once, never twice and never not at all, and the caller gets its result."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from tests.support.records import new_run
from tests.support.tcp_proxy import TcpProxy

from ideamine.engine.states import RunStatus
from ideamine.errors import RetriedWriteError, StoreError
from ideamine.stores import postgres
from ideamine.stores import queries as q
from ideamine.stores.ledger import verify_chain
from ideamine.stores.lostcommit import Fate, Sent
from ideamine.stores.postgres import PostgresStore, _connection_lost
from ideamine.stores.records import EventDraft

AT = "2026-11-27T00:00:00Z"


class _Attempts:
    """A transaction's work, how many times the store ran it, and the fault its first
    attempt's COMMIT meets (``fault(proxy)``, once the transaction's id is known)."""

    def __init__(
        self, proxy: TcpProxy, write: Callable[[q.Db], object], fault: Callable[[TcpProxy], None]
    ) -> None:
        self.count = 0
        self._proxy = proxy
        self._write = write
        self._fault = fault

    def work(self, db: q.Db) -> object:
        self.count += 1
        value = self._write(db)
        if self.count == 1:
            assert isinstance(db, postgres._Db)
            db.sent(value)  # the store's question before COMMIT, asked now: the fault meets COMMIT
            self._fault(self._proxy)
        return value


def _reply_lost(proxy: TcpProxy) -> None:
    """The COMMIT reaches the server; its reply is swallowed, then the connection is reset."""
    proxy.silence_replies()
    threading.Timer(0.5, proxy.reset).start()


def _commit_unread(proxy: TcpProxy) -> None:
    """The COMMIT never reaches the server, whose session stays open (idle in transaction)
    after the client's connection is reset."""
    proxy.blackhole()
    threading.Timer(0.5, proxy.strand).start()


def _through_proxy(
    pg_url: str, caplog: pytest.LogCaptureFixture, test: Callable[[PostgresStore, TcpProxy], Any]
) -> None:
    """Run ``test`` with a store on ``pg_url`` reached through a TCP proxy, holding run-1."""
    target = urlsplit(pg_url)

    async def body(proxy: TcpProxy) -> None:
        store = PostgresStore(proxy.url(pg_url), retry_seconds=30)
        try:
            await store.migrate()
            await store.create_run(new_run())
            await test(store, proxy)
        finally:
            await store.close()

    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        with caplog.at_level(logging.WARNING):  # the pool warns about the lost connection
            asyncio.run(body(proxy))
        assert proxy.dropped >= 1, "the fault never hit the connection"


def _rows(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return [tuple(row) for row in connection.execute(statement).fetchall()]


def _start_intake(db: q.Db) -> str:
    q.insert_phase(db, "run-1", "intake", 1, AT)
    return "intake started"


def test_a_write_whose_commit_reply_is_lost_is_done_once_and_returns_its_result(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The COMMIT reaches the server and its reply is lost: the store asks the server what
    became of the transaction (committed), and returns what the lost attempt computed
    without running the work again. The row is stored once; nothing is counted as retried."""

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        write = _Attempts(proxy, _start_intake, _reply_lost)
        assert await store.run_in_transaction(write.work) == "intake started"
        assert write.count == 1 and store.retried_writes == 0
        # the same insert again, nothing lost: a plain integrity error, not a retried write
        with pytest.raises(StoreError, match="integrity constraint failed") as plain:
            await store.run_in_transaction(write.work)
        assert not isinstance(plain.value, RetriedWriteError)

    _through_proxy(pg_url, caplog, test)
    assert _rows(pg_url, "SELECT count(*) FROM phases WHERE run_id = 'run-1'") == [(1,)]
    assert "the server says its transaction committed" in caplog.text


def test_an_append_whose_commit_reply_is_lost_is_appended_once(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A pure append (no unique key a retry could trip on) with its reply lost: one event,
    not two, and the chain verifies."""

    def append(db: q.Db) -> None:
        q.append_event(db, "run-1", EventDraft(type="run.progress", payload={"n": 1}), AT)

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        write = _Attempts(proxy, append, _reply_lost)
        await store.run_in_transaction(write.work)
        assert write.count == 1
        events = await store.events("run-1")
        assert [e.type for e in events].count("run.progress") == 1
        assert verify_chain(events).ok

    _through_proxy(pg_url, caplog, test)


def test_a_commit_the_server_never_read_is_aborted_and_the_write_done_again(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The COMMIT is lost on its way and the server's session stays open, holding the
    transaction (in progress): the store ends that session (which aborts it), then runs the
    work again. Stored once, nothing counted as retried, and no session is left behind."""

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        write = _Attempts(proxy, _start_intake, _commit_unread)
        assert await store.run_in_transaction(write.work) == "intake started"
        assert write.count == 2 and store.retried_writes == 0

    _through_proxy(pg_url, caplog, test)
    assert _rows(pg_url, "SELECT count(*) FROM phases WHERE run_id = 'run-1'") == [(1,)]
    assert "the server says its transaction aborted" in caplog.text
    database = urlsplit(pg_url).path.lstrip("/")
    idle = _rows(
        pg_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '"
        + database
        + "' AND state = 'idle in transaction'",
    )
    assert idle == [(0,)]


def test_a_write_the_server_cannot_account_for_is_retried_and_counted(
    pg_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the server not know the lost transaction (``pg_xact_status`` is NULL only for
    ids older than it keeps, which a retry window never reaches, so the answer is replaced
    here after the real question), the write is run again as before: a unique violation then
    reports the rows stored (``RetriedWriteError``), a success is counted in
    ``retried_writes`` so the runner hands back tasks the lost attempt may have claimed."""
    real_settle = postgres.settle

    def unknown(connection: psycopg.Connection[Any], sent: Sent[Any], deadline: float) -> Fate:
        real_settle(connection, sent, deadline)
        return Fate.UNKNOWN

    monkeypatch.setattr(postgres, "settle", unknown)

    def touch_run(db: q.Db) -> None:
        q.update_run(db, "run-1", RunStatus.CREATED, AT, error=None, driver=None)

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        start = _Attempts(proxy, _start_intake, _reply_lost)
        with pytest.raises(RetriedWriteError, match="already stored"):
            await store.run_in_transaction(start.work)
        assert start.count == 2 and store.retried_writes == 1
        touch = _Attempts(proxy, touch_run, _reply_lost)
        await store.run_in_transaction(touch.work)
        assert touch.count == 2 and store.retried_writes == 2
        await store.get_run("run-1")  # reads are never counted
        assert store.retried_writes == 2

    _through_proxy(pg_url, caplog, test)


def test_a_transaction_that_wrote_nothing_is_simply_run_again(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No transaction id was assigned (it wrote nothing), so there is nothing to ask about."""

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        look = _Attempts(proxy, lambda db: len(q.select_phases(db, "run-1")), _reply_lost)
        assert await store.run_in_transaction(look.work) == 0
        assert look.count == 2 and store.retried_writes == 0

    _through_proxy(pg_url, caplog, test)
    assert "the server says" not in caplog.text


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),  # 57P01
        (psycopg.errors.ConnectionFailure("connection failure"), True),  # 08006
        (PoolTimeout("couldn't get a connection after 10.00 sec"), False),  # none was had
        (psycopg.errors.QueryCanceled("canceling statement"), False),  # the server answered
        (psycopg.errors.LockNotAvailable("could not obtain lock"), False),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
    ],
)
def test_only_a_cut_connection_can_have_committed_unseen(error: Exception, lost: bool) -> None:
    """Which errors at a COMMIT make the store ask the server what became of it."""
    assert _connection_lost(error) is lost
