"""`ideamine db cleanup`: whole finished runs archived, then deleted; live ones untouched."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.acceptance.conftest import ideamine, only_run_id


def test_cleanup_archives_and_deletes_whole_finished_runs(
    tmp_path: Path, callable_config: Path
) -> None:
    done = ideamine(
        "run",
        "a marketplace for farmers",
        "--config",
        str(callable_config),
        "--model",  # a run_models row, which retention once could not delete
        "offline:template",
        "-q",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    run_id = only_run_id(tmp_path)
    with closing(sqlite3.connect(tmp_path / "ideamine.db")) as db:
        stored = db.execute("SELECT COUNT(*) FROM events WHERE run_id = ?", (run_id,)).fetchone()
        assert db.execute("SELECT COUNT(*) FROM run_models").fetchone() == (1,)

    recent = ideamine("db", "cleanup", "--older-than", "1", cwd=tmp_path)
    assert recent.returncode == 0, recent.stderr
    assert "deleted 0 run(s)" in recent.stdout
    assert only_run_id(tmp_path) == run_id

    cleaned = ideamine("db", "cleanup", "--older-than", "0", "--archive", "archive", cwd=tmp_path)

    assert cleaned.returncode == 0, cleaned.stderr
    assert "deleted 1 run(s), archived to archive" in cleaned.stdout
    lines = (tmp_path / "archive" / f"{run_id}.events.jsonl").read_text().splitlines()
    assert len(lines) == stored[0]
    assert [json.loads(line)["id"] for line in lines] == sorted(
        json.loads(line)["id"] for line in lines
    )
    listed = ideamine("runs", "--json", cwd=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    with closing(sqlite3.connect(tmp_path / "ideamine.db")) as db:
        for table in ("events", "tasks", "phases", "artifacts", "task_outputs", "run_models"):
            left = db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,))
            assert left.fetchone() == (0,), table


def test_cleanup_refuses_a_negative_age(tmp_path: Path) -> None:
    refused = ideamine("db", "cleanup", "--older-than", "-1", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--older-than" in refused.stderr
    assert "Traceback" not in refused.stderr
