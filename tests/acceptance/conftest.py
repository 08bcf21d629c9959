"""Helpers that drive the real ``ideamine`` command line in subprocesses."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.support.configs import SPEC_DAG, write_callable_pipeline

from ideamine.stores.records import EventRecord
from ideamine.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDEAMINE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def ideamine(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input_bytes: bytes | None = None,
    timeout: float = 600,  # the shipped pipeline runs real tools: minutes on a loaded machine
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ideamine ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ideamine", *args],
        cwd=cwd,
        env=env or cli_env(),
        input=input_bytes.decode("utf-8", "surrogateescape") if input_bytes else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m ideamine ARGS`` in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "ideamine", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process group and reap it."""
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def read_events(db: Path, run_id: str | None = None) -> list[EventRecord]:
    """Every event in the store (of one run if given), read through the real store."""

    async def load() -> list[EventRecord]:
        store = SqliteStore(db)
        try:
            runs = [run_id] if run_id else [r.id for r in await store.list_runs(1000)]
            found: list[EventRecord] = []
            for rid in runs:
                found.extend(await store.events(rid, limit=1_000_000))
            return found
        finally:
            await store.close()

    return asyncio.run(load())


def events_so_far(db: Path) -> list[EventRecord]:
    """``read_events`` of a store another process may still be creating: no events until
    the file exists and its migrations have committed (they create the tables)."""
    if not db.exists():
        return []
    with closing(sqlite3.connect(db, timeout=30)) as connection:
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
    return read_events(db) if found else []


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def only_run_id(cwd: Path, store: str = "ideamine.db") -> str:
    listed = ideamine("runs", "--json", "--store", store, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    runs: list[dict[str, Any]] = json.loads(listed.stdout)
    assert len(runs) == 1
    return str(runs[0]["id"])


def artifact_hashes(cwd: Path, run_id: str, store: str = "ideamine.db") -> dict[str, str]:
    listed = ideamine("artifacts", run_id, "--json", "--store", store, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    rows: Sequence[dict[str, Any]] = json.loads(listed.stdout)
    latest: dict[str, tuple[int, str]] = {}
    for row in rows:
        if row["type"] not in latest or row["version"] > latest[row["type"]][0]:
            latest[row["type"]] = (row["version"], row["content_hash"])
    return {t: h for t, (_, h) in sorted(latest.items())}


@pytest.fixture
def callable_config(tmp_path: Path) -> Path:
    """The SPEC's 13-phase DAG with 4 sleeping Python agents a phase and a 3-step loop."""
    return write_callable_pipeline(
        tmp_path / "config",
        SPEC_DAG,
        agents_per_phase=4,
        parallelism={"intake": "sequential", "build": 2, "story-loop": "iterative"},
    )


FARMERS = "A marketplace where local farmers sell produce to nearby restaurants"


@pytest.fixture(scope="session")
def farmers_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[Path, str]:
    """One default offline run of the farmers idea (README command 1), made once per test
    session by whichever xdist worker asks first, for the tests that only read it: a copy of
    its folder (store and workspace) for this worker, and its run id."""
    root = tmp_path_factory.getbasetemp()
    made = (root if worker_id == "master" else root.parent) / "farmers-run"
    with _exclusive(made.with_suffix(".lock")):
        if not (made / RUN_ID_FILE).is_file():
            shutil.rmtree(made, ignore_errors=True)  # what a worker that failed left behind
            made.mkdir()
            result = ideamine("run", FARMERS, cwd=made, timeout=900)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "completed" in result.stdout
            (made / RUN_ID_FILE).write_text(only_run_id(made))
    copy = tmp_path_factory.mktemp("farmers")
    shutil.copytree(made, copy, dirs_exist_ok=True)
    return copy, (made / RUN_ID_FILE).read_text()


RUN_ID_FILE = "run-id.txt"


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (shared by the xdist workers of one session)."""
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
