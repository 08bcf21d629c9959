"""Chaos on SQLite: the single-process runner (``ideamine run``, then ``ideamine resume``)
SIGKILLed again and again at random points of its run, then resumed to completion.

The points come from a seeded ``random.Random`` (``IDEAMINE_CHAOS_SEED`` replaces the seed;
every failure names the seed and the points, so it reproduces): each is a number of ledger
events the process must add before it is killed (its process group, with SIGKILL), drawn so
that all five kills fall before the run could end. The test ends with the run complete, its
artifacts byte-identical to the undisturbed run's, every task output recorded once (a task
id names its run, phase, attempt and key), no task that had finished before a kill started
again after it (in the store's events and in the agents' own execution log), and the ledger
chain verifying.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.acceptance.conftest import (
    artifact_hashes,
    cli_env,
    ideamine,
    kill,
    only_run_id,
    read_events,
    start,
)
from tests.support.configs import SPEC_DAG, write_callable_pipeline

pytestmark = pytest.mark.slow

SEED = 20261128
KILLS = 5
IDEA = "a tool lending library"


@dataclass(frozen=True)
class Killed:
    """What the store and the execution log held when the runner was killed."""

    last_event: int  # the id of the last event committed before the kill
    finished: frozenset[tuple[str, str]]  # (phase, key) of every task succeeded by then
    log_lines: int  # lines of the agents' execution log by then


def _events(db: Path) -> int:
    """Events committed in the store now (0 before its tables exist)."""
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db, timeout=30)) as connection:
        tables = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone()
        return int(connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]) if tables else 0


def _kill_after(args: list[str], added: int, folder: Path, env: dict[str, str], why: str) -> None:
    """Start ``ideamine ARGS`` and SIGKILL it once it has added ``added`` events to the store."""
    db = folder / "ideamine.db"
    point = _events(db) + added
    process = start(*args, cwd=folder, env=env)
    try:
        deadline = time.monotonic() + 120
        while _events(db) < point:
            ended = process.poll()
            assert ended is None, f"{why}: `ideamine {args[0]}` ended ({ended}) before {point}"
            assert time.monotonic() < deadline, f"{why}: no event {point} after 120 s"
            time.sleep(0.005)
    finally:
        if process.poll() is None:  # (reaped already: nothing left to kill)
            kill(process)


def _state(db: Path, log: Path) -> Killed:
    events = read_events(db)
    finished = frozenset(
        (str(e.phase), str(e.payload["key"])) for e in events if e.type == "task.succeeded"
    )
    lines = len(log.read_text().splitlines()) if log.exists() else 0
    return Killed(last_event=events[-1].id, finished=finished, log_lines=lines)


def test_runner_killed_at_random_points_resumes_to_the_same_run(tmp_path: Path) -> None:
    seed = int(os.environ.get("IDEAMINE_CHAOS_SEED", SEED))
    config = write_callable_pipeline(
        tmp_path / "cfg",
        SPEC_DAG,
        agents_per_phase=4,
        parallelism={"intake": "sequential", "build": 2, "story-loop": "iterative"},
    )
    log = tmp_path / "exec.log"
    env = cli_env({"IDEAMINE_TEST_SLEEP": "0.1", "IDEAMINE_TEST_EXEC_LOG": str(log)})
    calm = tmp_path / "calm"
    calm.mkdir()
    done = ideamine("run", IDEA, "--config", str(config), "-q", cwd=calm, env=cli_env())
    assert done.returncode == 0, done.stdout + done.stderr
    expected = artifact_hashes(calm, only_run_id(calm))
    total = _events(calm / "ideamine.db")
    # The first past the run's creation (its id is known after it); together short of the
    # run's end, which resumed processes reach later still (they add events of their own).
    chosen = random.Random(seed)
    points = [chosen.randint(10, total // 6)] + [
        chosen.randint(3, total // 6) for _ in range(KILLS - 1)
    ]
    why = f"seed {seed}, kills after {points} new events (an undisturbed run: {total})"

    folder = tmp_path / "chaos"
    folder.mkdir()
    db = folder / "ideamine.db"
    args = ["run", IDEA, "--config", str(config), "-q"]
    kills: list[Killed] = []
    for added in points:
        _kill_after(args, added, folder, env, why)
        kills.append(_state(db, log))
        args = ["resume", read_events(db)[0].run_id, "-q"]
    run_id = read_events(db)[0].run_id
    resumed = ideamine("resume", run_id, "-q", cwd=folder, env=env)
    assert resumed.returncode == 0, f"{why}\n{resumed.stdout}{resumed.stderr}"

    events = read_events(db, run_id)
    assert events[-1].type == "run.completed", why
    outputs = Counter(e.task_id for e in events if e.type == "task.succeeded")
    assert outputs and max(outputs.values()) == 1, why
    starts = log.read_text().splitlines()
    assert kills[-1].finished, why
    for killed in kills:
        # what the checks below look for is in the log: each agent finished by then started
        logged = {tuple(line.split()[1:3]) for line in starts[: killed.log_lines]}
        agents = {(phase, key) for phase, key in killed.finished if not key.startswith("~")}
        assert agents <= logged, f"{why}: finished but not logged: {agents - logged}"
        again = [
            e.task_id
            for e in events
            if e.id > killed.last_event
            and e.type == "task.started"
            and (e.phase, e.payload["key"]) in killed.finished
        ]
        assert not again, f"{why}: started again after a kill: {again}"
        reran = [
            line
            for line in starts[killed.log_lines :]
            if line.startswith("start ") and tuple(line.split()[1:3]) in killed.finished
        ]
        assert not reran, f"{why}: agents ran again after a kill: {reran}"
    assert artifact_hashes(folder, run_id) == expected, why
    assert ideamine("verify", run_id, cwd=folder).returncode == 0, why
