"""`ideamine verify` detects any edit to, or removal of, a ledger row."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from tests.acceptance.conftest import ideamine, only_run_id


@pytest.fixture
def finished(tmp_path: Path, callable_config: Path) -> tuple[Path, str]:
    done = ideamine(
        "run", "a marketplace for farmers", "--config", str(callable_config), "-q", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return tmp_path, only_run_id(tmp_path)


def _tamper(folder: Path, sql: str) -> None:
    # Deliberate tampering from outside IdeaMine, as an attacker or a careless admin would.
    with closing(sqlite3.connect(folder / "ideamine.db")) as db, db:
        db.execute(sql)


def test_verify_passes_on_an_untouched_ledger(finished: tuple[Path, str]) -> None:
    folder, run_id = finished
    result = ideamine("verify", run_id, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "ledger intact" in result.stdout


def test_verify_detects_an_edited_event(finished: tuple[Path, str]) -> None:
    folder, run_id = finished
    _tamper(folder, 'UPDATE events SET payload = \'{"key":"forged"}\' WHERE id = 10')
    result = ideamine("verify", run_id, cwd=folder)
    assert result.returncode == 1
    assert "broken at event 10" in result.stderr
    assert "edited" in result.stderr


def test_verify_detects_a_removed_event(finished: tuple[Path, str]) -> None:
    folder, run_id = finished
    _tamper(folder, "DELETE FROM events WHERE id = 20")
    result = ideamine("verify", run_id, cwd=folder)
    assert result.returncode == 1
    assert "broken at event 21" in result.stderr
    assert "removed" in result.stderr
