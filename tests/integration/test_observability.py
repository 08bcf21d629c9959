"""The reporting views, SQL functions and store queries of SPEC §7, each checked against the
rows of real runs: the store methods on both dialects, the views on both, the SQL functions
on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from tests.support.configs import write_callable_pipeline
from tests.support.runs import drive_new_run

from ideamine import service
from ideamine.stores import observability as obs
from ideamine.stores.records import EventDraft
from ideamine.stores.sqlstore import SqlStore

DAG = {"a": [], "b": ["a"]}


async def _finished_run(reference: str, config: Path) -> tuple[SqlStore, str]:
    store = await service.open_store(reference)
    assert isinstance(store, SqlStore)
    return store, (await drive_new_run(store, config)).id


async def _add_gate_row(store: SqlStore, run_id: str, passed: int) -> None:
    # A verdict on an attempt the run never made (phase "z"), so the counts are known.
    await store.run_in_transaction(
        lambda db: db.query(
            "INSERT INTO gate_evaluations (id, run_id, phase, attempt, passed, score, threshold, "
            "result, created_at) VALUES (?, ?, 'z', 1, ?, 0.8, 0.75, '{}', ?)",
            (f"g{passed}", run_id, passed, f"2026-11-25T00:00:0{passed}.000000+00:00"),
        )
    )


def _rows(store: SqlStore, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    return [
        tuple(r) for r in asyncio.run(store.run_in_transaction(lambda db: db.query(sql, params)))
    ]


@pytest.fixture
def finished(store_url: str, tmp_path: Path) -> tuple[SqlStore, str]:
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)
    return asyncio.run(_finished_run(store_url, config))


def test_store_queries_and_views_agree_with_the_run(finished: tuple[SqlStore, str]) -> None:
    store, run_id = finished
    try:
        timeline = _rows(
            store,
            "SELECT phase, status, duration_ms FROM run_timeline WHERE run_id = ? ORDER BY phase",
            (run_id,),
        )
        assert [(p, s) for p, s, _ in timeline] == [("a", "passed"), ("b", "passed")]
        assert all(float(str(d)) >= 0 for _, _, d in timeline)
        assert asyncio.run(obs.cost_breakdown(store, run_id)) == []  # callables make no calls
        assert _rows(store, "SELECT * FROM cost_by_phase WHERE run_id = ?", (run_id,)) == []
        summary = _rows(store, "SELECT run_id, status, phases_passed FROM recent_run_summary")
        assert (run_id, "completed", 2) in summary
        now = time.time()
        performance = asyncio.run(obs.phase_performance(store, days=7, now=now))
        assert sorted(p.phase for p in performance) == ["a", "b"]
        assert all(p.success_rate == 1.0 and p.attempts == 1 for p in performance)
        average = asyncio.run(obs.avg_phase_duration(store, "a", days=7, now=now))
        assert average is not None and average >= 0
        assert asyncio.run(obs.avg_phase_duration(store, "a", days=7, now=now + 30 * 86400)) is None
        asyncio.run(_add_gate_row(store, run_id, 1))
        asyncio.run(_add_gate_row(store, run_id, 0))
        history = [h for h in asyncio.run(obs.gate_history(store, run_id)) if h["phase"] == "z"]
        assert [h["passed"] for h in history] == [0, 1]  # oldest first
        metrics = _rows(store, "SELECT phase, evaluations, passed FROM gate_success_metrics")
        assert ("z", 2, 1) in metrics and ("a", 1, 1) in metrics  # a: the run's own verdict
        assert asyncio.run(obs.cleanup_old_phase_metrics(store, days=1, now=now)) == 0
        assert asyncio.run(obs.cleanup_old_phase_metrics(store, days=0, now=now + 10)) == 2
    finally:
        asyncio.run(store.close())


def test_postgres_views_and_functions(pg_url: str, tmp_path: Path) -> None:
    config = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=2)
    store, run_id = asyncio.run(_finished_run(pg_url, config))
    try:
        asyncio.run(_add_gate_row(store, run_id, 1))
        asyncio.run(store.append_event(run_id, EventDraft(type="phase.progress")))
    finally:
        asyncio.run(store.close())
    with closing(psycopg.connect(pg_url, autocommit=True)) as db:
        performance = db.execute(
            "SELECT phase, attempts, success_rate, p95_ms >= median_ms "
            "FROM phase_performance ORDER BY phase"
        ).fetchall()
        assert performance == [("a", 1, 1.0, True), ("b", 1, 1.0, True)]
        assert db.execute("SELECT * FROM get_cost_breakdown(%s)", (run_id,)).fetchall() == []
        gates = db.execute(
            "SELECT phase, attempt, passed FROM get_gate_history(%s)", (run_id,)
        ).fetchall()
        assert sorted(gates) == [("a", 1, 1), ("b", 1, 1), ("z", 1, 1)]
        average = db.execute("SELECT get_avg_phase_duration('a', 7)").fetchone()
        assert average is not None and average[0] is not None and average[0] >= 0
        assert db.execute("SELECT cleanup_old_phase_metrics(1)").fetchone() == (0,)
        assert db.execute("SELECT cleanup_old_ledger_entries(1)").fetchone() == (0,)
        db.execute("UPDATE runs SET updated_at = '2020-01-01T00:00:00+00:00'")
        assert db.execute("SELECT cleanup_old_ledger_entries(1)").fetchone() == (1,)
        for table in (
            "runs",
            "events",
            "tasks",
            "phases",
            "artifacts",
            "phase_metrics",
            "gate_evaluations",
            "run_configs",
            "run_options",
            "questions",
        ):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
