"""Reporting queries and retention (SPEC §7), the same on SQLite and PostgreSQL.

PostgreSQL also has them as views and SQL functions (migration 0004) for dashboards that
query the database directly; these functions are what IdeaMine itself calls. Time windows are
computed here from the caller's clock, since times are stored as ISO-8601 text.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from ideamine.clock import iso
from ideamine.engine.states import RunStatus
from ideamine.stores import queries as q
from ideamine.stores.sqlstore import SqlStore

__all__ = [
    "PhasePerformance",
    "avg_phase_duration",
    "cleanup_old_phase_metrics",
    "cleanup_old_runs",
    "cost_breakdown",
    "delete_runs",
    "gate_history",
    "old_finished_runs",
    "phase_performance",
]

DAY = 86_400.0
_RUN_TABLES = (
    "bindings",  # the quality loop's rows first: answers refer to questions
    "answers",
    "assumptions",
    "questions",
    "waivers",
    "run_options",
    "release_dossiers",
    "gate_evaluations",
    "phase_metrics",
    "model_calls",
    "task_outputs",
    "artifacts",
    "tasks",
    "phases",
    "events",
    "run_configs",
    "run_models",
)


async def cost_breakdown(store: SqlStore, run_id: str) -> list[dict[str, object]]:
    """Model calls, tokens and USD per phase of a run."""
    rows = await store.run_read(
        lambda db: db.query(
            "SELECT phase, calls, tokens_in, tokens_out, cost_usd FROM cost_by_phase "
            "WHERE run_id = ? ORDER BY phase",
            (run_id,),
        )
    )
    names = ("phase", "calls", "tokens_in", "tokens_out", "cost_usd")
    return [dict(zip(names, row, strict=True)) for row in rows]


async def gate_history(store: SqlStore, run_id: str) -> list[dict[str, object]]:
    """Every gate verdict of a run, oldest first."""
    rows = await store.run_read(
        lambda db: db.query(
            "SELECT phase, attempt, passed, score, threshold, created_at FROM gate_evaluations "
            "WHERE run_id = ? ORDER BY created_at, phase, attempt",
            (run_id,),
        )
    )
    names = ("phase", "attempt", "passed", "score", "threshold", "created_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


async def avg_phase_duration(
    store: SqlStore, phase: str, *, days: float, now: float
) -> float | None:
    """Mean duration in ms of ``phase`` attempts recorded in the last ``days``."""
    rows = await store.run_read(
        lambda db: db.query(
            "SELECT AVG(duration_ms) FROM phase_metrics WHERE phase = ? AND recorded_at > ?",
            (phase, iso(now - days * DAY)),
        )
    )
    return None if rows[0][0] is None else float(str(rows[0][0]))


@dataclass(frozen=True, slots=True, kw_only=True)
class PhasePerformance:
    phase: str
    attempts: int
    avg_ms: float
    median_ms: float
    p95_ms: float
    avg_cost_usd: float
    success_rate: float


async def phase_performance(
    store: SqlStore, *, days: float = 7, now: float
) -> list[PhasePerformance]:
    """Duration (mean, median, p95), cost and success rate per phase over ``days``."""
    rows = await store.run_read(
        lambda db: db.query(
            "SELECT phase, duration_ms, cost_usd, status FROM phase_metrics WHERE recorded_at > ? "
            "ORDER BY phase",
            (iso(now - days * DAY),),
        )
    )
    by_phase: dict[str, list[tuple[float, float, bool]]] = {}
    for phase, duration, cost, status in rows:
        by_phase.setdefault(str(phase), []).append(
            (float(str(duration)), float(str(cost)), status == "passed")
        )
    return [_performance(phase, items) for phase, items in by_phase.items()]


def _performance(phase: str, items: list[tuple[float, float, bool]]) -> PhasePerformance:
    durations = sorted(item[0] for item in items)
    return PhasePerformance(
        phase=phase,
        attempts=len(items),
        avg_ms=statistics.fmean(durations),
        median_ms=statistics.median(durations),
        p95_ms=_percentile(durations, 0.95),
        avg_cost_usd=statistics.fmean(item[1] for item in items),
        success_rate=sum(item[2] for item in items) / len(items),
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (what PostgreSQL's percentile_cont does)."""
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


_FINISHED = tuple(status.value for status in RunStatus if status.finished)
_LAST_EVENT = "(SELECT MAX(e.id) FROM events e WHERE e.run_id = r.id)"  # of run `r`; NULL: none


async def old_finished_runs(store: SqlStore, *, days: float, now: float) -> dict[str, int]:
    """Finished runs last updated more than ``days`` ago, each with the id of its last event
    (0 for none): what ``delete_runs`` checks is still so when it deletes."""
    rows = await store.run_read(
        lambda db: db.query(
            f"SELECT r.id, {_LAST_EVENT} FROM runs r "
            f"WHERE r.status IN ({', '.join('?' * len(_FINISHED))}) AND r.updated_at < ? "
            "ORDER BY r.id",
            (*_FINISHED, _cutoff(days, now)),
        )
    )
    return {str(run_id): int(str(last or 0)) for run_id, last in rows}


async def delete_runs(
    store: SqlStore, runs: Mapping[str, int], *, days: float, now: float
) -> list[str]:
    """Delete whole runs, every row of each, in one transaction; returns the ids deleted.
    Only whole runs go, so every remaining run's ledger chain still verifies. ``runs`` maps
    each run to the id of its last event when it was chosen (and archived): a run resumed,
    updated or written to since is left alone (a later cleanup takes it), so nothing live
    is deleted and an archive holds every event that was deleted."""

    cutoff = _cutoff(days, now)

    def work(db: q.Db) -> list[str]:
        deleted = []
        for run_id, last_event in runs.items():
            if not _unchanged(db, run_id, last_event, cutoff):
                continue
            for table in _RUN_TABLES:
                db.query(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.query("DELETE FROM runs WHERE id = ?", (run_id,))
            deleted.append(run_id)
        return deleted

    return await store.run_in_transaction(work)


def _unchanged(db: q.Db, run_id: str, last_event: int, cutoff: str) -> bool:
    """``run_id`` is still finished, not updated since ``cutoff``, its last event the same."""
    rows = db.query(
        f"SELECT r.status, r.updated_at, {_LAST_EVENT} FROM runs r WHERE r.id = ?",
        (run_id,),
    )
    if not rows:
        return False
    status, updated_at, last = rows[0]
    return status in _FINISHED and str(updated_at) < cutoff and int(str(last or 0)) == last_event


def _cutoff(days: float, now: float) -> str:
    return iso(now - days * DAY)


async def cleanup_old_runs(store: SqlStore, *, days: float, now: float) -> list[str]:
    """Delete whole finished runs last updated more than ``days`` ago; returns their ids.
    Callers that must keep the ledger archive it first (``ideamine db cleanup --archive``)."""
    doomed = await old_finished_runs(store, days=days, now=now)
    return await delete_runs(store, doomed, days=days, now=now)


async def cleanup_old_phase_metrics(store: SqlStore, *, days: float, now: float) -> int:
    """Delete phase_metrics rows older than ``days``; returns how many."""

    def work(db: q.Db) -> int:
        cutoff = iso(now - days * DAY)
        count = int(
            str(
                db.query("SELECT COUNT(*) FROM phase_metrics WHERE recorded_at < ?", (cutoff,))[0][
                    0
                ]
            )
        )
        db.query("DELETE FROM phase_metrics WHERE recorded_at < ?", (cutoff,))
        return count

    return await store.run_in_transaction(work)
