"""The options a run was started with (table ``run_options``, migration 5).

``ask`` (open questions pause the run), ``strict_evidence`` (evidence gaps fail gates),
``advisories`` (an OSV advisory folder) and ``added_budget`` (``resume --add-budget``). A store
extension: its SQL lives here, inside ``ideamine.stores`` (invariant 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.canonical import canonical_json
from ideamine.clock import SystemClock, iso
from ideamine.stores import queries as q
from ideamine.stores.base import Store
from ideamine.stores.records import EventDraft
from ideamine.stores.sqlstore import SqlStore

__all__ = ["RunOptions"]


class RunOptions:
    """Read and change a run's options on a SQL store."""

    def __init__(self, store: Store) -> None:
        if not isinstance(store, SqlStore):
            raise TypeError("run options need a SQL store")
        self._store = store
        self._clock = SystemClock()

    async def get(self, run_id: str) -> dict[str, Any]:
        """The run's options; ``{}`` for a run started without any."""
        rows = await self._store.run_read(
            lambda db: db.query("SELECT options FROM run_options WHERE run_id = ?", (run_id,))
        )
        if not rows:
            return {}
        loaded = q.load_json(str(rows[0][0]), f"run_options of run {run_id}")
        return dict(loaded) if isinstance(loaded, dict) else {}

    async def update(
        self, run_id: str, changes: Mapping[str, Any], event: EventDraft | None = None
    ) -> dict[str, Any]:
        """Merge ``changes`` into the run's options (and append ``event``) in one transaction."""
        at = iso(self._clock.now())

        def work(db: q.Db) -> dict[str, Any]:
            rows = db.query("SELECT options FROM run_options WHERE run_id = ?", (run_id,))
            current = q.load_json(str(rows[0][0]), f"run_options of run {run_id}") if rows else {}
            merged = {**(current if isinstance(current, dict) else {}), **changes}
            db.query(
                "INSERT INTO run_options (run_id, options, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET options = excluded.options, "
                "updated_at = excluded.updated_at",
                (run_id, canonical_json(merged), at),
            )
            if event is not None:
                q.append_event(db, run_id, event, at)
            return merged

        return await self._store.run_in_transaction(work)
