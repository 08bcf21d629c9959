"""A store's cache of decoded run manifests, and run reads racing a repin or a delete."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from ideamine.errors import RunNotFoundError
from ideamine.stores import queries as q
from ideamine.stores.manifests import Manifests
from ideamine.stores.sqlite import SqliteStore


def test_the_least_recently_used_manifests_go_past_the_size() -> None:
    manifests = Manifests(size=2)
    manifests.put("h1", {"pipeline.yaml": "1"})
    manifests.put("h2", {"pipeline.yaml": "2"})
    assert manifests.get("h1") == {"pipeline.yaml": "1"}  # now the most recently used

    manifests.put("h3", {"pipeline.yaml": "3"})

    assert manifests.get("h2") is None
    assert manifests.get("h1") == {"pipeline.yaml": "1"}
    assert manifests.get("h3") == {"pipeline.yaml": "3"}


def _stale_row(store: SqliteStore, raw: sqlite3.Connection) -> tuple[object, ...]:
    """The run's row as a read saw it, before the change the test makes next."""
    row = raw.execute(f"SELECT {q.RUN_READ} FROM runs WHERE id = 'run-1'").fetchone()
    assert isinstance(row, tuple)
    return row


def test_a_run_repinned_between_two_statements_is_read_again_whole(
    store: SqliteStore, running_run: object, raw: sqlite3.Connection
) -> None:
    """On PostgreSQL each statement reads its own snapshot: the manifest must come from the
    row with the hash the run read saw, or the run is read again in one statement."""
    running_run()  # type: ignore[operator]
    stale = _stale_row(store, raw)
    raw.execute(
        "UPDATE runs SET manifest = '{\"pipeline.yaml\": \"new\"}', manifest_hash = 'h-new' "
        "WHERE id = 'run-1'"
    )
    fresh = SqliteStore(store.path)  # nothing cached yet
    try:
        run = asyncio.run(fresh.run_read(lambda db: q.run_from_row(db, stale)))
        assert (run.manifest_hash, dict(run.manifest)) == ("h-new", {"pipeline.yaml": "new"})
        assert stale[6] != "h-new"  # the stale hash is never paired with the new manifest

        raw.execute("DELETE FROM events WHERE run_id = 'run-1'")
        raw.execute("DELETE FROM phases WHERE run_id = 'run-1'")
        raw.execute("DELETE FROM tasks WHERE run_id = 'run-1'")
        raw.execute("DELETE FROM runs WHERE id = 'run-1'")
        other = SqliteStore(store.path)
        try:
            with pytest.raises(RunNotFoundError):
                asyncio.run(other.run_read(lambda db: q.run_from_row(db, stale)))
        finally:
            asyncio.run(other.close())
    finally:
        asyncio.run(fresh.close())
