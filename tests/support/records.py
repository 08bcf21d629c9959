"""Store records for tests that need a run in a store and nothing more."""

from __future__ import annotations

from ideamine.stores.records import NewRun


def new_run(run_id: str = "run-1", *, idea: str = "a farm shop") -> NewRun:
    """A run pinned to no config files, as ``store.create_run`` takes it."""
    return NewRun(
        id=run_id,
        idea=idea,
        constraints={},
        source="cli",
        config_dir=None,
        manifest={},
        manifest_hash="ab" * 32,
    )
