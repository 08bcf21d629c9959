"""Run manifests read once per store, not with every read of their run.

A run's manifest (one entry per config file) is written when the run is created and replaced
only with its hash, by a repin. A wide pipeline's is large (W2's 2,000 agents: ~120 KB of
JSON), and nearly every store call reads its run: the run reads leave the column out, and the
manifest comes from here, decoded and shared read-only, read from a run's row the first time
a store meets its manifest hash.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ideamine.errors import StoreCorruptError

if TYPE_CHECKING:
    from ideamine.stores.queries import Db

__all__ = ["Manifests", "decoded_manifest", "run_manifest"]


class Manifests:
    """A store's decoded manifests by manifest hash (a content hash: runs pinned to one
    config share an entry), the least recently used going past ``size``."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._by_hash: OrderedDict[str, Mapping[str, str]] = OrderedDict()
        self._lock = threading.Lock()  # SQLite reads run on their callers' threads

    def get(self, manifest_hash: str) -> Mapping[str, str] | None:
        with self._lock:
            manifest = self._by_hash.get(manifest_hash)
            if manifest is not None:
                self._by_hash.move_to_end(manifest_hash)
            return manifest

    def put(self, manifest_hash: str, manifest: Mapping[str, str]) -> None:
        with self._lock:
            self._by_hash[manifest_hash] = manifest
            while len(self._by_hash) > self._size:
                self._by_hash.popitem(last=False)


def run_manifest(db: Db, run_id: str, manifest_hash: str) -> Mapping[str, str] | None:
    """The manifest stored as ``manifest_hash`` in ``run_id``'s row; None when the row no
    longer holds that hash (repinned, or deleted, since the caller read it: on PostgreSQL
    each statement reads a snapshot of its own), for the caller to read the run again."""
    manifest = db.manifests.get(manifest_hash)
    if manifest is None:
        rows = db.query(
            "SELECT manifest FROM runs WHERE id = ? AND manifest_hash = ?", (run_id, manifest_hash)
        )
        if not rows:
            return None
        manifest = decoded_manifest(rows[0][0], f"runs row {run_id!r}")
        db.manifests.put(manifest_hash, manifest)
    return manifest


def decoded_manifest(text: str, where: str) -> Mapping[str, str]:
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
