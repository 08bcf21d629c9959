"""The event ledger's hash chain: how an event is hashed and how a chain is verified.

Each run has its own chain. An event's hash is SHA-256 over the previous event's hash and the
canonical JSON of the event (id, run, phase, task, type, time, payload), so editing, removing
or reordering any row breaks every link after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ideamine.canonical import canonical_json, canonical_string, sha256_hex
from ideamine.stores.records import EventRecord

__all__ = [
    "GENESIS",
    "ChainReport",
    "chained_hash",
    "event_hash",
    "ledger_kind",
    "verify_chain",
]

GENESIS = "0" * 64


def event_hash(
    prev_hash: str,
    *,
    id: int,
    run_id: str,
    phase: str | None,
    task_id: str | None,
    type: str,
    at: str,
    payload: Mapping[str, object],
) -> str:
    """The hash of one event, chained to ``prev_hash``."""
    return chained_hash(
        prev_hash,
        id=id,
        run_id=run_id,
        phase=phase,
        task_id=task_id,
        type=type,
        at=at,
        payload_json=canonical_json(payload),
    )


def chained_hash(
    prev_hash: str,
    *,
    id: int,
    run_id: str,
    phase: str | None,
    task_id: str | None,
    type: str,
    at: str,
    payload_json: str,
) -> str:
    """``event_hash`` for a payload already in canonical JSON (the text the ledger stores):
    the event's canonical JSON is spelled out around it, key by key in sorted order, rather
    than encoded again."""
    body = (
        f'{{"at":{_text(at)},"id":{int(id)},"payload":{payload_json},"phase":{_text(phase)},'
        f'"run_id":{_text(run_id)},"task_id":{_text(task_id)},"type":{_text(type)}}}'
    )
    return sha256_hex(prev_hash + body)


def _text(value: str | None) -> str:
    """A string (or None) as canonical JSON spells it."""
    if isinstance(value, str):
        return canonical_string(value)
    return canonical_json(value)  # None, or what an edited row holds: spelled all the same


def ledger_kind(event_type: str) -> str:
    """The reporting kind of an event type: task, gate, decision, artifact, cost, signature."""
    if event_type.startswith("task.") or event_type == "phase.stalled":
        return "task"
    if event_type.startswith("phase.gate."):
        return "gate"
    if event_type == "phase.ready":
        return "artifact"
    if event_type.startswith("budget."):
        return "cost"
    if event_type.startswith("dossier."):
        return "signature"
    return "decision"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainReport:
    ok: bool
    checked: int
    broken_at: int | None = None  # id of the first event whose link does not hold
    reason: str = ""


def verify_chain(events: Iterable[EventRecord]) -> ChainReport:
    """Check a run's events, in id order, against their stored hashes."""
    prev = GENESIS
    checked = 0
    last_id = 0
    for event in events:
        if event.id <= last_id:
            return ChainReport(
                ok=False, checked=checked, broken_at=event.id, reason="event ids are not increasing"
            )
        if event.prev_hash != prev:
            return ChainReport(
                ok=False,
                checked=checked,
                broken_at=event.id,
                reason="prev_hash does not match the previous event's hash "
                "(an event was removed or reordered)",
            )
        expected = event_hash(
            prev,
            id=event.id,
            run_id=event.run_id,
            phase=event.phase,
            task_id=event.task_id,
            type=event.type,
            at=event.at,
            payload=event.payload,
        )
        if expected != event.hash:
            return ChainReport(
                ok=False,
                checked=checked,
                broken_at=event.id,
                reason="the event's content does not match its hash (the row was edited)",
            )
        prev, last_id, checked = event.hash, event.id, checked + 1
    return ChainReport(ok=True, checked=checked)
