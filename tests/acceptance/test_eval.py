"""``ideamine eval`` end to end: real runs of the shipped pipeline on two SRDD ideas, an
interrupt (Ctrl-C) in the middle, and a second invocation that resumes without redoing
finished work; then a third that finds everything done. Bad input fails with exit 2."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from tests.acceptance.conftest import cli_env, ideamine, start, wait_for

IDEAS = """\
Name,Description,Category
Farm_Market,"A marketplace where local farmers sell fresh produce to nearby restaurants, with orders and delivery slots.",Marketplace
Tool_Library,"A neighbourhood tool lending library: members list drills and ladders, borrow them and return them on time.",Sharing
"""  # noqa: E501


def succeeded_tasks(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            query = "SELECT count(*) FROM tasks WHERE status = 'succeeded'"
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # created, not yet migrated
        return 0


def executions_per_task(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'task.succeeded' GROUP BY task_id"
        ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.slow
def test_eval_resumes_after_an_interrupt_and_reports(tmp_path: Path) -> None:
    (tmp_path / "ideas.csv").write_text(IDEAS)
    args = ("eval", "--ideas", "ideas.csv", "--jobs", "1", "-o", "out")
    first = tmp_path / "out/ideas/Marketplace--Farm_Market/ideamine.db"

    interrupted = start(*args, cwd=tmp_path, env=cli_env())
    wait_for(lambda: succeeded_tasks(first) >= 20, timeout=300, what="the first run's progress")
    interrupted.send_signal(signal.SIGINT)  # Ctrl-C: eval stops its run, resumable
    _, stderr = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130, stderr
    before = succeeded_tasks(first)
    assert 20 <= before < 150

    resumed = ideamine(*args, cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    log = (first.parent / "run.log").read_text()
    assert " run --file " in log and " resume " in log
    assert max(executions_per_task(first)) == 1  # no finished task ran again
    assert "[1/2] Marketplace--Farm_Market: completed 13/13" in resumed.stderr
    assert "eval: wrote" in resumed.stderr

    report = json.loads((tmp_path / "out/report.json").read_text())
    assert (report["ideas"], report["finished"], report["unfinished"]) == (2, 2, [])
    overall = report["overall"]
    assert overall["completeness"] == 1.0 and overall["executability"] == 1.0
    assert overall["validity_rate"] == 1.0 and overall["specificity"] > 1.5
    assert all(t["met"] for t in report["targets"])
    assert "different embedding model" in (tmp_path / "out/report.md").read_text()
    assert (tmp_path / "out/report.html").read_text().startswith("<!doctype html>")
    product = tmp_path / "out/ideas/Sharing--Tool_Library/product/backend/app/main.py"
    assert product.is_file()

    started = time.monotonic()
    again = ideamine(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(done earlier)") == 2
    assert time.monotonic() - started < 120  # nothing was run or measured again


@pytest.mark.parametrize(
    ("extra", "text", "message"),
    [
        ((), None, "cannot read ideas from"),
        ((), "Name,Description\nA,b c d\n", "no Category column"),
        (("--sample", "2", "--per-category", "1"), IDEAS, "exclude each other"),
        (("--model", "nonsense"), IDEAS, "model"),
        (("--jobs", "0"), IDEAS, "--jobs"),
    ],
)
def test_eval_bad_input_exits_2_with_a_hint(
    tmp_path: Path, extra: tuple[str, ...], text: str | None, message: str
) -> None:
    if text is not None:
        (tmp_path / "ideas.csv").write_text(text)
    done = ideamine("eval", "--ideas", "ideas.csv", *extra, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ideamine-eval").exists()
