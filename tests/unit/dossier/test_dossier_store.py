"""``DossierStore`` on SQLite and PostgreSQL: migration 0002, rows, events, fingerprints."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ideamine.canonical import canonical_json
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore, NewDossier
from ideamine.stores.ledger import verify_chain
from ideamine.stores.postgres import PostgresStore
from ideamine.stores.records import EventDraft, NewRun
from ideamine.stores.sqlite import SqliteStore

SERVER = os.environ.get("IDEAMINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1/postgres")


def _postgres_database() -> Iterator[str]:
    name = f"dossier_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL server at {SERVER}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def reference(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "d.db")
    else:
        yield from _postgres_database()


def _open(reference: str) -> Store:
    return (
        PostgresStore(reference) if reference.startswith("postgresql") else SqliteStore(reference)
    )


def _run(run_id: str, project: str | None = None) -> NewRun:
    return NewRun(
        id=run_id,
        idea="an idea",
        constraints={},
        source="test",
        config_dir=None,
        manifest={},
        manifest_hash="0" * 64,
        project=project,
    )


def _dossier(run_id: str, fingerprint: str, sha: str, project: str = "p") -> NewDossier:
    return NewDossier(
        run_id=run_id,
        project=project,
        version="0.1.0",
        content=canonical_json({"sha": sha}),
        sha256=sha * 64,
        fingerprint=fingerprint,
    )


async def _scenario(store: Store) -> None:
    assert await store.migrate() >= 2
    dossiers = DossierStore(store)
    await store.create_run(_run("r1"))
    await store.create_run(_run("r2"))
    before, _ = await dossiers.fingerprint("r1")
    assert await dossiers.latest_for_run("r1") is None
    first = await dossiers.save(_dossier("r1", before, "a"))
    # Storing a dossier appends dossier.compiled but leaves the run's fingerprint alone.
    assert (await dossiers.fingerprint("r1"))[0] == before
    assert await dossiers.save(_dossier("r1", before, "a")) == first  # same signature: reused
    events = await store.events("r1")
    compiled = [e for e in events if e.type == "dossier.compiled"]
    assert len(compiled) == 1 and compiled[0].kind == "signature"
    assert compiled[0].payload["sha256"] == "a" * 64 and verify_chain(events).ok
    await store.append_event("r1", EventDraft(type="run.note"))
    after, _ = await dossiers.fingerprint("r1")
    assert after != before
    second = await dossiers.save(_dossier("r1", after, "b"))
    assert await dossiers.latest_for_run("r1") == second
    assert await dossiers.previous_in_project("p", exclude_run="r2") == second
    assert await dossiers.previous_in_project("p", exclude_run="r1") is None
    assert await dossiers.gate_evaluations("r1") == []


def test_dossier_rows_on_both_dialects(reference: str) -> None:
    async def main() -> None:
        store = _open(reference)
        try:
            await _scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_gate_evaluations_are_read_when_they_exist(tmp_path: Path) -> None:
    import sqlite3

    async def seed() -> None:
        store = SqliteStore(tmp_path / "g.db")
        try:
            await store.migrate()
            await store.create_run(_run("r1"))
        finally:
            await store.close()

    asyncio.run(seed())
    with sqlite3.connect(tmp_path / "g.db") as db:
        db.execute(
            "INSERT INTO gate_evaluations VALUES ('g1', 'r1', 'prd', 1, 0, 0.61, 0.7, "
            "'{\"rubrics\": {\"grounding\": 0.61}}', '2026-01-01T00:00:00+00:00')"
        )

    async def read() -> None:
        store = SqliteStore(tmp_path / "g.db")
        try:
            (gate,) = await DossierStore(store).gate_evaluations("r1")
        finally:
            await store.close()
        assert (gate.phase, gate.attempt, gate.passed, gate.score) == ("prd", 1, False, 0.61)
        assert gate.result == {"rubrics": {"grounding": 0.61}}

    asyncio.run(read())
