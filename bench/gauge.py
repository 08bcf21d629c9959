"""How fast this machine is right now, for reading figures taken at different times.

This virtual machine's speed varies from hour to hour, and not evenly: the floor script's
W2 (an fsync per task) follows the disk, IdeaMine's runs mostly follow the CPU. ``gauges``
measures both in about a second: a fixed pure-Python loop, and a small write's fsync.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

__all__ = ["gauges"]

LOOP = 3_000_000  # additions in the CPU gauge: ~0.15–0.5 s on this machine
SYNCS = 100  # fsyncs in the disk gauge


def cpu_seconds(rounds: int = 3) -> float:
    """The median time of ``LOOP`` additions in pure Python."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(LOOP):
            total += i
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fsync_ms(syncs: int = SYNCS) -> float:
    """The median time of an fsync after a 4 KiB write, in a temporary file, in ms."""
    times = []
    with tempfile.NamedTemporaryFile(prefix="ideamine-gauge-") as handle:
        for _ in range(syncs):
            os.write(handle.fileno(), b"x" * 4096)
            started = time.perf_counter()
            os.fsync(handle.fileno())
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def gauges() -> dict[str, float]:
    """``cpu_loop_s`` and ``fsync_ms`` measured now."""
    return {"cpu_loop_s": round(cpu_seconds(), 3), "fsync_ms": round(fsync_ms(), 3)}
