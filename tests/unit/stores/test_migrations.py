"""Opening and migrating a SQLite file: fresh, repeated, too new, foreign, corrupt, missing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from ideamine.errors import (
    SchemaTooNewError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    UsageError,
)
from ideamine.stores.schema import migrations
from ideamine.stores.sqlite import SYNC_ENV, SqliteStore

TABLES = {"runs", "phases", "tasks", "task_outputs", "model_calls", "blobs", "artifacts", "events"}


async def _migrate_and_close(store: SqliteStore) -> int:
    try:
        return await store.migrate()
    finally:
        await store.close()


def _migrate(path: Path) -> int:
    return asyncio.run(_migrate_and_close(SqliteStore(path)))


def _schema(path: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


LATEST = migrations("sqlite")[-1][0]


def _versions(path: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("SELECT version, applied_at FROM schema_version").fetchall()


def _assert_explains(error: StoreError, *, driver_cause: bool) -> None:
    """Invariant 5: a store error says what to do next and chains the driver error it wraps."""
    assert error.hint.strip()
    assert str(error).strip()
    if driver_cause:
        assert isinstance(error.__cause__, sqlite3.Error)


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [version for version, _ in migrations("sqlite")]
    assert versions == list(range(1, len(versions) + 1))


def test_fresh_file_is_migrated_to_the_latest_version(db_path: Path) -> None:
    assert not db_path.exists()

    assert _migrate(db_path) == LATEST

    assert [row[0] for row in _versions(db_path)] == list(range(1, LATEST + 1))
    tables = {name for kind, name, _ in _schema(db_path) if kind == "table"}
    assert tables >= TABLES | {"schema_version"}


def test_fresh_file_is_in_wal_mode(db_path: Path) -> None:
    _migrate(db_path)
    with closing(sqlite3.connect(db_path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrating_twice_is_a_no_op(db_path: Path) -> None:
    _migrate(db_path)
    schema, versions = _schema(db_path), _versions(db_path)

    assert _migrate(db_path) == LATEST

    assert _schema(db_path) == schema
    assert _versions(db_path) == versions


def test_migrate_twice_on_one_open_store(store: SqliteStore) -> None:
    assert asyncio.run(store.migrate()) == LATEST
    assert asyncio.run(store.migrate()) == LATEST


def test_newer_schema_raises_schema_too_new_and_changes_nothing(db_path: Path) -> None:
    _migrate(db_path)
    with closing(sqlite3.connect(db_path, isolation_level=None)) as connection:
        connection.execute("INSERT INTO schema_version (version) VALUES (99)")
    schema, versions = _schema(db_path), _versions(db_path)

    with pytest.raises(SchemaTooNewError) as caught:
        _migrate(db_path)

    assert (caught.value.found, caught.value.known) == (99, LATEST)
    _assert_explains(caught.value, driver_cause=False)
    assert _schema(db_path) == schema
    assert _versions(db_path) == versions


def _foreign_database(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        connection.execute("INSERT INTO notes (body) VALUES ('keep me'), ('and me')")


def test_foreign_database_is_corrupt_and_left_alone(db_path: Path) -> None:
    _foreign_database(db_path)
    schema = _schema(db_path)

    with pytest.raises(StoreCorruptError) as caught:
        _migrate(db_path)

    _assert_explains(caught.value, driver_cause=False)
    assert "notes" in str(caught.value)
    assert _schema(db_path) == schema  # no schema_version, no IdeaMine tables
    with closing(sqlite3.connect(db_path)) as connection:
        rows = connection.execute("SELECT body FROM notes ORDER BY id").fetchall()
    assert rows == [("keep me",), ("and me",)]


def test_foreign_database_keeps_its_journal_mode(db_path: Path) -> None:
    """The hint promises the file "was left untouched"; switching it to WAL is a change
    another application may not expect (it rewrites header bytes 18-19)."""
    _foreign_database(db_path)
    before = db_path.read_bytes()

    with pytest.raises(StoreCorruptError):
        _migrate(db_path)

    with closing(sqlite3.connect(db_path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db_path.read_bytes() == before


def test_random_bytes_are_corrupt_and_the_file_is_unchanged(db_path: Path) -> None:
    content = os.urandom(8192)
    db_path.write_bytes(content)

    with pytest.raises(StoreCorruptError) as caught:
        _migrate(db_path)

    _assert_explains(caught.value, driver_cause=True)
    assert db_path.read_bytes() == content


def test_random_bytes_fail_every_later_call_too(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    store = SqliteStore(db_path)
    try:
        with pytest.raises(StoreCorruptError) as caught:
            asyncio.run(store.list_runs())
        _assert_explains(caught.value, driver_cause=True)
    finally:
        asyncio.run(store.close())


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "ideamine.db"

    with pytest.raises(StoreUnavailableError) as caught:
        _migrate(path)

    _assert_explains(caught.value, driver_cause=False)
    assert not path.parent.exists()


def test_directory_path_is_unavailable_with_driver_cause(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()

    with pytest.raises(StoreUnavailableError) as caught:
        _migrate(folder)

    _assert_explains(caught.value, driver_cause=True)
    assert folder.is_dir()
    assert list(folder.iterdir()) == []


def _synchronous_of(store: SqliteStore) -> int:
    """``PRAGMA synchronous`` on the store's writing connection (0 OFF, 1 NORMAL, 2 FULL)."""

    async def read() -> int:
        await store.migrate()
        level: int = await store.run_in_transaction(
            lambda db: int(db.query("PRAGMA synchronous")[0][0])
        )
        await store.close()
        return level

    return asyncio.run(read())


def test_commits_are_durable_across_a_power_cut_by_default(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FULL syncs the WAL before COMMIT returns; NORMAL (WAL) only at checkpoints."""
    monkeypatch.delenv(SYNC_ENV, raising=False)
    assert _synchronous_of(SqliteStore(db_path)) == 2
    monkeypatch.setenv(SYNC_ENV, "Normal")
    assert _synchronous_of(SqliteStore(db_path)) == 1
    assert _synchronous_of(SqliteStore(db_path, synchronous="full")) == 2


@pytest.mark.parametrize("value", ["off", "fast", "2"])
def test_an_unknown_sync_level_is_refused_naming_the_variable(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(SYNC_ENV, value)
    with pytest.raises(UsageError) as caught:
        SqliteStore(db_path)
    assert f"$IDEAMINE_SQLITE_SYNC is {value!r}" in str(caught.value)
    assert "normal" in caught.value.hint
    assert not db_path.exists()  # refused before anything was opened
