"""A run SIGKILLed at any point resumes to the same artifacts without redoing finished work."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tests.acceptance.conftest import (
    artifact_hashes,
    cli_env,
    events_so_far,
    ideamine,
    kill,
    only_run_id,
    read_events,
    start,
    wait_for,
)

from ideamine.stores.records import EventRecord

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"


def _succeeded(events: Sequence[EventRecord], phase: str) -> int:
    return sum(1 for e in events if e.type == "task.succeeded" and e.phase == phase)


def _started(events: Sequence[EventRecord], phase: str) -> int:
    return sum(1 for e in events if e.type == "task.started" and e.phase == phase)


KILL_POINTS: dict[str, Callable[[Sequence[EventRecord]], bool]] = {
    # 4 parallel agents: some finished, some still sleeping
    "inside a parallel fan-out": lambda ev: (
        1 <= _succeeded(ev, "ideation") < 4 and _started(ev, "ideation") == 4
    ),
    # the sequential phase: the second agent is running
    "inside a sequential phase": lambda ev: (
        _succeeded(ev, "intake") == 1 and _started(ev, "intake") == 2
    ),
    # two at a time: mid-way through build
    "inside a capped fan-out": lambda ev: _succeeded(ev, "build") == 2,
    # the loop's second iteration, alongside the security fan-out
    "inside a loop iteration": lambda ev: 5 <= _succeeded(ev, "story-loop") < 8,
}


@pytest.fixture
def reference_hashes(tmp_path: Path, callable_config: Path) -> dict[str, str]:
    """Artifacts of the same idea run once without interruption."""
    folder = tmp_path / "reference"
    folder.mkdir()
    done = ideamine("run", IDEA, "--config", str(callable_config), "-q", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return artifact_hashes(folder, only_run_id(folder))


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_redoes_no_finished_task(
    tmp_path: Path, callable_config: Path, reference_hashes: dict[str, str], point: str
) -> None:
    """SIGKILL at ``point``; resume completes with no recorded task run twice and with
    artifacts byte-identical (same SHA-256) to the uninterrupted run."""
    folder = tmp_path / "killed"
    folder.mkdir()
    log = tmp_path / "exec.log"
    env = cli_env({"IDEAMINE_TEST_SLEEP": "0.1", "IDEAMINE_TEST_EXEC_LOG": str(log)})
    process = start("run", IDEA, "--config", str(callable_config), "-q", cwd=folder, env=env)
    db = folder / "ideamine.db"
    try:
        wait_for(lambda: KILL_POINTS[point](events_so_far(db)), timeout=60, what=point)
    finally:
        kill(process)
    before = read_events(db)
    finished_before = {e.task_id for e in before if e.type == "task.succeeded"}
    run_id = before[0].run_id

    resumed = ideamine("resume", run_id, "-q", cwd=folder, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    after = read_events(db, run_id)
    later = [e for e in after if e.id > before[-1].id]
    assert not [e for e in later if e.type == "task.started" and e.task_id in finished_before]
    successes = Counter(e.task_id for e in after if e.type == "task.succeeded")
    assert successes and max(successes.values()) == 1
    starts = Counter(
        line.split()[2] for line in log.read_text().splitlines() if line.startswith("start")
    )
    # agents log their starts (the gate judges do not: the events above cover them)
    finished_keys = {task_id.split(".", 3)[3] for task_id in finished_before} - {"~gate"}
    assert all(starts[key] == 1 for key in finished_keys)
    assert artifact_hashes(folder, run_id) == reference_hashes
    assert ideamine("verify", run_id, cwd=folder).returncode == 0


@pytest.mark.slow
def test_resume_refuses_a_changed_config_unless_migrating(
    tmp_path: Path, callable_config: Path
) -> None:
    """A run is pinned to its config manifest: resuming under an edited config names the
    changed file and stops; --migrate adopts the new config and finishes."""
    env = cli_env({"IDEAMINE_TEST_SLEEP": "0.1"})
    process = start("run", IDEA, "--config", str(callable_config), "-q", cwd=tmp_path, env=env)
    db = tmp_path / "ideamine.db"
    try:
        wait_for(
            lambda: _started(events_so_far(db), "ideation") > 0,
            timeout=60,
            what="ideation to start",
        )
    finally:
        kill(process)
    run_id = read_events(db)[0].run_id
    qa = callable_config / "phases" / "qa.yaml"
    qa.write_text(qa.read_text().replace("test phase qa", "edited after the run started"))

    refused = ideamine("resume", run_id, cwd=tmp_path, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "phases/qa.yaml changed" in refused.stderr and "--migrate" in refused.stderr

    migrated = ideamine("resume", run_id, "--migrate", "-q", cwd=tmp_path, env=env)
    assert migrated.returncode == 0, migrated.stderr
