"""The SQL both stores share, written once: runs, phases and events here, the tasks table in
``task_queries``. Each function runs inside the caller's transaction.

Placeholders are ``?``; a dialect whose driver wants another style converts them once in its
``Db`` adapter. Only claiming, wake-ups and locking differ between dialects, and live there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from ideamine.canonical import canonical_json
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.errors import RunNotFoundError, StoreCorruptError
from ideamine.stores.ledger import GENESIS, chained_hash, ledger_kind
from ideamine.stores.manifests import Manifests
from ideamine.stores.records import (
    EventDraft,
    EventRecord,
    NewRun,
    PhaseRecord,
    RunRecord,
)

__all__ = ["Db"]

Row = Sequence[Any]


class Db(Protocol):
    """One open transaction."""

    dialect: str  # "sqlite" or "postgresql": for the few queries that must differ (search)
    manifests: Manifests  # the store's decoded run manifests (``stores.manifests``)
    # the hash of the last event this transaction appended to each run's chain: the run is
    # locked (``lock_run``) from its first append until commit, so the head cannot move
    heads: dict[str, str]

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run ``sql`` and return all rows."""
        ...

    def query_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one writing statement once per parameter row (the driver batches them)."""
        ...

    def next_event_ids(self, count: int) -> list[int]:
        """``count`` new, strictly increasing event ids (the dialect decides how)."""
        ...

    def next_task_revision(self) -> int:
        """The revision stamp for tasks this statement writes (migrations 6 to 8): above
        every stored one on SQLite, the transaction id on PostgreSQL. Every statement that
        inserts a task or changes its status or error sets it; no trigger does."""
        ...

    def lock_run(self, run_id: str) -> None:
        """Serialise this transaction's ledger appends with others of the same run, until
        commit (SQLite's single writer already does; PostgreSQL takes an advisory lock)."""
        ...

    def notify(self, run_id: str) -> None:
        """Wake workers waiting for work on ``run_id`` once this transaction commits."""
        ...


def load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise _undecodable(where, exc) from exc


def _undecodable(where: str, exc: Exception) -> StoreCorruptError:
    return StoreCorruptError(
        f"{where}: stored JSON does not decode ({exc})", hint="restore the database from a backup"
    )


def append_event(db: Db, run_id: str, draft: EventDraft, at: str) -> None:
    """Append one event to the run's chain."""
    append_events(db, run_id, [draft], at)


def append_events(db: Db, run_id: str, drafts: Sequence[EventDraft], at: str) -> None:
    """Append ``drafts`` to the run's chain in order: one read of the chain's head, one
    batched insert. The rows are made straight from the drafts (a chain's hot path appends
    some twenty events per phase of a run)."""
    if not drafts:
        return
    db.lock_run(run_id)
    db.notify(run_id)
    prev = db.heads.get(run_id)
    if prev is None:
        rows = db.query(
            "SELECT hash FROM events WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
        )
        prev = str(rows[0][0]) if rows else GENESIS
    values = []
    for event_id, draft in zip(db.next_event_ids(len(drafts)), drafts, strict=True):
        text = canonical_json(draft.payload)  # encoded once: hashed and stored
        digest = chained_hash(
            prev,
            id=event_id,
            run_id=run_id,
            phase=draft.phase,
            task_id=draft.task_id,
            type=draft.type,
            at=at,
            payload_json=text,
        )
        kind = ledger_kind(draft.type)
        values.append(
            (event_id, run_id, draft.phase, draft.task_id, draft.type, kind, at, text, prev, digest)
        )
        prev = digest
    db.query_many(
        "INSERT INTO events (id, run_id, phase, task_id, type, kind, at, payload, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )
    db.heads[run_id] = prev


def append_events_by_run(db: Db, events: Sequence[tuple[str, EventDraft]], at: str) -> None:
    """Append each (run id, draft) to its run's chain, in order within a run, the runs in one
    order (sorted), so two transactions spanning the same runs cannot wait on each other."""
    by_run: dict[str, list[EventDraft]] = {}
    for run_id, draft in events:
        by_run.setdefault(run_id, []).append(draft)
    for run_id in sorted(by_run):
        append_events(db, run_id, by_run[run_id], at)


# -- runs ---------------------------------------------------------------------------------

RUN_COLUMNS = (
    "id, idea, constraints, source, status, config_dir, manifest, manifest_hash, "
    "driver, error, created_at, updated_at, project"
)
RUN_READ = RUN_COLUMNS.replace(" manifest,", "")  # the manifest comes from `_manifest`


def insert_run(db: Db, run: NewRun, at: str) -> None:
    db.query(
        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.id,
            run.idea,
            canonical_json(run.constraints),
            run.source,
            RunStatus.CREATED.value,
            run.config_dir,
            canonical_json(run.manifest),
            run.manifest_hash,
            None,
            None,
            at,
            at,
            run.project,
        ),
    )


S = TypeVar("S", RunStatus, PhaseStatus, TaskStatus)


def status_of(kind: type[S], value: object, where: str | Callable[[], str]) -> S:
    """Decode a stored status; an unknown one means the row was damaged or edited. ``where``
    names the row, or makes its name (only then: reads decode thousands of rows a run)."""
    known = _STATUSES.get(kind)
    if known is None:
        known = _STATUSES[kind] = {member.value: member for member in kind}
    status = known.get(value)
    if status is not None:
        return status  # type: ignore[return-value]  # the map of ``kind``'s own members
    try:
        return kind(str(value))
    except ValueError as exc:
        named = where if isinstance(where, str) else where()
        raise StoreCorruptError(
            f"{named}: unknown status {value!r}",
            hint="restore the database from a backup, or fix the row by "
            "hand to a status listed in docs/cli.md",
        ) from exc


_STATUSES: dict[type[Enum], dict[object, Enum]] = {}  # per status enum: stored value → member


def upsert_run_config(
    db: Db, run_id: str, files: Mapping[str, str], compiled: bytes | None
) -> None:
    db.query("DELETE FROM run_configs WHERE run_id = ?", (run_id,))
    db.query(
        "INSERT INTO run_configs (run_id, files, compiled) VALUES (?, ?, ?)",
        (run_id, canonical_json(dict(files)), compiled),
    )


def select_run_config(db: Db, run_id: str) -> dict[str, str]:
    return select_compiled_config(db, run_id)[0]


def select_compiled_config(db: Db, run_id: str) -> tuple[dict[str, str], bytes | None]:
    rows = db.query("SELECT files, compiled FROM run_configs WHERE run_id = ?", (run_id,))
    if not rows:
        return {}, None
    files, compiled = rows[0]
    if isinstance(compiled, str):  # a hand-edited row: SQLite keeps any type; decoding reports it
        compiled = compiled.encode("utf-8")
    return dict(load_json(files, f"run_configs row {run_id!r}")), (
        None if compiled is None else bytes(compiled)
    )


def repin_run(
    db: Db, run_id: str, manifest: Mapping[str, str], manifest_hash: str, at: str
) -> None:
    db.query(
        "UPDATE runs SET manifest = ?, manifest_hash = ?, updated_at = ? WHERE id = ?",
        (canonical_json(dict(manifest)), manifest_hash, at, run_id),
    )


def run_from_row(db: Db, row: Row) -> RunRecord:
    """A run from a row of ``RUN_READ``, its manifest from the store's cache; should the row
    have changed hash since (a repin between two statements), from one read of the whole row."""
    manifest = _manifest(db, row[0], row[6])
    if manifest is None:
        return _whole_run(db, row[0])
    return _run(row, manifest)


def _manifest(db: Db, run_id: str, manifest_hash: str) -> Mapping[str, str] | None:
    """The manifest stored as ``manifest_hash`` in ``run_id``'s row; None when the row no
    longer holds that hash (repinned, or deleted, since the caller read it: on PostgreSQL
    each statement reads a snapshot of its own)."""
    manifest = db.manifests.get(manifest_hash)
    if manifest is None:
        rows = db.query(
            "SELECT manifest FROM runs WHERE id = ? AND manifest_hash = ?", (run_id, manifest_hash)
        )
        if not rows:
            return None
        manifest = _decoded_manifest(rows[0][0], run_id)
        db.manifests.put(manifest_hash, manifest)
    return manifest


def _whole_run(db: Db, run_id: str) -> RunRecord:
    rows = db.query(f"SELECT {RUN_READ}, manifest FROM runs WHERE id = ?", (run_id,))
    if not rows:
        raise RunNotFoundError(run_id)  # deleted by retention since the first statement
    row = rows[0]
    manifest = _decoded_manifest(row[-1], run_id)
    db.manifests.put(row[6], manifest)  # hash and manifest of one statement: consistent
    return _run(row, manifest)


def _decoded_manifest(text: str, run_id: str) -> Mapping[str, str]:
    where = f"runs row {run_id!r}"
    decoded = load_json(text, where)
    if not isinstance(decoded, dict):
        raise StoreCorruptError(
            f"{where}: the manifest is a JSON {type(decoded).__name__}, not an object",
            hint="restore the database from a backup",
        )
    return MappingProxyType(decoded)


def _run(row: Row, manifest: Mapping[str, str]) -> RunRecord:
    where = f"runs row {row[0]!r}"
    return RunRecord(
        id=row[0],
        idea=row[1],
        constraints=load_json(row[2], where),
        source=row[3],
        status=status_of(RunStatus, row[4], where),
        config_dir=row[5],
        manifest=manifest,
        manifest_hash=row[6],
        driver=row[7],
        error=row[8],
        created_at=row[9],
        updated_at=row[10],
        project=row[11],
    )


def select_run(db: Db, run_id: str) -> RunRecord | None:
    rows = db.query(f"SELECT {RUN_READ} FROM runs WHERE id = ?", (run_id,))
    return run_from_row(db, rows[0]) if rows else None


def select_runs(db: Db, limit: int) -> list[RunRecord]:
    rows = db.query(f"SELECT {RUN_READ} FROM runs ORDER BY created_at DESC, id LIMIT ?", (limit,))
    return [run_from_row(db, row) for row in rows]


def plain_text(value: str | None) -> str | None:
    """Free text (error messages) as every dialect stores it: PostgreSQL refuses NUL, so NUL
    is written as the visible escape ``\\x00`` everywhere (invariant 8: same behaviour)."""
    return None if value is None else value.replace("\x00", "\\x00")


def update_run(
    db: Db, run_id: str, status: RunStatus, at: str, *, error: str | None, driver: str | None
) -> None:
    error = plain_text(error)
    if status.final:  # nothing advances it again: its advance lease goes with it
        db.query(
            "UPDATE runs SET status = ?, error = ?, driver = ?, updated_at = ?, "
            "advance_owner = NULL, advance_expires_at = NULL WHERE id = ?",
            (status.value, error, driver, at, run_id),
        )
        return
    db.query(
        "UPDATE runs SET status = ?, error = ?, driver = ?, updated_at = ? WHERE id = ?",
        (status.value, error, driver, at, run_id),
    )


# -- phases -------------------------------------------------------------------------------

_PHASE_COLUMNS = "run_id, phase, attempt, status, started_at, finished_at, error"


def insert_phase(db: Db, run_id: str, phase: str, attempt: int, at: str) -> None:
    db.query(
        f"INSERT INTO phases ({_PHASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (run_id, phase, attempt, PhaseStatus.RUNNING.value, at, None, None),
    )


def update_phase(
    db: Db,
    run_id: str,
    phase: str,
    attempt: int,
    status: PhaseStatus,
    at: str | None,
    error: str | None,
) -> None:
    db.query(
        "UPDATE phases SET status = ?, finished_at = ?, error = ? "
        "WHERE run_id = ? AND phase = ? AND attempt = ?",
        (status.value, at, plain_text(error), run_id, phase, attempt),
    )


def select_phases(db: Db, run_id: str) -> list[PhaseRecord]:
    rows = db.query(
        f"SELECT {_PHASE_COLUMNS} FROM phases WHERE run_id = ? ORDER BY started_at, phase, attempt",
        (run_id,),
    )
    return [_phase_from_row(r) for r in rows]


def select_phase(db: Db, run_id: str, phase: str, attempt: int) -> PhaseRecord | None:
    """One phase attempt (by its primary key), or None."""
    rows = db.query(
        f"SELECT {_PHASE_COLUMNS} FROM phases WHERE run_id = ? AND phase = ? AND attempt = ?",
        (run_id, phase, attempt),
    )
    return _phase_from_row(rows[0]) if rows else None


def _phase_from_row(r: Row) -> PhaseRecord:
    return PhaseRecord(
        run_id=r[0],
        phase=r[1],
        attempt=r[2],
        status=status_of(PhaseStatus, r[3], lambda: f"phases row {r[0]}/{r[1]}#{r[2]}"),
        started_at=r[4],
        finished_at=r[5],
        error=r[6],
    )


# -- events -------------------------------------------------------------------------------


def select_events(db: Db, run_id: str, after_id: int, limit: int) -> list[EventRecord]:
    rows = db.query(
        "SELECT id, run_id, phase, task_id, type, kind, at, payload, prev_hash, "
        "hash FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
        (run_id, after_id, limit),
    )
    return [
        EventRecord(
            id=r[0],
            run_id=r[1],
            phase=r[2],
            task_id=r[3],
            type=r[4],
            kind=r[5],
            at=r[6],
            payload=_payload(r[7]),
            prev_hash=r[8],
            hash=r[9],
        )
        for r in rows
    ]


def _payload(text: str) -> Mapping[str, object]:
    """A payload that no longer decodes still verifies (as broken) instead of crashing."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"__undecodable__": text}
    return value if isinstance(value, dict) else {"__not_an_object__": value}


def insert_phase_metrics(
    db: Db, run_id: str, phase: str, attempt: int, status: str, duration_ms: float, at: str
) -> None:
    totals = db.query(
        "SELECT COALESCE(SUM(m.tokens_in + m.tokens_out), 0), COALESCE(SUM(m.cost_usd), 0) "
        "FROM model_calls m JOIN tasks t ON t.id = m.task_id "
        "WHERE t.run_id = ? AND t.phase = ? AND t.attempt = ?",
        (run_id, phase, attempt),
    )[0]
    counts = db.query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN tries > 1 THEN tries - 1 ELSE 0 END), 0) "
        "FROM tasks WHERE run_id = ? AND phase = ? AND attempt = ?",
        (run_id, phase, attempt),
    )[0]
    db.query(
        "INSERT INTO phase_metrics (run_id, phase, attempt, status, duration_ms, tokens, "
        "cost_usd, tasks, retries, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            phase,
            attempt,
            status,
            duration_ms,
            int(str(totals[0])),
            float(str(totals[1])),
            int(str(counts[0])),
            int(str(counts[1])),
            at,
        ),
    )
