"""Run manifests read once per store, not with every read of their run.

A run's manifest (one entry per config file) is written when the run is created and replaced
only with its hash, by a repin. A wide pipeline's is large (W2's 2,000 agents: ~120 KB of
JSON), and nearly every store call reads its run: the run reads leave the column out, and the
manifest comes from here, decoded and shared read-only, read from the row the first time a
store meets its (run, manifest hash).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ideamine.errors import StoreCorruptError

if TYPE_CHECKING:
    from ideamine.stores.queries import Db

__all__ = ["Manifests", "run_manifest"]


class Manifests:
    """A store's decoded manifests by (run id, manifest hash); the oldest go past ``size``."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._by_key: dict[tuple[str, str], Mapping[str, str]] = {}
        self._lock = threading.Lock()  # SQLite reads run on their callers' threads

    def get(self, key: tuple[str, str]) -> Mapping[str, str] | None:
        return self._by_key.get(key)

    def put(self, key: tuple[str, str], manifest: Mapping[str, str]) -> None:
        with self._lock:
            self._by_key[key] = manifest
            while len(self._by_key) > self._size:
                del self._by_key[next(iter(self._by_key))]


def run_manifest(db: Db, run_id: str, manifest_hash: str) -> Mapping[str, str]:
    """The manifest of ``run_id`` as stored with ``manifest_hash``."""
    key = (run_id, manifest_hash)
    manifest = db.manifests.get(key)
    if manifest is None:
        rows = db.query("SELECT manifest FROM runs WHERE id = ?", (run_id,))
        manifest = _decoded(rows[0][0], f"runs row {run_id!r}")
        db.manifests.put(key, manifest)
    return manifest


def _decoded(text: str, where: str) -> Mapping[str, str]:
    try:
        decoded = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreCorruptError(
            f"{where}: stored JSON does not decode ({exc})",
            hint="restore the database from a backup",
        ) from exc
    if not isinstance(decoded, dict):
        raise StoreCorruptError(
            f"{where}: the manifest is a JSON {type(decoded).__name__}, not an object",
            hint="restore the database from a backup",
        )
    return MappingProxyType(decoded)
