"""W3 crash-resume on SQLite: ``ideamine run`` in a subprocess, SIGKILL of its process group
about 1.2 s after the run starts, then ``ideamine resume RUN``.

Times, as the peers report them (their ``t_done`` is taken inside the resumed process when the
workflow returns): restart-to-done from spawning ``ideamine resume`` to the run's
``run.completed`` event; resume-call-to-done from its ``run.resumed`` event (the process has
imported, opened the store, checked the configuration and reclaimed the dead process's
tasks) to ``run.completed``; restart-to-exit to the process's exit, for completeness.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import configs, execlog, proc
from bench.probe import Probe
from bench.shape import expected_final
from ideamine.engine.states import RunStatus

KILL_AFTER = 1.2
IDEA = "benchmark w3 crash and resume"


def _started(process_stdout: object) -> tuple[str, float]:
    """Read ``run ID started`` from the CLI's output: (run id, when it was printed)."""
    for line in process_stdout:  # type: ignore[attr-defined]
        if line.startswith("run ") and " started" in line:
            return line.split()[1], time.time()
    raise RuntimeError("`ideamine run` ended before starting its run")


def trial(folder: Path) -> dict[str, object]:
    """One crash and resume; the figures the peers report for W3."""
    config = configs.w1_pipeline(folder / "config", slow=True)
    store, log = str(folder / "ideamine.db"), folder / "exec.log"
    extra = {"BENCH_EXEC_LOG": str(log), "BENCH_ATTEMPT": "1", "COLUMNS": "200"}
    first = proc.start(
        proc.ideamine(
            "run", IDEA, "--config", str(config), "--store", store, "--concurrency", "64"
        ),
        extra=extra,
    )
    run_id, started = _started(first.stdout)
    time.sleep(max(0.0, started + KILL_AFTER - time.time()))
    killed_at = time.time() - started
    proc.kill_group(first)
    before = len(execlog.lines(log))
    restart = time.time()
    proc.call(
        proc.ideamine("resume", run_id, "--store", store, "--concurrency", "64", "-q"),
        extra={**extra, "BENCH_ATTEMPT": "2"},
    )
    done = time.time()
    with Probe(store) as probe:
        ok = (
            probe.status(run_id) is RunStatus.COMPLETED
            and probe.artifact(run_id, "beta") == expected_final()
        )
        pause = probe.longest_pause(run_id, after="run.resumed")
        resumed_at = probe.event_at(run_id, "run.resumed")
        completed_at = probe.event_at(run_id, "run.completed")
    return {
        "ok": ok,
        "killed_at_s": round(killed_at, 3),
        "restart_to_done_s": completed_at - restart,
        "resume_call_to_done_s": completed_at - resumed_at,
        "restart_to_exit_s": done - restart,
        "longest_ledger_pause_s": pause,
        **execlog.count(log, before=before).as_dict(),
    }


def main(folder: Path, trials: int) -> list[dict[str, object]]:
    """``trials`` independent trials, each in its own scratch folder."""
    return [trial(folder / f"trial{i}") for i in range(trials)]
