"""Task records as the claim builds them."""

from __future__ import annotations

import dataclasses

from ideamine.engine.states import TaskStatus
from ideamine.stores import task_queries as tq
from ideamine.stores.records import TaskRecord


def test_a_leased_task_keeps_every_other_field() -> None:
    """``leased`` spells the record out field by field: a field added to ``TaskRecord`` and
    not carried over would reset here, and every value below differs from its default."""
    waiting = TaskRecord(
        id="task-1",
        run_id="run-1",
        phase="build",
        attempt=2,
        key="003.Builder",
        agent="Builder",
        iteration=3,
        status=TaskStatus.PENDING,
        tries=1,
        lease_owner=None,
        lease_expires_at=None,
        not_before=12.5,
        error="timed out after 60 s",
        created_at="2026-11-28T00:00:00Z",
        started_at="2026-11-28T00:00:01Z",
        finished_at="2026-11-28T00:00:02Z",
        stalls=2,
        batch_scale=0.5,
        timeout_scale=2.0,
        model_shift=1,
    )
    assert all(
        getattr(waiting, f.name) != f.default
        for f in dataclasses.fields(TaskRecord)
        if f.default is not dataclasses.MISSING
    )

    taken = tq.leased(waiting, owner="host:1", expires_at=99.0, at="2026-11-28T00:01:00Z")

    assert taken == dataclasses.replace(
        waiting,
        status=TaskStatus.RUNNING,
        lease_owner="host:1",
        lease_expires_at=99.0,
        tries=2,
        started_at="2026-11-28T00:01:00Z",
    )
