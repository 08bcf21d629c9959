"""Run manifests read once per store, not with every read of their run.

A run's manifest (one entry per config file) is written when the run is created and replaced
only with its hash, by a repin. A wide pipeline's is large (W2's 2,000 agents: ~120 KB of
JSON), and nearly every store call reads its run: the run reads leave the column out
(``queries.run_from_row``) and take the manifest, decoded and shared read-only, from this
cache, reading a run's row the first time a store meets its manifest hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

__all__ = ["Manifests"]


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
