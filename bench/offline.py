"""The offline pipeline of one real idea, end to end on the shipped defaults: wall time and
the peak RSS of the ``ideamine run`` process (``ru_maxrss`` from ``wait4``)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench import proc

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"


def one(folder: Path) -> dict[str, object]:
    """One ``ideamine run IDEA`` on a fresh store; (wall s, peak RSS MiB, summary line)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = proc.ideamine("run", IDEA, "--store", str(folder / "ideamine.db"), "-q")
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        cwd=folder,
        env=proc.env({"COLUMNS": "200"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = child.stdout.read() if child.stdout else ""
    _, code, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(code)
    summary = next((line for line in out.splitlines() if " completed:" in line), "")
    if child.returncode != 0 or not summary:
        raise RuntimeError(f"the offline run failed ({child.returncode}): {out[-500:]}")
    return {"wall_s": wall, "rss_mb": round(usage.ru_maxrss / 1024, 1), "summary": summary.strip()}
