"""A PostgreSQL write whose connection is lost around its ``COMMIT`` (``stores.lostcommit``),
on the real server behind a TCP proxy that loses exactly what each test names: the write is
carried out once, never twice and never not at all, and the caller gets its result."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from tests.support.records import new_run
from tests.support.tcp_proxy import TcpProxy

from ideamine.engine.states import RunStatus
from ideamine.errors import RetriedWriteError, RowsExistError, StoreError, StoreUnavailableError
from ideamine.stores import postgres
from ideamine.stores import queries as q
from ideamine.stores.ledger import verify_chain
from ideamine.stores.lostcommit import Fate, Sent
from ideamine.stores.postgres import PostgresStore, _connection_lost
from ideamine.stores.records import EventDraft

AT = "2026-11-27T00:00:00Z"


class _Attempts:
    """A transaction's work and how many times the store ran it. Its first attempt's COMMIT
    meets ``fault(proxy)``: fired once the store has asked for the transaction's id (the
    last thing before COMMIT, ``_Db.sent``), so the fault hits the COMMIT itself."""

    def __init__(
        self, proxy: TcpProxy, write: Callable[[q.Db], object], fault: Callable[[TcpProxy], None]
    ) -> None:
        self.count = 0
        self._proxy = proxy
        self._write = write
        self._fault = fault

    def work(self, db: q.Db) -> object:
        self.count += 1
        if self.count == 1:
            _ARMED[threading.get_ident()] = lambda: self._fault(self._proxy)
        return self._write(db)


_ARMED: dict[int, Callable[[], None]] = {}  # thread → the fault its next `_Db.sent` fires


@pytest.fixture(autouse=True)
def _fault_at_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_Db.sent`` fires the fault armed on its thread, after its own question."""
    real = postgres._Db.sent

    def sent(db: postgres._Db, value: object) -> Sent[object] | None:
        noted = real(db, value)
        fault = _ARMED.pop(threading.get_ident(), None)
        if fault is not None:
            fault()
        return noted

    monkeypatch.setattr(postgres._Db, "sent", sent)
    _ARMED.clear()


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
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
    test: Callable[[PostgresStore, TcpProxy], Any],
    *,
    retry_seconds: float = 30,
) -> None:
    """Run ``test`` with a store on ``pg_url`` reached through a TCP proxy, holding run-1."""
    target = urlsplit(pg_url)

    async def body(proxy: TcpProxy) -> None:
        store = PostgresStore(proxy.url(pg_url), retry_seconds=retry_seconds)
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
        assert isinstance(plain.value, RowsExistError)  # the runner reads the run again

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
    """No transaction id was assigned (it wrote nothing), so there is nothing to ask about:
    its COMMIT's lost reply costs a second run of the work, nothing more."""

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        look = _Attempts(proxy, lambda db: len(q.select_phases(db, "run-1")), _reply_lost)
        assert await store.run_in_transaction(look.work) == 0
        assert look.count == 2 and store.retried_writes == 0

    _through_proxy(pg_url, caplog, test)
    assert "the server says" not in caplog.text
    assert "PostgreSQL unavailable" in caplog.text  # the lost reply was met, and retried


def test_a_reply_lost_past_the_retry_window_is_still_asked_about(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection is found lost only after the retry window (2 s here) has passed: the
    store still asks what became of the COMMIT (for up to the window again, at most 10 s)
    rather than report the server unreachable for a write that took effect."""

    def late(proxy: TcpProxy) -> None:
        proxy.silence_replies()
        threading.Timer(3.0, proxy.reset).start()

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        write = _Attempts(proxy, _start_intake, late)
        assert await store.run_in_transaction(write.work) == "intake started"
        assert write.count == 1

    _through_proxy(pg_url, caplog, test, retry_seconds=2)
    assert _rows(pg_url, "SELECT count(*) FROM phases WHERE run_id = 'run-1'") == [(1,)]
    assert "the server says its transaction committed" in caplog.text


def test_a_lost_commit_nobody_can_ask_about_is_reported_unknown(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The reply is lost and the server stays unreachable: the caller is told that the
    write's outcome is unknown and to look before doing it again, not just "unreachable"."""

    def cut(proxy: TcpProxy) -> None:
        proxy.silence_replies()
        threading.Timer(0.5, proxy.refuse).start()

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        write = _Attempts(proxy, _start_intake, cut)
        with pytest.raises(StoreUnavailableError, match="whether it took effect is unknown") as e:
            await store.run_in_transaction(write.work)
        assert "look" in e.value.hint and write.count == 1
        proxy.accept()  # let the store close

    _through_proxy(pg_url, caplog, test, retry_seconds=1)


def test_a_conflict_at_the_end_of_the_window_is_reported_as_a_conflict(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server broke a deadlock by rolling the transaction back, every time: the error
    says so (psycopg's DeadlockDetected is an OperationalError: not "unreachable")."""

    def deadlocked(db: q.Db) -> None:
        db.query("SELECT 1")
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        with pytest.raises(StoreError, match="deadlock detected") as raised:
            await store.run_in_transaction(deadlocked)
        assert not isinstance(raised.value, StoreUnavailableError)
        proxy.reset()  # the helper checks that the proxy saw a fault

    _through_proxy(pg_url, caplog, test, retry_seconds=0.5)
    assert "transaction conflict (deadlock detected)" in caplog.text


def test_a_session_lost_mid_transaction_is_ended_so_the_retry_does_not_wait(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection is lost after an INSERT and before COMMIT, and the server keeps the
    session open, inside its transaction, holding the new row's key: the retry's INSERT of
    the same key would wait for it (until the server's 30 s idle-in-transaction timeout).
    The store ends that session first, so the retry goes through at once; stored once.
    Another client's session, idle in its own transaction, is left alone."""

    async def test(store: PostgresStore, proxy: TcpProxy) -> None:
        attempts: list[int] = []

        def insert_then_lose(db: q.Db) -> str:
            value = _start_intake(db)
            attempts.append(1)
            if len(attempts) == 1:
                proxy.blackhole()  # the next statement goes nowhere ...
                threading.Timer(0.5, proxy.strand).start()  # ... and the client is cut off
                db.query("SELECT 1")
            return value

        with psycopg.connect(pg_url) as bystander:  # another client, idle in a transaction
            bystander.execute("SELECT 1")
            started = time.monotonic()
            assert await store.run_in_transaction(insert_then_lose) == "intake started"
            assert time.monotonic() - started < 10  # not the 30 s the server would take
            assert len(attempts) == 2
            assert bystander.execute("SELECT 2").fetchone() == (2,)  # left alone

    _through_proxy(pg_url, caplog, test)
    assert _rows(pg_url, "SELECT count(*) FROM phases WHERE run_id = 'run-1'") == [(1,)]
    assert "ended the server session a lost connection left inside a transaction" in caplog.text


def test_sessions_are_set_to_notice_a_dead_peer(pg_url: str) -> None:
    """Keepalives and a TCP user timeout (a silent network cut is noticed in ~30 s, inside
    the retry window; client-side, so a pooler sees no startup parameter it could refuse),
    and an idle-in-transaction timeout set on the session (the server ends a session whose
    client vanished mid-transaction, freeing its locks); a URL's own settings win."""

    async def settings(url: str) -> tuple[object, str]:
        store = PostgresStore(url)
        try:
            shown = await store.run_in_transaction(
                lambda db: db.query("SHOW idle_in_transaction_session_timeout")[0][0]
            )
            return shown, store._conninfo
        finally:
            await store.close()

    shown, conninfo = asyncio.run(settings(pg_url + "?keepalives_idle=7"))
    assert shown == "30s"
    assert "keepalives_idle=7" in conninfo and "tcp_user_timeout=30000" in conninfo
    assert "options" not in conninfo
    own = "?options=-c%20idle_in_transaction_session_timeout%3D5s"
    shown, _ = asyncio.run(settings(pg_url + own))
    assert shown == "5s"


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
