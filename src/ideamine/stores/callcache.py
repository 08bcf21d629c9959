"""The call cache kept in the store (tables ``call_cache`` and ``run_models``, migration 3).

A store extension: its SQL lives here, inside ``ideamine.stores`` (invariant 5), and runs
through ``SqlStore.run_in_transaction`` (reads through ``run_read``). Writes are ``ON
CONFLICT DO NOTHING``, so two workers that make the same call at once keep the first reply,
and a pinned model never changes.
"""

from __future__ import annotations

from ideamine.clock import SystemClock, iso
from ideamine.llm.cache import CachedReply, CallCache, MemoryCallCache
from ideamine.stores import queries as q
from ideamine.stores.base import Store
from ideamine.stores.sqlstore import SqlStore

__all__ = ["StoreCallCache", "call_cache_for"]


class StoreCallCache:
    """``CallCache`` on a SQL store, shared by every process that uses the store."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._clock = SystemClock()

    async def get(self, key: str) -> CachedReply | None:
        def work(db: q.Db) -> CachedReply | None:
            rows = db.query(
                "SELECT provider, model, reply, tokens_in, tokens_out FROM call_cache "
                "WHERE key = ?",
                (key,),
            )
            if not rows:
                return None
            provider, model, reply, tokens_in, tokens_out = rows[0]
            return CachedReply(
                provider=str(provider),
                model=str(model),
                text=str(reply),
                tokens_in=int(tokens_in),
                tokens_out=int(tokens_out),
            )

        return await self._store.run_read(work)

    async def put(self, key: str, reply: CachedReply) -> None:
        at = iso(self._clock.now())

        def work(db: q.Db) -> None:
            db.query(
                "INSERT INTO call_cache (key, provider, model, reply, tokens_in, tokens_out, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (
                    key,
                    reply.provider,
                    reply.model,
                    reply.text,
                    reply.tokens_in,
                    reply.tokens_out,
                    at,
                ),
            )

        await self._store.run_in_transaction(work)

    async def run_model(self, run_id: str) -> str | None:
        rows = await self._store.run_read(
            lambda db: db.query("SELECT model FROM run_models WHERE run_id = ?", (run_id,))
        )
        return str(rows[0][0]) if rows else None

    async def pin_run_model(self, run_id: str, reference: str) -> str:
        at = iso(self._clock.now())

        def work(db: q.Db) -> str:
            db.query(
                "INSERT INTO run_models (run_id, model, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, reference, at),
            )
            rows = db.query("SELECT model FROM run_models WHERE run_id = ?", (run_id,))
            return str(rows[0][0])

        return await self._store.run_in_transaction(work)


def call_cache_for(store: Store | None, fallback: CallCache | None = None) -> CallCache:
    """The store's call cache; ``fallback`` (or a fresh memory cache) for stores without SQL
    tables, such as test doubles."""
    if isinstance(store, SqlStore):
        return StoreCallCache(store)
    return fallback if fallback is not None else MemoryCallCache()
