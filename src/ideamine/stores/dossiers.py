"""Persistence of release dossiers (``release_dossiers``) and the reads a dossier needs that
the ``Store`` protocol does not offer (gate evaluations, the run's state fingerprint).

The SQL stays here (invariant 5). Storing a dossier appends its ``dossier.compiled`` event
(ledger kind ``signature``) in the same transaction (invariant 1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ideamine.clock import Clock, SystemClock, iso
from ideamine.errors import StoreCorruptError, UsageError
from ideamine.stores import queries as q
from ideamine.stores.base import Store
from ideamine.stores.ledger import GENESIS
from ideamine.stores.records import EventDraft
from ideamine.stores.sqlstore import SqlStore

__all__ = ["DossierRecord", "DossierStore", "GateEvaluationRecord", "NewDossier"]

_COLUMNS = "id, run_id, project, version, content, sha256, fingerprint, created_at"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDossier:
    """A compiled, signed dossier to keep."""

    run_id: str
    project: str
    version: str
    content: str  # canonical JSON
    sha256: str
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DossierRecord:
    id: str
    run_id: str
    project: str
    version: str
    content: str
    sha256: str
    fingerprint: str
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GateEvaluationRecord:
    """One gate verdict on a phase attempt (rows exist once the quality loop judges)."""

    id: str
    phase: str
    attempt: int
    passed: bool
    score: float
    threshold: float
    result: Mapping[str, object]
    created_at: str


class DossierStore:
    """Dossier reads and writes over a SQL store (SQLite or PostgreSQL)."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        if not isinstance(store, SqlStore):
            raise UsageError(
                f"{store!r} cannot keep release dossiers",
                hint="use a SQLite file or a postgresql:// store",
            )
        self._store = store
        self._clock = clock or SystemClock()

    async def fingerprint(self, run_id: str) -> tuple[str, str | None]:
        """The hash and time of the run's last event that is not a dossier signature: what
        a dossier was compiled from. Dossier events are left out so that storing a dossier
        does not itself make the run look changed."""

        def work(db: q.Db) -> tuple[str, str | None]:
            rows = db.query(
                "SELECT hash, at FROM events WHERE run_id = ? AND kind <> 'signature' "
                "ORDER BY id DESC LIMIT 1",
                (run_id,),
            )
            return (str(rows[0][0]), str(rows[0][1])) if rows else (GENESIS, None)

        return await self._store.run_read(work)

    async def latest_for_run(self, run_id: str) -> DossierRecord | None:
        """The newest dossier compiled from ``run_id``, if any."""

        def work(db: q.Db) -> DossierRecord | None:
            rows = db.query(
                f"SELECT {_COLUMNS} FROM release_dossiers WHERE run_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (run_id,),
            )
            return _record(rows[0]) if rows else None

        return await self._store.run_read(work)

    async def previous_in_project(self, project: str, *, exclude_run: str) -> DossierRecord | None:
        """The newest dossier of ``project`` compiled from another run than ``exclude_run``."""

        def work(db: q.Db) -> DossierRecord | None:
            rows = db.query(
                f"SELECT {_COLUMNS} FROM release_dossiers WHERE project = ? AND run_id <> ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (project, exclude_run),
            )
            return _record(rows[0]) if rows else None

        return await self._store.run_read(work)

    async def gate_evaluations(self, run_id: str) -> list[GateEvaluationRecord]:
        """Every gate verdict of the run, by phase, attempt and time."""

        def work(db: q.Db) -> list[GateEvaluationRecord]:
            rows = db.query(
                "SELECT id, phase, attempt, passed, score, threshold, result, created_at "
                "FROM gate_evaluations WHERE run_id = ? ORDER BY phase, attempt, created_at",
                (run_id,),
            )
            return [_gate(row) for row in rows]

        return await self._store.run_read(work)

    async def gate_result(self, run_id: str, phase: str, attempt: int) -> dict[str, object] | None:
        """The GateResult of ``phase``'s ``attempt`` (the latest verdict on it), if judged."""

        def work(db: q.Db) -> GateEvaluationRecord | None:
            rows = db.query(
                "SELECT id, phase, attempt, passed, score, threshold, result, created_at "
                "FROM gate_evaluations WHERE run_id = ? AND phase = ? AND attempt = ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (run_id, phase, attempt),
            )
            return _gate(rows[0]) if rows else None

        found = await self._store.run_read(work)
        return dict(found.result) if found else None

    async def save(self, dossier: NewDossier) -> DossierRecord:
        """Keep ``dossier`` with its ``dossier.compiled`` event, atomically. A dossier with
        the same signature already kept for the run is returned instead of a copy."""

        def work(db: q.Db) -> DossierRecord:
            db.lock_run(dossier.run_id)  # two compilers of one run: the second finds the first
            rows = db.query(
                f"SELECT {_COLUMNS} FROM release_dossiers WHERE run_id = ? AND sha256 = ?",
                (dossier.run_id, dossier.sha256),
            )
            if rows:
                return _record(rows[0])
            at = iso(self._clock.now())
            record = DossierRecord(id=uuid.uuid4().hex, created_at=at, **_fields(dossier))
            db.query(
                f"INSERT INTO release_dossiers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.run_id,
                    record.project,
                    record.version,
                    record.content,
                    record.sha256,
                    record.fingerprint,
                    record.created_at,
                ),
            )
            q.append_event(db, dossier.run_id, _compiled_event(record), at)
            return record

        return await self._store.run_in_transaction(work)


def _fields(dossier: NewDossier) -> dict[str, str]:
    return {
        "run_id": dossier.run_id,
        "project": dossier.project,
        "version": dossier.version,
        "content": dossier.content,
        "sha256": dossier.sha256,
        "fingerprint": dossier.fingerprint,
    }


def _compiled_event(record: DossierRecord) -> EventDraft:
    return EventDraft(
        type="dossier.compiled",
        payload={
            "dossier_id": record.id,
            "project": record.project,
            "version": record.version,
            "sha256": record.sha256,
            "fingerprint": record.fingerprint,
        },
    )


def _record(row: q.Row) -> DossierRecord:
    return DossierRecord(
        id=str(row[0]),
        run_id=str(row[1]),
        project=str(row[2]),
        version=str(row[3]),
        content=str(row[4]),
        sha256=str(row[5]),
        fingerprint=str(row[6]),
        created_at=str(row[7]),
    )


def _gate(row: q.Row) -> GateEvaluationRecord:
    try:
        result = json.loads(row[6])
    except (TypeError, ValueError) as exc:
        raise StoreCorruptError(
            f"gate evaluation {row[0]}: stored JSON does not decode ({exc})",
            hint="restore the database from a backup",
        ) from exc
    return GateEvaluationRecord(
        id=str(row[0]),
        phase=str(row[1]),
        attempt=int(row[2]),
        passed=bool(row[3]),
        score=float(row[4]),
        threshold=float(row[5]),
        result=result if isinstance(result, dict) else {"value": result},
        created_at=str(row[7]),
    )
