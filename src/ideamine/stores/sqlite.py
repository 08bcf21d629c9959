"""The SQLite store: one file, WAL mode, numbered migrations, zero set-up.

Writes go through one connection guarded by a lock, each in a ``BEGIN IMMEDIATE``
transaction. A write runs at once on the caller's thread when nothing is queued and the
lock is free (no other process writing this instant); otherwise it queues for the writer
thread, which commits everything queued meanwhile together, each unit in its own savepoint
of one transaction (group commit, ``stores.groupcommit``). Either way a caller learns its
result only after the commit that holds it. Several processes may share the file safely
(SQLite serialises writers; the writer thread's ``busy_timeout`` waits for the lock: once the
file is open, never the caller's thread). An immediate write that fills the WAL runs SQLite's
automatic checkpoint on the caller's thread (milliseconds, every ~4 MB written). An awaited
immediate write, like a read, completes without letting the event loop run other tasks
(yielding after each cost W1 3 %): code that makes many store calls in a row and must share
the loop yields itself.

Every commit is durable by default: ``PRAGMA synchronous = FULL`` syncs the WAL to the disk
before ``COMMIT`` returns, so an acknowledged output or event survives a power cut or an
operating-system crash, not only the death of the process. ``IDEAMINE_SQLITE_SYNC=normal``
trades that for speed (SQLite's ``NORMAL`` in WAL mode: a process crash still loses nothing,
a power cut may undo the last commits before the WAL's next checkpoint).

Reads run on the caller's thread, each in a read transaction of that thread's own query-only
connection: in WAL mode a reader never waits for the writer, and it sees every commit
acknowledged before it began. Handing a read to the writer thread and back cost ~130 µs, six
times the read itself. The thread whose writes run at once (the event loop's) reads on the
writer's connection instead while nothing else uses it: SQLite drops a connection's page
cache after another connection's commit, the writer's keeps what it wrote.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from ideamine.clock import Clock, SystemClock
from ideamine.errors import (
    RowsExistError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    UsageError,
)
from ideamine.stores import queries as q
from ideamine.stores.ahead import behind
from ideamine.stores.groupcommit import Failure, GroupCommit, Outcome, Success
from ideamine.stores.manifests import Manifests
from ideamine.stores.schema import apply_sqlite_migrations, check_identity
from ideamine.stores.sqlstore import SqlStore

__all__ = ["SYNC_ENV", "SqliteStore", "sync_level"]

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 30.0
SYNC_ENV = "IDEAMINE_SQLITE_SYNC"
SYNC_LEVELS = ("full", "normal")  # the first is the default


def sync_level(value: str | None) -> str:
    """The ``PRAGMA synchronous`` level for ``value`` (``$IDEAMINE_SQLITE_SYNC``; None or
    empty: the default, ``FULL``).

    Raises:
        UsageError: ``value`` is not one of the levels IdeaMine offers.
    """
    level = (value or SYNC_LEVELS[0]).strip().lower()
    if level not in SYNC_LEVELS:
        raise UsageError(
            f"${SYNC_ENV} is {value!r}, not one of {', '.join(SYNC_LEVELS)}",
            hint=f"unset it for durable commits (full), or set {SYNC_ENV}=normal to trade "
            "durability across a power cut for speed",
        )
    return level.upper()


class _Db:
    """``queries.Db`` over a sqlite3 connection inside an open transaction."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection, manifests: Manifests) -> None:
        self._connection = connection
        self.manifests = manifests
        self.heads: dict[str, str] = {}
        self._next_event: int | None = None  # the id the next appended event gets

    def query(self, sql: str, params: Sequence[object] = ()) -> list[q.Row]:
        return self._connection.execute(sql, tuple(params)).fetchall()

    def lock_run(self, run_id: str) -> None:
        """BEGIN IMMEDIATE already holds SQLite's one write lock."""

    def notify(self, run_id: str) -> None:
        """No wake-ups on SQLite: workers poll."""

    def query_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._connection.executemany(sql, rows)

    def next_task_revision(self) -> int:
        # Safe for the same reason as event ids: the write lock is held until commit. The
        # highest stamp handed out is kept in `task_revision` (migration 12), raised with each
        # stamp, so a unit rolled back gives its stamps back with it.
        rows = self._connection.execute(
            "UPDATE task_revision SET last = last + 1 RETURNING last"
        ).fetchall()
        if not rows:
            raise StoreCorruptError(
                "the store's task_revision row is missing (edited by hand?)",
                hint="restore the store from a backup",
            )
        return int(rows[0][0])

    def next_event_ids(self, count: int) -> list[int]:
        # Safe: the transaction holds SQLite's write lock (BEGIN IMMEDIATE). The AUTOINCREMENT
        # high-water mark survives retention, so an id is never handed out twice; this unit
        # appends every event it hands out an id for, so it counts on from there.
        if self._next_event is None:
            row = self._connection.execute(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"
            ).fetchone()
            self._next_event = int(row[0]) + 1
        first = self._next_event
        self._next_event += count
        return list(range(first, first + count))


class SqliteStore(SqlStore):
    """``Store`` on a SQLite file."""

    # BEGIN IMMEDIATE already serialises claimers, so a plain SELECT is race-free.
    claim_lock = ""

    def __init__(
        self, path: Path | str, clock: Clock | None = None, *, synchronous: str | None = None
    ) -> None:
        """``synchronous``: ``full`` or ``normal`` (see the module's docstring); None reads
        ``$IDEAMINE_SQLITE_SYNC``.

        Raises:
            UsageError: ``synchronous`` (or the variable) names no level IdeaMine offers.
        """
        super().__init__(clock or SystemClock())
        self.path = Path(path)
        self.synchronous = sync_level(
            os.environ.get(SYNC_ENV) if synchronous is None else synchronous
        )
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._writes_at_once: int | None = None  # the thread whose last write ran at once
        self._read_only = False  # the file cannot be written: every connection is immutable
        self._readers = threading.local()  # each thread's reading connection (`_Reader`)
        self._opened_readers: weakref.WeakSet[_Reader] = weakref.WeakSet()  # for `close`
        self._readers_lock = threading.Lock()  # guards `_opened_readers`
        # Every transaction goes through one writer thread that commits concurrent tasks'
        # transactions together (stores.groupcommit).
        self._writer: GroupCommit[Callable[[q.Db], object]] = GroupCommit(
            self._run_batch, name=f"sqlite writer {self.path.name}"
        )

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- connection and errors ------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        if not self.path.parent.is_dir():
            raise StoreUnavailableError(
                f"cannot open {self.path}: folder {self.path.parent} does not exist",
                hint="create the folder or pass another --store path",
            )
        try:
            connection = self._open_writable()
        except StoreUnavailableError:
            if not self.path.is_file():
                raise
            # A read-only file or folder: reads (status, events, verify) still work; any
            # write fails with a StoreUnavailableError that says the store is read-only.
            connection = self._open_read_only()
            self._read_only = True
        self._connection = connection
        return connection

    def _open(self) -> sqlite3.Connection:
        """A connection to the file in autocommit mode (transactions are begun explicitly),
        usable from any thread, waiting up to ``BUSY_TIMEOUT_SECONDS`` for locks."""
        try:
            return sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _open_writable(self) -> sqlite3.Connection:
        connection = self._open()
        try:
            check_identity(connection)  # before WAL: never touch another program's file
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute(f"PRAGMA synchronous = {self.synchronous}")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.Error as exc:
            connection.close()
            raise self._translate(exc) from exc
        except StoreError:
            connection.close()
            raise
        if mode is None or str(mode[0]).lower() != "wal":
            connection.close()
            raise StoreUnavailableError(
                f"cannot switch {self.path} to WAL mode (got {mode})",
                hint="is the file on a network file system?",
            )
        return connection

    def _open_read_only(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro&immutable=1"
        try:
            connection = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return connection

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        lowered = text.lower()
        if "not a database" in lowered or "malformed" in lowered:
            return StoreCorruptError(
                f"{self.path} is not an IdeaMine database ({text})",
                hint="point --store at another file; this one was left untouched",
            )
        if "readonly" in lowered or "read-only" in lowered:
            return StoreUnavailableError(
                f"{self.path} is read-only ({text})",
                hint="make the file and its folder writable, or use another --store path",
            )
        if "unable to open" in lowered:
            return StoreUnavailableError(
                f"cannot open {self.path} ({text})", hint="check that the path is a writable file"
            )
        if "locked" in lowered or "busy" in lowered:
            return StoreUnavailableError(
                f"{self.path} stayed locked for {BUSY_TIMEOUT_SECONDS:g} s ({text})",
                hint="another process holds a long write; try again",
            )
        if isinstance(exc, sqlite3.IntegrityError):
            unique = "unique constraint failed" in lowered  # a primary key's too
            return (RowsExistError if unique else StoreError)(
                f"integrity constraint failed in {self.path}: {text}",
                hint="the write conflicts with stored rows; nothing was written",
            )
        return StoreError(
            f"SQLite error on {self.path}: {text}",
            hint="check the file with `sqlite3 FILE 'PRAGMA integrity_check'`",
        )

    def _run_batch(self, works: Sequence[Callable[[q.Db], object]]) -> list[Outcome]:
        """Run ``works`` in one ``BEGIN IMMEDIATE`` transaction, each inside a savepoint so a
        unit that raises is rolled back alone; commit once. Never raises: a failure to begin
        or commit fails every unit, and none of them was acknowledged before it."""
        with self._lock:
            try:
                connection = self._connect()
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                return [Failure(self._caused(exc))] * len(works)
            except StoreError as exc:
                return [Failure(exc)] * len(works)
            return self._commit(connection, works)

    def _run_now(self, work: Callable[[q.Db], object]) -> Outcome | None:
        """``work`` as a batch of its own on the calling thread, when nothing waits for the
        writer thread and SQLite's write lock is free this instant; None otherwise (then it
        is queued). Handing a write to the writer thread and back costs more than most
        writes themselves; a batch forms whenever writes do queue up."""
        if not self._writer.idle() or not self._lock.acquire(blocking=False):
            return None
        connection: sqlite3.Connection | None = None
        try:
            connection = self._connect()
            if not _begin_at_once(connection):
                return None  # another process writes: wait in the queue, not here
            self._writes_at_once = threading.get_ident()
            return self._commit(connection, [work])[0]
        except sqlite3.Error as exc:
            _rollback(connection)
            return Failure(self._caused(exc))
        except StoreError as exc:
            return Failure(exc)
        except BaseException:  # an interrupt between BEGIN and COMMIT: leave nothing open
            _rollback(connection)
            raise
        finally:
            self._lock.release()

    def _commit(
        self, connection: sqlite3.Connection, works: Sequence[Callable[[q.Db], object]]
    ) -> list[Outcome]:
        """Run ``works`` inside the transaction begun on ``connection`` and commit it."""
        try:
            outcomes = [self._unit(connection, work) for work in works]
            connection.execute("COMMIT")
        except _Aborted as aborted:
            _rollback(connection)
            return [Failure(aborted.error)] * len(works)
        except sqlite3.Error as exc:
            _rollback(connection)
            return [Failure(self._caused(exc))] * len(works)
        except BaseException:
            _rollback(connection)  # leave no transaction open for the next batch
            raise
        return outcomes

    def _unit(self, connection: sqlite3.Connection, work: Callable[[q.Db], object]) -> Outcome:
        """One unit of a batch inside its own savepoint."""
        connection.execute("SAVEPOINT unit")
        try:
            value = work(_Db(connection, self._manifests))
        except Exception as exc:
            error = self._caused(exc) if isinstance(exc, sqlite3.Error) else exc
            if not connection.in_transaction:  # SQLite undid the whole transaction itself
                raise _Aborted(error) from exc
            try:
                connection.execute("ROLLBACK TO unit")
                connection.execute("RELEASE unit")
            except sqlite3.Error as undo:
                raise _Aborted(self._caused(undo)) from undo
            return Failure(error)
        connection.execute("RELEASE unit")
        return Success(value)

    def _caused(self, exc: sqlite3.Error) -> StoreError:
        """``exc`` translated, with the driver's error as its cause (``raise … from exc``)."""
        error = self._translate(exc)
        error.__cause__ = exc
        return error

    async def _transaction(self, work: Callable[[q.Db], T]) -> T:
        if (settling := behind()) is not None:  # handed out ahead of its commit (`stores.ahead`)
            await settling
        outcome = self._run_now(work)
        if outcome is None:
            result: T = await self._writer.submit(work)
            return result
        if isinstance(outcome, Failure):
            raise outcome.error
        value: T = outcome.value
        return value

    async def _read(self, work: Callable[[q.Db], T]) -> T:
        if (settling := behind()) is not None:  # handed out ahead of its commit (`stores.ahead`)
            await settling
        read = self._read_now(work)
        if read is not None:
            value: T = read.value
            return value
        while True:
            reader = self._reader()
            with reader.lock:  # `close` on another thread waits for this read
                if reader.open:
                    return self._read_on(reader.connection, work)

    def _read_now(self, work: Callable[[q.Db], object]) -> Success | None:
        """``work`` read on the writer's connection, when the calling thread is the one
        whose writes run on it at once (``_run_now``: the event loop's) and it is free this
        instant (no write queued or under way); None otherwise. SQLite drops a connection's
        page cache whenever another connection committed, so a reading connection re-reads
        the pages it needs after each of this process's writes; the writer's keeps what it
        wrote (W1's ``run_changes``: 0.47 → 0.33 ms). Such a read holds the writer's
        connection while it lasts, as that thread's writes do; other threads (the API's,
        say) read on their own connections, so a long read there never holds up a write.

        A read that changed rows is rolled back and refused. That is narrower than a reading
        connection's ``query_only`` (which also refuses schema changes and pragmas that
        write); switching ``query_only`` on and off around each read cost more than the
        read saved (it made ``run_changes`` 0.63–0.71 ms)."""
        if (
            self._read_only
            or self._writes_at_once != threading.get_ident()
            or not self._writer.idle()
            or not self._lock.acquire(blocking=False)
        ):
            return None
        try:
            connection = self._connection  # (under the lock: `close` takes it first)
            if connection is None:
                return None
            return Success(self._read_on(connection, work, refuse_changes=True))
        finally:
            self._lock.release()

    def _read_on(
        self,
        connection: sqlite3.Connection,
        work: Callable[[q.Db], T],
        *,
        refuse_changes: bool = False,
    ) -> T:
        """``work`` in a read transaction of ``connection``, ended whatever happens. With
        ``refuse_changes`` (the writer's connection, which is not query-only), refused when
        it changed rows or ended the transaction itself."""
        changes = connection.total_changes
        try:
            connection.execute("BEGIN")
            try:
                value = work(_Db(connection, self._manifests))
                if refuse_changes:
                    self._refuse_writes(connection, changes)
                connection.execute("COMMIT")  # ends the snapshot: never left open
            except BaseException:
                _rollback(connection)
                raise
        except sqlite3.Error as exc:
            if "readonly" in str(exc).lower() and not self._read_only:
                raise StoreError(
                    f"a read of {self.path} tried to write ({exc})",
                    hint="this is a bug in IdeaMine: writes go through run_in_transaction",
                ) from exc
            raise self._caused(exc) from exc
        return value

    def _refuse_writes(self, connection: sqlite3.Connection, changes: int) -> None:
        """Raise if the read on ``connection`` changed rows since ``total_changes`` read
        ``changes``, or ended its transaction (the caller rolls back)."""
        if connection.total_changes != changes or not connection.in_transaction:
            raise StoreError(
                f"a read of {self.path} tried to write (rolled back)",
                hint="this is a bug in IdeaMine: writes go through run_in_transaction",
            )

    def _reader(self) -> _Reader:
        """This thread's reading connection, opened once the writer's is (which checks the
        file's identity and switches it to WAL); the writer's lock only for that first."""
        reader: _Reader | None = getattr(self._readers, "reader", None)
        if reader is not None and reader.open:
            return reader
        if self._connection is None:
            with self._lock:
                self._connect()
        reader = _Reader(self._open_reader())
        with self._readers_lock:
            self._opened_readers.add(reader)
        self._readers.reader = reader
        return reader

    def _open_reader(self) -> sqlite3.Connection:
        if self._read_only:
            return self._open_read_only()
        connection = self._open()
        try:
            connection.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            connection.close()
            raise self._translate(exc) from exc
        return connection

    # -- lifecycle ------------------------------------------------------------------------

    async def migrate(self) -> int:
        return await asyncio.to_thread(self._migrate)

    def _migrate(self) -> int:
        with self._lock:
            connection = self._connect()
            try:
                return apply_sqlite_migrations(connection)
            except sqlite3.Error as exc:
                _rollback(connection)
                raise self._translate(exc) from exc

    async def wait_for_work(self, seconds: float) -> bool:
        """SQLite has no notifications: sleep, and let the caller poll."""
        await asyncio.sleep(seconds)
        return False

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close)
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        with self._readers_lock:
            readers = list(self._opened_readers)
        for reader in readers:  # each once its read in progress (on any thread) is over
            reader.close()


class _Reader:
    """A thread's reading connection, closed when that thread ends (its thread-local data is
    dropped then) or when the store closes, whichever comes first; ``lock`` is held while
    a read uses it, so it is never closed under a read."""

    __slots__ = ("__weakref__", "connection", "lock", "open")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.open = True

    def close(self) -> None:
        with self.lock:
            if self.open:
                self.open = False
                self.connection.close()

    def __del__(self) -> None:
        self.close()


class _Aborted(Exception):
    """The batch's transaction is gone (SQLite rolled it back): every unit fails."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _begin_at_once(connection: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` without waiting: False when another connection holds the write
    lock (the connection's busy timeout is set again either way)."""
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # extended codes included
            raise
        return False
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return True


def _rollback(connection: sqlite3.Connection | None) -> None:
    if connection is not None and connection.in_transaction:
        connection.execute("ROLLBACK")
