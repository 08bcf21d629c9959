"""A store's cache of decoded run manifests."""

from __future__ import annotations

from ideamine.stores.manifests import Manifests


def test_the_oldest_manifests_go_past_the_size() -> None:
    manifests = Manifests(size=2)
    for run in ("run-1", "run-2", "run-3"):
        manifests.put((run, "h"), {"pipeline.yaml": run})

    assert manifests.get(("run-1", "h")) is None
    assert manifests.get(("run-2", "h")) == {"pipeline.yaml": "run-2"}
    assert manifests.get(("run-3", "h")) == {"pipeline.yaml": "run-3"}


def test_a_run_is_remembered_per_manifest_hash() -> None:
    manifests = Manifests()
    manifests.put(("run-1", "old"), {"pipeline.yaml": "a"})

    assert manifests.get(("run-1", "new")) is None  # a repinned run is read again
