"""Store records for tests that need a run in a store and nothing more."""

from __future__ import annotations

from ideamine.engine.states import TaskStatus
from ideamine.stores.records import NewRun, TaskRecord


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


def running_task(
    key: str, *, phase: str = "prd", run_id: str = "run-1", attempt: int = 1
) -> TaskRecord:
    """A task of ``phase`` running under a lease (``key`` as ``00.Agent``), as a claim
    leaves it."""
    return TaskRecord(
        id=f"{run_id}.{phase}.{attempt}.{key}",
        run_id=run_id,
        phase=phase,
        attempt=attempt,
        key=key,
        agent=key.split(".")[1],
        iteration=1,
        status=TaskStatus.RUNNING,
        tries=1,
        lease_owner="me",
        lease_expires_at=100.0,
        not_before=0.0,
        error=None,
        created_at="2026-11-27T00:00:00+00:00",
        started_at="2026-11-27T00:00:01+00:00",
        finished_at=None,
    )
