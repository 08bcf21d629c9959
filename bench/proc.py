"""Process plumbing shared by the workloads: the environment for ``ideamine`` subprocesses,
starting and killing them, peak RSS from /proc, and the ``RESULT {json}`` protocol by which a
child process reports to ``bench/run.py``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
RESULT = "RESULT "


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for children: no stray ``IDEAMINE_*``, the repo on the import path
    (so ``bench.agents`` callables import in every process)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IDEAMINE_", "BENCH_"))}
    path = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH", "")]))
    return {**base, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(extra or {})}


def ideamine(*args: str) -> list[str]:
    """The command line of ``ideamine ARGS`` with this interpreter."""
    return [PYTHON, "-m", "ideamine", *args]


def start(command: Sequence[str], *, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``command`` in its own process group (so it can be killed as a whole)."""
    return subprocess.Popen(
        list(command),
        cwd=ROOT,
        env=env(extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def call(
    command: Sequence[str], *, extra: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """Run ``command`` to completion; its stdout. Raises ``RuntimeError`` on a non-zero exit."""
    done = subprocess.run(
        list(command),
        cwd=ROOT,
        env=env(extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])}… exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return done.stdout


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    """Signal ``process``'s whole group and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    process.communicate(timeout=60)


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set (VmHWM) of a live process, in MiB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.01
) -> None:
    """Poll ``check`` until true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def emit(**fields: object) -> None:
    """Report one result to the parent (one line on stdout)."""
    print(RESULT + json.dumps(fields, sort_keys=True), flush=True)


def results(stdout: str) -> list[dict[str, object]]:
    """The ``RESULT`` lines a child printed."""
    return [
        json.loads(line[len(RESULT) :]) for line in stdout.splitlines() if line.startswith(RESULT)
    ]


def child(module: str, *args: str, timeout: float = 900) -> list[dict[str, object]]:
    """Run ``python -m bench.MODULE ARGS`` (one fresh process) and collect its results."""
    return results(call([PYTHON, "-m", f"bench.{module}", *args], timeout=timeout))
