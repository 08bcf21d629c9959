"""DESIGN.md invariants 1, 2, 4 and 5 checked against real runs and the source tree.

Each test names its invariant; docs/invariants.md maps every invariant to its tests.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.support.configs import SPEC_DAG, write_callable_pipeline
from tests.support.runs import drive_new_run

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import PhaseStatus, TaskStatus
from ideamine.runtime.runner import Runner
from ideamine.stores import queries as q
from ideamine.stores.observability import cleanup_old_runs, delete_runs, old_finished_runs
from ideamine.stores.records import EventDraft, RunRecord
from ideamine.stores.sqlite import SqliteStore
from ideamine.stores.sqlstore import SqlStore

SRC = Path(__file__).resolve().parents[2] / "src" / "ideamine"
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX))\b",
    re.IGNORECASE | re.DOTALL,
)


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


async def _drive(db: Path, config: Path, concurrency: int) -> tuple[SqliteStore, RunRecord]:
    store = await service.open_store(str(db))
    return store, await drive_new_run(store, config, concurrency=concurrency)


def test_invariant_1_every_state_change_has_its_ledger_event(tmp_path: Path) -> None:
    """Every task output, phase pass and artifact row is matched by its event."""
    config = write_callable_pipeline(
        tmp_path / "cfg", SPEC_DAG, agents_per_phase=3, parallelism={"story-loop": "iterative"}
    )

    async def check() -> None:
        store, run = await _drive(tmp_path / "x.db", config, 8)
        try:
            _, phases, tasks = await store.run_rows(run.id)
            events = await service.all_events(store, run.id)
            types = Counter(e.type for e in events)
            succeeded = [t for t in tasks if t.status is TaskStatus.SUCCEEDED]
            assert types["task.succeeded"] == len(succeeded) == len(tasks)
            assert {e.task_id for e in events if e.type == "task.succeeded"} == {
                t.id for t in tasks
            }
            created = [
                k
                for e in events
                if e.type in ("phase.progress", "phase.ready")  # ready creates the judge
                for k in [*e.payload.get("created", []), *e.payload.get("settled", [])]
            ]  # type: ignore[attr-defined]
            assert sorted(created) == sorted(t.key for t in tasks)
            assert types["phase.gate.passed"] == 13 == sum(t.key == "~gate" for t in tasks)
            assert (
                types["phase.completed"]
                == sum(p.status is PhaseStatus.PASSED for p in phases)
                == 13
            )
            listed = {
                i
                for e in events
                if e.type == "phase.ready"
                for i in e.payload["artifacts"].values()
            }  # type: ignore[attr-defined]
            assert listed == {a.id for a in await store.artifacts(run.id)}
            assert types["run.created"] == types["run.started"] == types["run.completed"] == 1
        finally:
            await store.close()

    asyncio.run(check())


RETENTION = {
    SRC / "stores" / "observability.py",
    SRC / "stores" / "migrations" / "postgresql" / "0004_observability.sql",
    SRC / "stores" / "migrations" / "postgresql" / "0005_quality.sql",  # the same, redefined
}


def test_invariant_1_the_ledger_is_never_updated_or_deleted() -> None:
    """No statement updates ledger rows, and only retention deletes them, whole runs at a
    time (test_retention_removes_whole_runs_and_keeps_other_chains_intact)."""
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if path not in RETENTION
        for line, text in _string_literals(path)
        if re.search(r"(UPDATE\s+events|DELETE\s+FROM\s+(events|\{))", text, re.I)
    ]
    offenders += [
        str(p)
        for p in SRC.rglob("*.sql")
        # no trigger on the ledger (other tables' triggers may not touch it either)
        if re.search(r"(UPDATE\s+events|TRIGGER\b[^;]*?\bON\s+events\b)", p.read_text(), re.I)
        or (p not in RETENTION and re.search(r"DELETE\s+FROM\s+events", p.read_text(), re.I))
    ]
    assert offenders == []
    for path in RETENTION:
        for statement in re.findall(r"DELETE\s+FROM\s+\S+\s+WHERE[^;\n]*", path.read_text()):
            assert re.search(r"\b(run_id|id|recorded_at)\b", statement), statement


def test_retention_removes_whole_runs_and_keeps_other_chains_intact(tmp_path: Path) -> None:
    config = write_callable_pipeline(tmp_path / "cfg", {"a": [], "b": ["a"]}, agents_per_phase=2)

    async def check() -> None:
        store, old = await _drive(tmp_path / "x.db", config, 4)
        try:
            pipeline = load_pipeline(config)
            new = await service.create_run(
                store, pipeline, "a second idea", constraints={}, source="cli", config_dir=config
            )
            await Runner(store, pipeline).drive(new.id)
            assert isinstance(store, SqlStore)
            gone = await cleanup_old_runs(store, days=0, now=time.time() + 10)
            assert sorted(gone) == sorted([old.id, new.id])
            kept = await service.create_run(
                store, pipeline, "a third idea", constraints={}, source="cli", config_dir=config
            )
            await Runner(store, pipeline).drive(kept.id)
            assert await cleanup_old_runs(store, days=1, now=time.time()) == []
            assert (await service.verify_run(store, kept.id)).ok
            assert [r.id for r in await store.list_runs()] == [kept.id]
        finally:
            await store.close()

    asyncio.run(check())


def test_retention_keeps_runs_that_change_between_being_chosen_and_deleted(
    tmp_path: Path,
) -> None:
    """A run resumed, or written to, after cleanup chose (and archived) it is not deleted:
    nothing live goes, and an archive holds every deleted event."""
    config = write_callable_pipeline(tmp_path / "cfg", {"a": [], "b": ["a"]}, agents_per_phase=2)

    async def check() -> None:
        store, resumed = await _drive(tmp_path / "x.db", config, 4)
        try:
            pipeline = load_pipeline(config)
            written, untouched = [
                await Runner(store, pipeline).drive(
                    (
                        await service.create_run(
                            store, pipeline, idea, constraints={}, source="cli", config_dir=config
                        )
                    ).id
                )
                for idea in ("a second idea", "a third idea")
            ]
            assert isinstance(store, SqlStore)
            with sqlite3.connect(tmp_path / "x.db") as raw:  # as if it had failed: resumable
                raw.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (resumed.id,))
            later = time.time() + 10
            chosen = await old_finished_runs(store, days=0, now=later)
            assert set(chosen) == {resumed.id, written.id, untouched.id}

            await store.reopen_run(resumed.id, driver="h:1", dead_owners=[], now=time.time())
            await store.run_in_transaction(
                lambda db: q.append_event(
                    db, written.id, EventDraft(type="dossier.signed"), "2026-01-01T00:00:00Z"
                )
            )
            assert await delete_runs(store, chosen, days=0, now=later) == [untouched.id]

            assert sorted(r.id for r in await store.list_runs()) == sorted([resumed.id, written.id])
            for kept in (resumed.id, written.id):
                assert (await service.verify_run(store, kept)).ok
        finally:
            await store.close()

    asyncio.run(check())


def test_invariant_2_outputs_are_written_once_per_key(tmp_path: Path) -> None:
    """Each (run, phase, attempt, key) has exactly one output and one task.succeeded; the
    kill-and-resume acceptance test shows resume never re-runs a recorded task."""
    config = write_callable_pipeline(tmp_path / "cfg", SPEC_DAG, agents_per_phase=2)

    async def check() -> None:
        store, run = await _drive(tmp_path / "x.db", config, 4)
        try:
            events = await service.all_events(store, run.id)
            keys = Counter(
                (e.phase, e.payload["key"]) for e in events if e.type == "task.succeeded"
            )
            assert set(keys.values()) == {1}
            for phase in SPEC_DAG:
                outputs = await store.outputs(run.id, phase, 1)
                assert sorted(outputs)[-1] == "~gate"  # the judge's verdict, also once
                assert len(outputs) == 3
        finally:
            await store.close()

    asyncio.run(check())


def test_invariant_4_fan_in_ignores_completion_order(tmp_path: Path) -> None:
    """One task at a time and 32 at once finish in different orders; the artifacts agree
    byte for byte (same SHA-256). The hypothesis property test in
    tests/unit/engine/test_fanin.py proves the same for arbitrary outputs."""
    config = write_callable_pipeline(
        tmp_path / "cfg", SPEC_DAG, agents_per_phase=6, parallelism={"story-loop": "iterative"}
    )

    async def hashes(db: Path, concurrency: int) -> dict[str, str]:
        store, run = await _drive(db, config, concurrency)
        try:
            return {a.type: a.content_hash for a in await store.artifacts(run.id)}
        finally:
            await store.close()

    serial = asyncio.run(hashes(tmp_path / "serial.db", 1))
    wide = asyncio.run(hashes(tmp_path / "wide.db", 32))
    assert serial == wide and len(serial) == 13


def test_invariant_5_no_sql_outside_stores() -> None:
    """SQL text appears only under ideamine/stores/."""
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if "stores" not in path.relative_to(SRC).parts
        for line, text in _string_literals(path)
        if SQL.search(text)
    ]
    assert offenders == []


def test_invariant_5_no_driver_import_outside_stores() -> None:
    """Only stores/ may import a database driver, so no driver exception can escape elsewhere."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if "stores" in path.relative_to(SRC).parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] in {"sqlite3", "psycopg", "psycopg_pool"} for n in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
