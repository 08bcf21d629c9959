"""The PostgreSQL store: the same SQL as SQLite, a connection pool, and the three things that
differ: claiming with ``FOR UPDATE SKIP LOCKED``, a per-run advisory lock around ledger
appends, and wake-ups with ``LISTEN``/``NOTIFY``.

Connection failures (a restarted server, terminated backends, a cut network) are retried with
backoff for ``retry_seconds`` before the store reports itself unavailable; a transaction is
always retried whole, never resumed half-way, once what the lost attempt left is settled: a
``COMMIT`` whose reply was lost is asked about, a session left inside a transaction is ended
(``stores.lostcommit``). Behind PgBouncer in transaction mode a connection has no session of
its own: the store then prepares no statement and ends no session (``_configure``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ideamine.clock import Clock, SystemClock
from ideamine.errors import (
    FinishingRefusedError,
    RetriedWriteError,
    RowsExistError,
    SchemaTooNewError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from ideamine.stores import queries as q
from ideamine.stores.ahead import behind
from ideamine.stores.lostcommit import (
    Fate,
    Sent,
    Session,
    end_stranded,
    limit_idle_transactions,
    session_of,
    settle,
)
from ideamine.stores.manifests import Manifests
from ideamine.stores.schema import migrations, split_statements
from ideamine.stores.sqlstore import SqlStore

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")
CHANNEL = "ideamine_work"
MIGRATION_LOCK = 7_311_947  # an arbitrary, fixed advisory lock key for migrations
# A connection attempt nobody answers (accepted by a middlebox that lost its upstream, or
# sent into a cut network) otherwise waits psycopg's default 130 s: longer than the whole
# retry window, with the pool's few connecting threads stuck in it, so a worker could not
# reconnect after the network came back. Kept well under ``retry_seconds`` so attempts
# give up and are made afresh; a ``connect_timeout`` in the URL wins.
CONNECT_TIMEOUT_SECONDS = 10
# A transaction's statements follow each other at once (no waiting on anything in between), so
# a session idle in a transaction this long has lost its client; ending it frees its locks.
IDLE_IN_TRANSACTION_MS = 30_000


class _Db:
    """``queries.Db`` over a psycopg connection inside an open transaction."""

    dialect = "postgresql"

    def __init__(
        self, connection: psycopg.Connection[tuple[object, ...]], manifests: Manifests
    ) -> None:
        self._connection = connection
        self.manifests = manifests
        self._notified: set[str] = set()
        self._locked: set[str] = set()  # runs whose advisory lock this transaction holds
        self._xid: int | None = None
        self.heads: dict[str, str] = {}

    def query(self, sql: str, params: Sequence[object] = ()) -> list[q.Row]:
        cursor = self._connection.execute(sql.replace("?", "%s"), tuple(params))
        return list(cursor.fetchall()) if cursor.description else []

    def query_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [tuple(row) for row in rows])

    def next_event_ids(self, count: int) -> list[int]:
        found = self._connection.execute(
            "SELECT nextval('events_id_seq') FROM generate_series(1, %s)", (count,)
        ).fetchall()
        return sorted(int(str(row[0])) for row in found)

    def next_task_revision(self) -> int:
        """This transaction's id (migrations 6 and 8): concurrent writers commit out of id
        order, which the change feed's cursor (a snapshot's xmin) allows for."""
        if self._connection.autocommit:  # a read (`_read`): every statement commits alone
            raise StoreError(
                "a read tried to write tasks (no transaction to stamp them with)",
                hint="this is a bug in IdeaMine: writes go through run_in_transaction",
            )
        if self._xid is None:
            row = self._connection.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None  # the function always returns a row
            self._xid = int(str(row[0]))
        return self._xid

    def sent(self, value: T) -> Sent[T] | None:
        """What to ask the server about should this transaction's COMMIT reply be lost
        (``lostcommit``); None when it wrote nothing (it has no transaction id)."""
        if self._xid is None:
            row = self._connection.execute(
                "SELECT pg_current_xact_id_if_assigned()::text::bigint"
            ).fetchone()
            if row is None or row[0] is None:
                return None
            self._xid = int(str(row[0]))
        return Sent(xid=self._xid, pid=self._connection.info.backend_pid, value=value)

    def lock_run(self, run_id: str) -> None:
        # Held until commit: appends to one run's chain happen one transaction at a time.
        if run_id not in self._locked:
            self._connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (run_id,)
            )
            self._locked.add(run_id)

    def notify(self, run_id: str) -> None:
        if run_id not in self._notified:
            self._notified.add(run_id)
            self._connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, run_id))


@dataclass(slots=True)
class _Lost(Generic[T]):
    """What a write's attempts that lost their connection left to settle (``_recover``)."""

    unsettled: Sent[T] | None = None  # a COMMIT sent on a connection lost before its reply
    stranded: Session | None = None  # a session whose connection was lost mid-transaction
    unknown: bool = False  # a lost COMMIT the server could not account for: a retry follows

    def note(self, sent: Sent[T] | None, session: Session | None) -> None:
        """An attempt lost its connection: after its COMMIT went out (``sent``), or in the
        middle of its transaction on ``session`` (None before it had a connection)."""
        if sent is not None:
            self.unsettled = sent
        elif session is not None:
            self.stranded = session


class PostgresStore(SqlStore):
    """``Store`` on a PostgreSQL database."""

    claim_lock = " FOR UPDATE OF t SKIP LOCKED"

    def __init__(
        self,
        url: str,
        clock: Clock | None = None,
        *,
        pool_size: int = 8,
        retry_seconds: float = 60.0,
    ) -> None:
        super().__init__(clock or SystemClock())
        self.url = url
        self.retry_seconds = retry_seconds
        self._retried_writes = 0
        self._counting = threading.Lock()  # transactions run on worker threads
        self._conninfo = _with_timeouts(url)
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            check=ConnectionPool.check_connection,
            configure=self._configure,
            kwargs={"autocommit": False},
            name="ideamine",
        )
        # each pooled connection's server session, to end it if the connection is lost
        # inside a transaction (``lostcommit.end_stranded``)
        self._sessions: weakref.WeakKeyDictionary[
            psycopg.Connection[tuple[object, ...]], Session
        ] = weakref.WeakKeyDictionary()
        self._listener: psycopg.Connection[tuple[object, ...]] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"PostgresStore({_redact(self.url)!r})"

    @property
    def retried_writes(self) -> int:
        return self._retried_writes

    # -- transactions ---------------------------------------------------------------------

    def _run(self, work: Callable[[q.Db], T], *, read: bool = False) -> T:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        lost: _Lost[T] = _Lost()
        while True:
            sent: Sent[T] | None = None
            session: Session | None = None
            try:
                self._open()
                wait = max(0.1, min(10.0, deadline - time.monotonic()))
                with self._pool.connection(timeout=wait) as connection:
                    committed = self._recover(connection, lost, deadline)
                    if committed is not None:
                        return committed.value  # done by the lost attempt: not again
                    if read:
                        return self._autocommitted(connection, work)
                    session = self._sessions.get(connection)
                    db = _Db(connection, self._manifests)
                    done = work(db)
                    sent = db.sent(done)  # None when it wrote nothing (nothing to lose)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                # the server rolled this transaction back to break a conflict: run it again
                self._pause(exc, delay, deadline, conflict=True)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if _connection_lost(exc):
                    lost.note(sent, session)
                self._pause(exc, delay, deadline, unsettled=lost.unsettled is not None)
                delay = min(delay * 2, 2.0)
            except (psycopg.errors.UniqueViolation, FinishingRefusedError) as exc:
                # rows to insert (or outputs to record first) found stored: when a lost
                # attempt may have committed, it did, or another process wrote them
                if lost.unknown:
                    self._count_retried_write()
                    raise RetriedWriteError(_first_line(exc)) from exc
                if isinstance(exc, FinishingRefusedError):
                    raise
                raise _translate(exc) from exc
            except psycopg.Error as exc:
                raise _translate(exc) from exc
            else:
                # committed (the block's end commits): counted if a lost attempt may have too
                if lost.unknown:
                    self._count_retried_write()
                return done

    def _recover(
        self, connection: psycopg.Connection[tuple[object, ...]], lost: _Lost[T], deadline: float
    ) -> Sent[T] | None:
        """Settle what earlier attempts of a write left (``lostcommit``) before it runs again:
        the attempt whose COMMIT reply was lost, if it committed (its value is the write's);
        else None, once the session of an attempt lost mid-transaction is ended."""
        if lost.unsettled is not None:
            fate = self._settle(connection, lost.unsettled, deadline + self._grace)
            if fate is Fate.COMMITTED:
                return lost.unsettled
            lost.unknown = lost.unknown or fate is Fate.UNKNOWN  # any unknown fate so far
            lost.unsettled = None
        if lost.stranded is not None:
            self._end_stranded(connection, lost.stranded)
            lost.stranded = None
        return None

    @property
    def _grace(self) -> float:
        """How long past the retry window the store keeps asking what became of a lost
        COMMIT (a caller told "unreachable" could otherwise do a committed write again)."""
        return min(10.0, self.retry_seconds)

    def _pause(
        self,
        exc: psycopg.Error | PoolTimeout,
        delay: float,
        deadline: float,
        *,
        conflict: bool = False,
        unsettled: bool = False,
    ) -> None:
        """Wait ``delay`` before a retry, or raise if that would pass ``deadline`` (plus the
        grace for asking about a lost COMMIT, when one is ``unsettled``)."""
        if time.monotonic() + delay > deadline + (self._grace if unsettled else 0.0):
            if conflict:
                raise _translate(exc) from exc
            if unsettled:
                raise StoreUnavailableError(
                    f"PostgreSQL at {_redact(self.url)} is unreachable ({_first_line(exc)}), "
                    "and a write's COMMIT was sent as the connection was lost: whether it "
                    "took effect is unknown",
                    hint="look (ideamine runs, ideamine status RUN) before doing it again",
                ) from exc
            raise StoreUnavailableError(
                f"PostgreSQL at {_redact(self.url)} is unreachable ({_first_line(exc)})",
                hint="check that the server runs and accepts connections, then retry",
            ) from exc
        what = "transaction conflict" if conflict else "PostgreSQL unavailable"
        log.warning("%s (%s); retrying in %.1f s", what, _first_line(exc), delay)
        time.sleep(delay)

    def _settle(
        self, connection: psycopg.Connection[tuple[object, ...]], sent: Sent[T], deadline: float
    ) -> Fate:
        """What became of ``sent`` (``lostcommit``), asked outside any transaction."""
        fate = self._autocommitted(connection, lambda _: settle(connection, sent, deadline))
        log.warning(
            "a write's COMMIT reply was lost; the server says its transaction %s", fate.value
        )
        return fate

    def _end_stranded(
        self, connection: psycopg.Connection[tuple[object, ...]], session: Session
    ) -> None:
        if self._autocommitted(connection, lambda _: end_stranded(connection, session)):
            log.warning(
                "ended the server session a lost connection left inside a transaction "
                "(process %d), so its locks do not hold up the retry",
                session.pid,
            )

    def _configure(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        """Note a new pooled connection's session (the pool's ``configure`` hook; one or two
        round trips per connection). A connection with no session of its own goes through a
        pooler in transaction mode (PgBouncer), where each transaction may run on another
        server session: it gets no session setting, and no server-side prepared statements
        (psycopg prepares a query run five times, and the next session would not know it)."""
        connection.autocommit = True
        try:
            session = session_of(connection)
            if session is not None:  # its own session: settings stay with this connection
                limit_idle_transactions(connection, IDLE_IN_TRANSACTION_MS)
        finally:
            connection.autocommit = False
        if session is None:
            connection.prepare_threshold = None
        else:
            self._sessions[connection] = session

    def _count_retried_write(self) -> None:
        with self._counting:
            self._retried_writes += 1

    def _autocommitted(
        self, connection: psycopg.Connection[tuple[object, ...]], work: Callable[[q.Db], T]
    ) -> T:
        connection.autocommit = True
        try:
            return work(_Db(connection, self._manifests))
        finally:
            if not connection.closed:  # a lost connection is dropped by the pool
                connection.autocommit = False

    def _open(self) -> None:
        if self._pool.closed:
            self._pool.open(wait=False)

    async def _transaction(self, work: Callable[[q.Db], T]) -> T:
        if (settling := behind()) is not None:  # handed out ahead of its commit (`stores.ahead`)
            await settling
        return await asyncio.to_thread(self._run, work)

    async def _read(self, work: Callable[[q.Db], T]) -> T:
        """A read runs in autocommit mode, without a transaction's BEGIN and COMMIT round
        trips: under READ COMMITTED each of its statements sees a snapshot of its own either
        way. Reads only read (``Coordination._read``); SQLite's refuse to write."""
        if (settling := behind()) is not None:  # handed out ahead of its commit (`stores.ahead`)
            await settling
        return await asyncio.to_thread(self._run, work, read=True)

    # -- lifecycle ------------------------------------------------------------------------

    async def migrate(self) -> int:
        return await self._transaction(_apply_migrations)

    async def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        await asyncio.to_thread(self._pool.close)

    async def wait_for_work(self, seconds: float) -> bool:
        """Block until another process signals work (or ``seconds`` pass); True if signalled."""
        return await asyncio.to_thread(self._wait, seconds)

    def _wait(self, timeout: float) -> bool:
        try:
            if self._listener is None or self._listener.closed:
                self._listener = psycopg.connect(self._conninfo, autocommit=True)
                self._listener.execute(f"LISTEN {CHANNEL}")
            return any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as exc:
            if not self._closing:
                log.warning("LISTEN connection lost (%s); polling instead", _first_line(exc))
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            time.sleep(min(timeout, 1.0))
            return False


def _apply_migrations(db: q.Db) -> int:
    db.query("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    tables = {
        str(row[0])
        for row in db.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    }
    if tables and "schema_version" not in tables:
        raise StoreCorruptError(
            "the database has tables but no IdeaMine schema_version "
            f"({', '.join(sorted(tables)[:5])})",
            hint="point --store at an empty database; this one was left untouched",
        )
    db.query(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    current = int(str(db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0]))
    known = migrations("postgresql")
    latest = known[-1][0] if known else 0
    if current > latest:
        raise SchemaTooNewError(found=current, known=latest)
    for version, sql in known:
        if version > current:
            for statement in split_statements(sql):
                db.query(statement)
            db.query("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return max(current, latest)


def _connection_lost(exc: Exception) -> bool:
    """Whether ``exc`` cut a connection a statement may have been sent on (so a COMMIT may
    have taken effect unseen): not a pool timeout (no connection was had), nor an error the
    server reported (it answered: that transaction did not commit)."""
    if isinstance(exc, PoolTimeout) or not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SHUTDOWN_STATES


_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect


def _translate(exc: psycopg.Error) -> StoreError:
    text = _first_line(exc)
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return RowsExistError(
            f"integrity constraint failed: {text}",
            hint="the write conflicts with stored rows; nothing was written",
        )
    if isinstance(exc, psycopg.errors.IntegrityError):
        return StoreError(
            f"integrity constraint failed: {text}",
            hint="the write conflicts with stored rows; nothing was written",
        )
    if isinstance(
        exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction
    ):
        return StoreUnavailableError(
            f"PostgreSQL refused the write: {text}",
            hint="connect as a role that may write this database",
        )
    return StoreError(
        f"PostgreSQL error: {text}", hint="see the server log for the statement that failed"
    )


def _with_timeouts(url: str) -> str:
    """``url`` with what detects a dead connection in time, each unless the URL sets its own:
    ``connect_timeout``; TCP keepalives and ``tcp_user_timeout``, so a network that goes
    silent (no reset) is noticed in about 30 s, not the ~15 min TCP takes to give up, well
    inside the retry window. All client-side: nothing here reaches the server (a pooler such
    as PgBouncer refuses startup parameters it does not know, ``options`` among them)."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # not parseable: connecting reports it
        return url
    settings = {key: value for key, value in _TIMEOUTS.items() if key not in given}
    return make_conninfo(url, **settings) if settings else url


_TIMEOUTS: dict[str, str | int] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms a sent byte may stay unacknowledged
}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _redact(url: str) -> str:
    """The URL without its password (``user:pw@`` or ``?password=``), for messages and logs."""
    redacted = re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)
    if "@" not in redacted or "://" not in redacted:
        return redacted
    scheme, rest = redacted.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else redacted
