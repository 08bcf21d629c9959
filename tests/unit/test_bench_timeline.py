"""``bench/timeline.py``: one W1 level, step by step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.timeline import window

ROOT = Path(__file__).resolve().parents[2]


def test_the_window_runs_from_the_phases_first_agent_end_to_the_next_phases_first_start() -> None:
    lines = [
        (0.001, "agent prd/0 starts"),
        (0.021, "agent prd/0 ends"),
        (0.022, "agent prd/1 ends"),
        (0.023, "    store.record_outputs 0.50 ms"),
        (0.024, "agent bizdev/0 starts"),
        (0.025, "agent bizdev/1 starts"),
    ]
    assert window(lines, "prd") == lines[1:5]


def test_it_prints_the_level_of_a_real_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.timeline", "--phase", "prd"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count(" ends\n") >= 8 and "agent prd/" in out
    # prd's gate calls no model: judged with its fan-in, whose transaction (with prd's last
    # outputs, ``runtime.finishing``) starts bizdev
    for step in ("FanIn prd begins", "store.run_in_transaction"):
        assert step in out
    assert "ApplyVerdict" not in out
    assert re.search(r"agent bizdev/\d starts", out)
    gap = re.search(r"first agent start: (\d+\.\d+) ms", out)
    assert gap is not None and 0 < float(gap.group(1)) < 1000
