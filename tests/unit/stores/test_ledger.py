"""The hash-chained event ledger: ids, per-run chains, verification and tamper detection."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ideamine.canonical import canonical_json, sha256_hex
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.stores.ledger import GENESIS, chained_hash, event_hash, ledger_kind, verify_chain
from ideamine.stores.records import EventDraft, EventRecord, NewArtifact, NewRun, RunRecord
from ideamine.stores.sqlite import SqliteStore

MakeRun = Callable[..., RunRecord]


def _events(store: SqliteStore, run_id: str = "run-1") -> list[EventRecord]:
    return asyncio.run(store.events(run_id))


async def _busy_run(store: SqliteStore) -> None:
    """Drive run-1 through most event-writing store methods."""
    claimed = await store.claim_tasks("run-1", owner="w", lease_seconds=30, now=0, limit=2)
    first, second = claimed
    await store.renew_lease(first.task.id, first.lease_token, lease_seconds=30, now=1)
    await store.save_checkpoint(first.task.id, first.lease_token, {"half": "done"})
    await store.record_output(first.task.id, first.lease_token, {"text": "ünïcode ✓"}, [], {})
    await store.fail_task(
        second.task.id, second.lease_token, error="no", retry_at=None, strategy="none"
    )
    await store.append_event("run-1", EventDraft(type="budget.spent", payload={"usd": 0.1}))
    await store.record_artifacts(
        "run-1",
        "ideation",
        1,
        [NewArtifact(type="brief", content={"t": 1}, provenance={})],
        EventDraft(type="phase.ready", phase="ideation"),
    )
    await store.set_phase_status(
        "run-1",
        "ideation",
        1,
        PhaseStatus.PASSED,
        [EventDraft(type="phase.gate.passed", phase="ideation", payload={"score": 0.9})],
    )
    await store.set_run_status("run-1", RunStatus.COMPLETED, EventDraft(type="run.completed"))


def test_event_ids_strictly_increase_across_runs(
    store: SqliteStore, new_run: Callable[..., NewRun]
) -> None:
    async def interleave() -> None:
        await store.create_run(new_run("run-1"))
        await store.create_run(new_run("run-2"))
        await store.set_run_status("run-1", RunStatus.RUNNING, EventDraft(type="run.started"))
        await store.set_run_status("run-2", RunStatus.RUNNING, EventDraft(type="run.started"))
        await store.append_event("run-1", EventDraft(type="run.progress"))

    asyncio.run(interleave())

    assert [event.id for event in _events(store, "run-1")] == [1, 3, 5]
    assert [event.id for event in _events(store, "run-2")] == [2, 4]


def test_each_run_has_its_own_chain_from_genesis(
    store: SqliteStore, new_run: Callable[..., NewRun]
) -> None:
    async def interleave() -> None:
        for run_id in ("run-1", "run-2"):
            await store.create_run(new_run(run_id))
        for run_id in ("run-1", "run-2"):
            await store.set_run_status(run_id, RunStatus.RUNNING, EventDraft(type="run.started"))

    asyncio.run(interleave())

    for run_id in ("run-1", "run-2"):
        first, second = _events(store, run_id)
        assert first.prev_hash == GENESIS
        assert second.prev_hash == first.hash
        assert verify_chain([first, second]).ok


def test_a_real_run_verifies(store: SqliteStore, running_run: MakeRun) -> None:
    running_run(keys=("a", "b"))
    asyncio.run(_busy_run(store))
    events = _events(store)

    report = verify_chain(events)

    assert report.ok, report
    assert report.checked == len(events) >= 12
    assert report.broken_at is None


def test_stored_hash_and_kind_are_computed_from_the_row(
    store: SqliteStore, running_run: MakeRun
) -> None:
    running_run(keys=("a", "b"))
    asyncio.run(_busy_run(store))

    prev = GENESIS
    for event in _events(store):
        assert event.kind == ledger_kind(event.type)
        assert event.hash == event_hash(
            prev,
            id=event.id,
            run_id=event.run_id,
            phase=event.phase,
            task_id=event.task_id,
            type=event.type,
            at=event.at,
            payload=event.payload,
        )
        prev = event.hash


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("payload", '{"key":"a","forged":true}'),
        ("payload", "{not json"),
        ("type", "task.forged"),
        ("at", "1999-01-01T00:00:00.000000+00:00"),
        ("task_id", "someone-else"),
    ],
)
def test_an_edited_row_breaks_the_chain_at_that_event(
    store: SqliteStore,
    running_run: MakeRun,
    raw: sqlite3.Connection,
    column: str,
    value: str,
) -> None:
    running_run(keys=("a", "b"))
    asyncio.run(_busy_run(store))
    events = _events(store)
    target = events[5]
    raw.execute(f"UPDATE events SET {column} = ? WHERE id = ?", (value, target.id))

    report = verify_chain(_events(store))

    assert not report.ok
    assert report.broken_at == target.id
    assert report.checked == 5
    assert "edited" in report.reason


def test_a_removed_row_breaks_the_chain_at_the_next_event(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection
) -> None:
    running_run(keys=("a", "b"))
    asyncio.run(_busy_run(store))
    events = _events(store)
    raw.execute("DELETE FROM events WHERE id = ?", (events[4].id,))

    report = verify_chain(_events(store))

    assert not report.ok
    assert report.broken_at == events[5].id
    assert report.checked == 4
    assert "removed" in report.reason


def test_a_removed_first_row_breaks_the_chain_at_the_new_first(
    store: SqliteStore, running_run: MakeRun, raw: sqlite3.Connection
) -> None:
    running_run(keys=("a",))
    events = _events(store)
    raw.execute("DELETE FROM events WHERE id = ?", (events[0].id,))

    report = verify_chain(_events(store))

    assert (report.ok, report.broken_at, report.checked) == (False, events[1].id, 0)


def test_events_out_of_id_order_do_not_verify(store: SqliteStore, running_run: MakeRun) -> None:
    running_run(keys=("a",))
    events = _events(store)

    reordered = verify_chain([events[1], events[0], *events[2:]])
    repeated = verify_chain([events[0], events[1], events[1]])

    assert (reordered.ok, reordered.broken_at) == (False, events[1].id)
    assert "reordered" in reordered.reason
    assert (repeated.ok, repeated.broken_at, repeated.checked) == (False, events[1].id, 2)
    assert "not increasing" in repeated.reason


def test_a_rewritten_hash_is_caught_by_the_next_link(
    store: SqliteStore, running_run: MakeRun
) -> None:
    """Re-hashing an edited event in place still breaks the link that follows it."""
    running_run(keys=("a",))
    events = _events(store)
    target = events[1]
    forged_payload = {"forged": True}
    forged = dataclasses.replace(
        target,
        payload=forged_payload,
        hash=event_hash(
            target.prev_hash,
            id=target.id,
            run_id=target.run_id,
            phase=target.phase,
            task_id=target.task_id,
            type=target.type,
            at=target.at,
            payload=forged_payload,
        ),
    )

    report = verify_chain([events[0], forged, *events[2:]])

    assert report.broken_at == events[2].id
    assert "removed or reordered" in report.reason


def test_an_empty_ledger_verifies() -> None:
    assert verify_chain([]).ok
    assert verify_chain([]).checked == 0


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("task.started", "task"),
        ("task.succeeded", "task"),
        ("task.retry", "task"),
        ("phase.gate.passed", "gate"),
        ("phase.gate.failed", "gate"),
        ("phase.ready", "artifact"),
        ("budget.spent", "cost"),
        ("budget.exceeded", "cost"),
        ("dossier.signed", "signature"),
        ("run.created", "decision"),
        ("run.resumed", "decision"),
        ("phase.started", "decision"),
        ("phase.readying", "decision"),
        ("taskish", "decision"),
    ],
)
def test_ledger_kind(event_type: str, kind: str) -> None:
    assert ledger_kind(event_type) == kind


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    id_=st.integers(min_value=1, max_value=2**62),
    run_id=_TEXT,
    phase=st.none() | _TEXT,
    task_id=st.none() | _TEXT,
    type_=_TEXT,
    at=_TEXT,
    payload=st.dictionaries(_TEXT, _JSON, max_size=4),
)
def test_an_events_hash_spelled_around_its_payload_text_is_the_canonical_hash(
    id_: int,
    run_id: str,
    phase: str | None,
    task_id: str | None,
    type_: str,
    at: str,
    payload: dict[str, object],
) -> None:
    """The ledger hashes an event over the canonical JSON of the whole event; the store
    spells that text out around the payload's (encoded once, for the row too). Any
    difference would break every stored chain, so the two must agree byte for byte."""
    whole = {
        "id": id_,
        "run_id": run_id,
        "phase": phase,
        "task_id": task_id,
        "type": type_,
        "at": at,
        "payload": payload,
    }
    expected = sha256_hex(GENESIS + canonical_json(whole))
    fields = {"run_id": run_id, "phase": phase, "task_id": task_id, "type": type_, "at": at}
    assert chained_hash(GENESIS, id=id_, payload_json=canonical_json(payload), **fields) == expected
    assert event_hash(GENESIS, id=id_, payload=payload, **fields) == expected
