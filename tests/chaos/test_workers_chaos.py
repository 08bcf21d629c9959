"""Chaos on PostgreSQL: workers SIGKILLed at random, backends terminated mid-run.

Each test ends with every run complete, every task output recorded once, no event recorded
twice, every ledger chain verifying, and artifacts equal to an undisturbed run's.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from tests.acceptance.conftest import (
    artifact_hashes,
    cli_env,
    ideamine,
    kill,
    only_run_id,
    wait_for,
)
from tests.acceptance.test_workers import FAST_BEATS, Fleet, events, status, submit
from tests.support.configs import SPEC_DAG, write_callable_pipeline

SEED = 20261125
IDEAS = ["a marketplace for farmers", "a tool lending library", "a clinic queue app"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_callable_pipeline(
        tmp_path / "cfg",
        SPEC_DAG,
        agents_per_phase=4,
        heartbeat=FAST_BEATS,
        parallelism={"story-loop": "iterative"},
    )


@pytest.fixture
def chaos_fleet(pg_url: str, tmp_path: Path) -> Iterator[Fleet]:
    # agents slow enough that the runs outlast several kill rounds on a loaded machine
    crew = Fleet(pg_url, tmp_path, cli_env({"IDEAMINE_TEST_SLEEP": "0.3"}))
    yield crew
    crew.stop_all()


def _undisturbed(config: Path, idea: str, folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    done = ideamine("run", idea, "--config", str(config), "-q", cwd=folder)
    assert done.returncode == 0, done.stderr
    return artifact_hashes(folder, only_run_id(folder))


def _check(fleet: Fleet, run_id: str, expected: dict[str, str]) -> None:
    ledger = events(fleet, run_id)
    outputs = Counter(e["task_id"] for e in ledger if e["type"] == "task.succeeded")
    assert outputs and max(outputs.values()) == 1
    assert len({e["hash"] for e in ledger}) == len(ledger)  # no event recorded twice
    assert (
        ideamine("verify", run_id, "--store", fleet.store, cwd=fleet.cwd, env=fleet.env).returncode
        == 0
    )
    assert artifact_hashes(fleet.cwd, run_id, store=fleet.store) == expected


@pytest.mark.slow
def test_random_worker_kills_lose_nothing(chaos_fleet: Fleet, config: Path, tmp_path: Path) -> None:
    """4 workers, 3 runs; every ~2 s a random worker is SIGKILLed and a new one started."""
    expected = {
        idea: _undisturbed(config, idea, tmp_path / f"ref{i}") for i, idea in enumerate(IDEAS)
    }
    runs = {submit(chaos_fleet, config, idea): idea for idea in IDEAS}
    chance = random.Random(SEED)
    for index in range(4):
        chaos_fleet.add(f"w{index}")
    kills, started = 0, time.monotonic()
    while time.monotonic() - started < 150:
        if all(status(chaos_fleet, r) == "completed" for r in runs):
            break
        time.sleep(2)
        alive = sorted(n for n, p in chaos_fleet.workers.items() if p.poll() is None)
        if not alive:
            pytest.fail(f"every worker exited by itself: {chaos_fleet.exited()}")
        victim = chance.choice(alive)
        kill(chaos_fleet.workers[victim])
        kills += 1
        chaos_fleet.add(f"w{len(chaos_fleet.workers)}")
    assert kills >= 2
    for run_id, idea in runs.items():
        assert status(chaos_fleet, run_id) == "completed"
        _check(chaos_fleet, run_id, expected[idea])


@pytest.mark.slow
def test_backends_terminated_for_seconds_mid_run(
    chaos_fleet: Fleet, config: Path, tmp_path: Path
) -> None:
    """PostgreSQL drops every connection of the database repeatedly for ~4 s; workers
    reconnect with backoff and the run completes intact."""
    expected = _undisturbed(config, IDEAS[0], tmp_path / "ref")
    run_id = submit(chaos_fleet, config, IDEAS[0])
    for name in ("w1", "w2"):
        chaos_fleet.add(name)
    wait_for(
        lambda: any(e["phase"] == "critique" for e in events(chaos_fleet, run_id)),
        timeout=60,
        what="the run to reach critique",
    )
    database = chaos_fleet.store.rsplit("/", 1)[1]
    admin = chaos_fleet.store.rsplit("/", 1)[0] + "/postgres"
    with closing(psycopg.connect(admin, autocommit=True)) as connection:
        until = time.monotonic() + 4
        while time.monotonic() < until:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
            time.sleep(0.2)
    wait_for(
        lambda: status(chaos_fleet, run_id) == "completed",
        timeout=120,
        what="the run to complete after the outage",
    )
    assert chaos_fleet.exited() == {}  # no worker gave up during the outage
    _check(chaos_fleet, run_id, expected)
    assert json.dumps(events(chaos_fleet, run_id))  # the ledger still reads whole
