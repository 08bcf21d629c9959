"""Scale-out on PostgreSQL: worker processes, leases, stalls, signals (SPEC §10 criteria 2, 3
and 10 on PostgreSQL). Every test starts real `ideamine worker` processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.acceptance.conftest import cli_env, ideamine, kill, start, wait_for
from tests.support.configs import SPEC_DAG, write_callable_pipeline

FAST_BEATS = {"interval_seconds": 0.3, "stall_after_missed": 3}


class Fleet:
    """Worker processes against one store, started and stopped by the test."""

    def __init__(self, store: str, cwd: Path, env: dict[str, str]) -> None:
        self.store, self.cwd, self.env = store, cwd, env
        self.workers: dict[str, subprocess.Popen[str]] = {}
        self.outputs: dict[str, str] = {}

    def add(self, name: str, concurrency: int = 4) -> subprocess.Popen[str]:
        process = start(
            "worker",
            "--store",
            self.store,
            "--name",
            name,
            "--poll",
            "0.1",
            "--concurrency",
            str(concurrency),
            "--grace",
            "5",
            cwd=self.cwd,
            env=self.env,
        )
        self.workers[name] = process
        return process

    def stop_all(self) -> None:
        for name, process in self.workers.items():
            if process.poll() is None:
                kill(process)
            elif name not in self.outputs:
                self.outputs[name] = process.communicate(timeout=30)[1]

    def exited(self) -> dict[str, str]:
        """Workers that stopped by themselves (not killed by the test), with their stderr."""
        for name, process in self.workers.items():
            if process.poll() is not None and name not in self.outputs:
                self.outputs[name] = process.communicate(timeout=30)[1]
        return {
            name: self.outputs[name]
            for name, process in self.workers.items()
            if process.returncode not in (None, -9)
        }


@pytest.fixture
def fleet(pg_url: str, tmp_path: Path) -> Iterator[Fleet]:
    crew = Fleet(pg_url, tmp_path, cli_env({"IDEAMINE_TEST_SLEEP": "0.05"}))
    yield crew
    crew.stop_all()


def submit(fleet: Fleet, config: Path, idea: str = "a marketplace for farmers") -> str:
    done = ideamine(
        "run",
        idea,
        "--config",
        str(config),
        "--store",
        fleet.store,
        "--detach",
        cwd=fleet.cwd,
        env=fleet.env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def events(fleet: Fleet, run_id: str) -> list[dict[str, object]]:
    listed = ideamine(
        "events", run_id, "--json", "--store", fleet.store, cwd=fleet.cwd, env=fleet.env
    )
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def status(fleet: Fleet, run_id: str) -> str:
    shown = ideamine(
        "status", run_id, "--json", "--store", fleet.store, cwd=fleet.cwd, env=fleet.env
    )
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["status"])


def test_detached_runs_complete_on_workers_with_each_output_once(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg",
        SPEC_DAG,
        agents_per_phase=3,
        heartbeat=FAST_BEATS,
        parallelism={"story-loop": "iterative"},
    )
    runs = [submit(fleet, config, f"idea number {i} for farmers") for i in range(3)]
    for name in ("w1", "w2"):
        fleet.add(name)
    wait_for(
        lambda: all(status(fleet, r) == "completed" for r in runs),
        timeout=120,
        what="three runs to complete on two workers",
    )
    for run_id in runs:
        ledger = events(fleet, run_id)
        assert (
            max(Counter(e["task_id"] for e in ledger if e["type"] == "task.succeeded").values())
            == 1
        )
        assert (
            ideamine(
                "verify", run_id, "--store", fleet.store, cwd=fleet.cwd, env=fleet.env
            ).returncode
            == 0
        )


def test_criterion_2_a_killed_worker_task_resumes_from_its_checkpoint_elsewhere(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg",
        {"a": [], "b": ["a"]},
        agents_per_phase=1,
        heartbeat=FAST_BEATS,
        function="tests.support.agents:checkpointing",
    )
    run_id = submit(fleet, config)
    first = fleet.add("first")
    wait_for(
        lambda: any(e["type"] == "task.checkpoint" for e in events(fleet, run_id)),
        timeout=60,
        what="the first worker to save a checkpoint",
    )
    kill(first)
    fleet.add("second")
    wait_for(lambda: status(fleet, run_id) == "completed", timeout=60, what="completion")
    ledger = events(fleet, run_id)
    owners = [
        e["payload"]["owner"] for e in ledger if e["type"] == "task.started" and e["phase"] == "a"
    ]
    assert owners[0].endswith("/first") and owners[-1].endswith("/second")
    assert any(e["type"] == "phase.stalled" for e in ledger)
    exported = tmp_path / "out"
    assert (
        ideamine(
            "artifacts",
            run_id,
            "--store",
            fleet.store,
            "--export",
            str(exported),
            cwd=fleet.cwd,
            env=fleet.env,
        ).returncode
        == 0
    )
    result = json.loads((exported / "AResult.json").read_text())
    assert result["value"]["00.AAgent0"] == {"resumed_from": {"key": "00.AAgent0", "step": 1}}


def test_criterion_3_a_stalled_task_is_reclaimed_with_a_smaller_batch_and_the_zombie_loses(
    fleet: Fleet, tmp_path: Path
) -> None:
    """SIGSTOP freezes a worker mid-task (no heartbeats); another worker reports the stall and
    retries with strategy smaller-batch; the frozen worker, thawed, cannot record its late
    result."""
    config = write_callable_pipeline(
        tmp_path / "cfg",
        {"a": []},
        agents_per_phase=1,
        heartbeat=FAST_BEATS,
        function="tests.support.agents:batchy",
    )
    fleet.env["IDEAMINE_TEST_HOLD"] = "4"
    run_id = submit(fleet, config)
    frozen = fleet.add("frozen")
    wait_for(
        lambda: any(e["type"] == "task.started" for e in events(fleet, run_id)),
        timeout=60,
        what="the task to start",
    )
    frozen.send_signal(signal.SIGSTOP)
    fleet.add("healthy")
    wait_for(
        lambda: any(e["type"] == "task.retry" for e in events(fleet, run_id)),
        timeout=90,  # a loaded machine starts the healthy worker slowly
        what="the stall to be handled",
    )
    frozen.send_signal(signal.SIGCONT)
    wait_for(lambda: status(fleet, run_id) == "completed", timeout=60, what="completion")
    ledger = events(fleet, run_id)
    stalled = next(e for e in ledger if e["type"] == "phase.stalled")
    retry = next(e for e in ledger if e["type"] == "task.retry")
    assert stalled["id"] < retry["id"] and stalled["task_id"] == retry["task_id"]
    assert "missed 3 heartbeats" in stalled["payload"]["cause"]
    assert retry["payload"]["strategy"] == "smaller-batch"
    assert retry["payload"]["batch_scale"] == 0.5
    succeeded = [
        e for e in ledger if e["type"] == "task.succeeded" and e["task_id"] == retry["task_id"]
    ]
    assert len(succeeded) == 1  # the thawed zombie's result was rejected, not recorded


def test_criterion_10_security_and_story_loop_start_together_on_postgres(
    fleet: Fleet, tmp_path: Path
) -> None:
    done = ideamine(
        "run",
        "A marketplace where local farmers sell produce to nearby restaurants",
        "--store",
        fleet.store,
        "--detach",
        cwd=fleet.cwd,
        env=fleet.env,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    for name in ("w1", "w2", "w3"):
        fleet.add(name, concurrency=8)
    # the shipped pipeline: its real tools (build, security, story-loop, qa) take minutes
    wait_for(lambda: status(fleet, run_id) == "completed", timeout=720, what="completion")
    ledger = events(fleet, run_id)
    position = {(e["type"], e["phase"]): i for i, e in enumerate(ledger)}
    build_done = position[("phase.completed", "build")]
    security = position[("phase.started", "security")]
    story = position[("phase.started", "story-loop")]
    assert build_done < min(security, story)
    between = ledger[min(security, story) + 1 : max(security, story)]
    assert not [e for e in between if str(e["type"]).startswith("task.")]


def test_pause_lets_in_flight_tasks_finish_and_claims_nothing_until_resumed(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", SPEC_DAG, agents_per_phase=3, heartbeat=FAST_BEATS
    )
    fleet.env["IDEAMINE_TEST_SLEEP"] = "0.5"  # ≥ 5 s left after critique: pause lands mid-run
    run_id = submit(fleet, config)
    fleet.add("w1")
    wait_for(
        lambda: any(e["phase"] == "critique" for e in events(fleet, run_id)),
        timeout=60,
        what="the run to reach critique",
    )
    paused = ideamine("pause", run_id, "--store", fleet.store, cwd=fleet.cwd, env=fleet.env)
    assert paused.returncode == 0, paused.stderr
    time.sleep(2.0)  # longer than any task: in-flight work has finished by now
    frozen = events(fleet, run_id)
    time.sleep(1.0)
    assert events(fleet, run_id) == frozen  # nothing new was claimed or started
    assert status(fleet, run_id) == "paused"
    resumed = ideamine(
        "resume", run_id, "--detach", "--store", fleet.store, cwd=fleet.cwd, env=fleet.env
    )
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: status(fleet, run_id) == "completed", timeout=120, what="completion")


def test_cancel_stops_a_run_for_good(fleet: Fleet, tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", SPEC_DAG, agents_per_phase=2, heartbeat=FAST_BEATS
    )
    fleet.env["IDEAMINE_TEST_SLEEP"] = "1.0"  # ≥ 26 s in all: cancel lands mid-run under load
    run_id = submit(fleet, config)
    fleet.add("w1")
    wait_for(
        lambda: any(e["phase"] == "ideation" for e in events(fleet, run_id)),
        timeout=60,
        what="the run to reach ideation",
    )
    cancelled = ideamine("cancel", run_id, "--store", fleet.store, cwd=fleet.cwd, env=fleet.env)
    assert cancelled.returncode == 0, cancelled.stderr
    time.sleep(1.5)
    assert status(fleet, run_id) == "cancelled"
    assert not any(e["phase"] == "beta" for e in events(fleet, run_id))
    again = ideamine("cancel", run_id, "--store", fleet.store, cwd=fleet.cwd, env=fleet.env)
    assert again.returncode == 2


def test_sigterm_stops_a_worker_gracefully(fleet: Fleet, tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg",
        {"a": [], "b": ["a"]},
        agents_per_phase=2,
        heartbeat=FAST_BEATS,
        function="tests.support.agents:checkpointing",
    )
    fleet.env["IDEAMINE_TEST_HOLD"] = "60"
    run_id = submit(fleet, config)
    worker = fleet.add("w1")
    wait_for(
        lambda: any(e["type"] == "task.checkpoint" for e in events(fleet, run_id)),
        timeout=60,
        what="a task to be in flight",
    )
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=30)  # the grace period is 5 s; then tasks are handed back
    assert worker.returncode == 0
    released = [e for e in events(fleet, run_id) if e["type"] == "task.retry"]
    assert released and all(e["payload"]["strategy"] == "released" for e in released)


def test_retry_phase_of_a_failed_run(fleet: Fleet, tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "cfg", {"a": [], "b": ["a"]}, agents_per_phase=1, heartbeat=FAST_BEATS
    )
    agent = config / "agents" / "BAgent0.yaml"
    document = yaml.safe_load(agent.read_text())
    document["callable"] = "tests.support.agents:wrong_shape"
    agent.write_text(yaml.safe_dump(document))
    run_id = submit(fleet, config)
    fleet.add("w1")
    wait_for(lambda: status(fleet, run_id) == "failed", timeout=60, what="the run to fail")
    retried = ideamine(
        "retry-phase", run_id, "b", "--store", fleet.store, cwd=fleet.cwd, env=fleet.env
    )
    assert retried.returncode == 0, retried.stderr
    assert "attempt 2" in retried.stdout
    wait_for(lambda: status(fleet, run_id) == "failed", timeout=60, what="attempt 2 to fail")
    attempts = {
        e["payload"].get("attempt")
        for e in events(fleet, run_id)
        if e["type"] == "phase.started" and e["phase"] == "b"
    }
    assert attempts == {1, 2}
