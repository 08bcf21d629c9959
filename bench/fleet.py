"""W1, W2 (N=200) and W3 on PostgreSQL with ``ideamine worker`` processes: runs submitted
with ``ideamine run --detach``, timed from submission to completed (polled via the store)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import psycopg

from bench import configs, execlog, proc
from bench.probe import Probe
from bench.shape import FANOUT_PHASE, expected_final, fanout_expected

SERVER = "postgresql://postgres@127.0.0.1:5432"
CONCURRENCY = "64"
FAST_BEATS = {"interval_seconds": 0.5, "stall_after_missed": 3}
KILL_AFTER = 1.2


@contextmanager
def database(label: str) -> Iterator[str]:
    """A fresh database for one workload, dropped afterwards; yields its URL."""
    name = f"ideamine_bench_{label}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_version() -> str:
    with psycopg.connect(f"{SERVER}/postgres") as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


@contextmanager
def workers(
    url: str, count: int, extra: dict[str, str] | None = None
) -> Iterator[list[Popen[str]]]:
    """``count`` worker processes; stopped with SIGTERM (and reaped) afterwards."""
    fleet = [
        proc.start(
            proc.ideamine(
                "worker", "--store", url, "--concurrency", CONCURRENCY, "--name", f"w{i}"
            ),
            extra=extra,
        )
        for i in range(count)
    ]
    try:
        for worker in fleet:  # each prints "worker … serving" once its store is open
            line = worker.stderr.readline() if worker.stderr else ""
            if "serving" not in line:
                raise RuntimeError(f"worker did not start: {line}")
        yield fleet
    finally:
        for worker in fleet:
            if worker.poll() is None:
                proc.kill_group(worker, 15)


def submit(url: str, config: Path, idea: str) -> str:
    """``ideamine run --detach``; the run id."""
    out = proc.call(proc.ideamine("run", idea, "--config", str(config), "--store", url, "--detach"))
    return out.strip().splitlines()[-1]


def timed_runs(
    url: str, config: Path, workload: str, n: int, reps: int, warmup: int = 1
) -> dict[str, object]:
    """Submit runs one after another; per run the submit-to-done and created-to-done times."""
    submit_walls, store_walls = [], []
    with Probe(url) as probe:
        for rep in range(warmup + reps):
            spawned = time.time()
            run_id = submit(url, config, f"benchmark {workload} run {rep}")
            status, seen = probe.wait_finished(run_id, timeout=300)
            if status.value != "completed" or not _correct(probe, run_id, workload, n):
                raise RuntimeError(f"run {run_id} ended {status} or with a wrong artifact")
            if rep >= warmup:
                submit_walls.append(seen - spawned)
                store_walls.append(seen - probe.created_at(run_id))
    return {"walls": submit_walls, "created_to_done": store_walls}


def _correct(probe: Probe, run_id: str, workload: str, n: int) -> bool:
    if workload == "w1":
        return probe.artifact(run_id, "beta") == expected_final()
    content = probe.artifact(run_id, FANOUT_PHASE)
    value = content.get("value", {}) if isinstance(content, dict) else {}
    return len(value) == n and sum(value.values()) == fanout_expected(n)


def throughput(
    folder: Path, workload: str, count: int, *, n: int = 200, reps: int = 5
) -> dict[str, object]:
    """W1 or W2 on a fresh database with ``count`` workers."""
    if workload == "w1":
        config = configs.w1_pipeline(folder / f"w1-{count}")
    else:
        config = configs.w2_pipeline(folder / f"w2-{count}", n)
    with database(f"{workload}_{count}w") as url, workers(url, count) as fleet:
        figures = timed_runs(url, config, workload, n, reps)
        rss = [proc.vm_hwm_mb(worker.pid) for worker in fleet]
    return {
        "workload": workload,
        "workers": count,
        "n": n if workload == "w2" else None,
        **figures,
        "worker_rss_mb": rss,
    }


def crash_trial(folder: Path) -> dict[str, object]:
    """W3 with two workers: SIGKILL the one running most agents 1.2 s into the run; the other
    reclaims its tasks once their leases (1.5 s here) expire."""
    config = configs.w1_pipeline(folder / "config", slow=True, heartbeat=FAST_BEATS)
    log = folder / "exec.log"
    extra = {"BENCH_EXEC_LOG": str(log), "BENCH_ATTEMPT": "1"}
    with database("w3") as url, workers(url, 2, extra) as fleet, Probe(url) as probe:
        run_id = submit(url, config, "benchmark w3 on two workers")
        proc.wait_until(
            lambda: log.exists() and log.stat().st_size > 0, timeout=60, what="the first agent"
        )
        started = time.time()
        time.sleep(KILL_AFTER)  # then kill mid-level: once some agent is in flight
        proc.wait_until(lambda: bool(execlog.in_flight_by_pid(log)), timeout=10, what="an agent")
        busiest = execlog.in_flight_by_pid(log).most_common(1)[0][0]
        victim = next(w for w in fleet if str(w.pid) == busiest)
        proc.kill_group(victim)
        killed = time.time()
        before = len(execlog.lines(log))
        status, seen = probe.wait_finished(run_id, timeout=300)
        ok = status.value == "completed" and probe.artifact(run_id, "beta") == expected_final()
        pause = probe.longest_pause(run_id, after="run.started")
    return {
        "ok": ok,
        "killed_at_s": round(killed - started, 3),
        "kill_to_done_s": seen - killed,
        "longest_ledger_pause_s": pause,
        **execlog.count(log, before=before).as_dict(),
    }
