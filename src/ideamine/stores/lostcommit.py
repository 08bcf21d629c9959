"""What became of a PostgreSQL write whose connection was lost: at its ``COMMIT``, whose
reply the network lost, or before it, in the middle of the transaction.

Before a write's ``COMMIT`` is sent, the store notes the transaction's id and server process
(``Sent``). If the connection is lost before the reply comes, the store asks the server, on
another connection, what became of that transaction (``settle``):

- **committed**: the write is done, and its result is the one the lost attempt computed;
- **aborted**: nothing of it was written, so running it again is safe;
- **in progress**: the lost session is still open on the server with the ``COMMIT`` unread.
  The store ends that session (``pg_terminate_backend``, only while it still holds this
  transaction), which aborts the transaction unless its ``COMMIT`` was being carried out,
  and asks again. A session waiting for a synchronous standby to confirm its ``COMMIT``
  (``wait_event`` ``SyncRep``) is left alone: ending it would report a commit the standby
  never confirmed; the store waits for it.

A transaction that wrote nothing has no id (``pg_current_xact_id_if_assigned()`` says so, at
the cost of the same round trip), and nothing to lose: it is simply run again. So no write is
carried out twice while the server that answers is the one that took the ``COMMIT`` (after a
failover to an asynchronous standby, that standby may not know the transaction at all). If
no answer comes in time, the caller is told the outcome is unknown (``PostgresStore._run``).

A connection lost before its ``COMMIT`` was sent leaves nothing committed, but the server may
keep the session open, inside its transaction and holding its locks, until it notices the
client has gone (``idle_in_transaction_session_timeout``); the retry would wait on those locks.
So the store ends that session first (``end_stranded``), named by its process id and start
time (``Session``), which together no other session can have.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import psycopg

from ideamine.errors import StoreUnavailableError

__all__ = [
    "Fate",
    "Sent",
    "Session",
    "end_stranded",
    "limit_idle_transactions",
    "session_of",
    "settle",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_SECONDS = 0.05  # between questions while the lost session is ending


@dataclass(frozen=True, slots=True)
class Sent(Generic[T]):
    """A write whose ``COMMIT`` was sent: its transaction, and what the work returned."""

    xid: int  # pg_current_xact_id()
    pid: int  # the server process of the connection it was sent on
    value: T


class Fate(enum.Enum):
    COMMITTED = "committed"
    ABORTED = "aborted"
    UNKNOWN = "unknown"  # too old for the server to tell (never within a retry window)


def settle(
    connection: psycopg.Connection[tuple[object, ...]], sent: Sent[T], deadline: float
) -> Fate:
    """What became of ``sent``, asked on ``connection`` (in autocommit mode: each question
    sees the server as it is now). Raises ``StoreUnavailableError`` if the lost session is
    still open at ``deadline`` (it was asked to end at least once)."""
    while True:
        status = _status(connection, sent.xid)
        if status == "committed":
            return Fate.COMMITTED
        if status == "aborted":
            return Fate.ABORTED
        if status is None:
            return Fate.UNKNOWN
        _end_session(connection, sent)
        if time.monotonic() > deadline:
            raise StoreUnavailableError(
                f"cannot tell whether a write committed: its session (server process "
                f"{sent.pid}) still holds transaction {sent.xid} open",
                hint="look (ideamine runs, ideamine status RUN) before doing it again; "
                "SELECT pg_terminate_backend(PID) ends that session",
            )
        time.sleep(POLL_SECONDS)


def _status(connection: psycopg.Connection[tuple[object, ...]], xid: int) -> str | None:
    row = connection.execute("SELECT pg_xact_status(%s::text::xid8)", (str(xid),)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _end_session(connection: psycopg.Connection[tuple[object, ...]], sent: Sent[T]) -> None:
    """Terminate the lost session if it still holds ``sent``'s transaction (its process id
    may since have gone to another session, which is left alone), unless it waits for a
    synchronous standby to confirm the commit."""
    _terminate_where(
        connection,
        "pid = %s AND backend_xid = %s::text::xid8::xid AND wait_event IS DISTINCT FROM 'SyncRep'",
        (sent.pid, str(sent.xid)),
    )


@dataclass(frozen=True, slots=True)
class Session:
    """A server session: its process id and when it started (together, unique)."""

    pid: int
    started: datetime


def session_of(connection: psycopg.Connection[tuple[object, ...]]) -> Session | None:
    """The session ``connection`` talks to for good; None when it has none of its own: behind
    a pooler in transaction mode each transaction may run on another server session (the
    pooler then reports a process id of its own making, not the server's), so no session is
    ever ended for such a connection."""
    row = connection.execute(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    ).fetchone()
    if row is None or not isinstance(row[1], datetime):
        return None
    if int(str(row[0])) != connection.info.backend_pid:
        return None
    return Session(pid=int(str(row[0])), started=row[1])


def end_stranded(connection: psycopg.Connection[tuple[object, ...]], session: Session) -> bool:
    """End ``session`` if it is still inside a transaction (not ``idle``), asked on
    ``connection`` in autocommit mode, and wait for it to end; True if it was ended."""
    return _terminate_where(
        connection,
        "pid = %s AND backend_start = %s AND state IS DISTINCT FROM 'idle'",
        (session.pid, session.started),
    )


def _terminate_where(
    connection: psycopg.Connection[tuple[object, ...]], condition: str, params: tuple[object, ...]
) -> bool:
    """End the session ``pg_stat_activity`` lists under ``condition`` (from PostgreSQL 14 on,
    waiting up to 5 s until it is gone and its locks are free); True if one was ended. A
    session not ours to end is left for the server to end once it notices its client has
    gone (the idle-in-transaction timeout), with a warning."""
    call = (
        "pg_terminate_backend(pid, 5000)"
        if connection.info.server_version >= 140000
        else "pg_terminate_backend(pid)"
    )
    try:
        row = connection.execute(
            f"SELECT {call} FROM pg_stat_activity WHERE {condition}", params
        ).fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        log.warning("cannot end lost session %s (%s)", params[0], exc)
        return False
    return bool(row is not None and row[0])


def limit_idle_transactions(connection: psycopg.Connection[tuple[object, ...]], ms: int) -> None:
    """Have the server end this session should it sit ``ms`` inside a transaction with no
    statement (its client gone, and not ended by ``end_stranded``), freeing its locks; left as
    it is when the server or the URL (``options``) set a limit already."""
    row = connection.execute("SELECT current_setting('idle_in_transaction_session_timeout')")
    current = row.fetchone()
    if current is not None and str(current[0]) == "0":
        connection.execute(f"SET idle_in_transaction_session_timeout = {int(ms)}")
