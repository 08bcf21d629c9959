"""How fast this machine is right now, for reading figures taken at different times.

This virtual machine's speed varies from hour to hour, and not evenly: the floor script's
W2 (an fsync per task) follows the disk, IdeaMine's runs mostly follow the CPU and hand
work between threads (the SQLite writer). ``gauges`` measures all three in about a second: a
fixed pure-Python loop, a small write's fsync, and a round trip between two threads.
"""

from __future__ import annotations

import os
import queue
import statistics
import tempfile
import threading
import time

__all__ = ["gauges"]

LOOP = 3_000_000  # additions in the CPU gauge: ~0.15–0.5 s on this machine
SYNCS = 100  # fsyncs in the disk gauge
TRIPS = 2000  # round trips in the thread gauge


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


def thread_trip_us(trips: int = TRIPS) -> float:
    """The median time for a value to go to another thread and back, in µs."""
    there: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    back: queue.SimpleQueue[int] = queue.SimpleQueue()

    def echo() -> None:
        while (value := there.get()) is not None:
            back.put(value)

    echoer = threading.Thread(target=echo, name="ideamine-gauge")
    echoer.start()
    times = []
    try:
        for trip in range(trips):
            started = time.perf_counter()
            there.put(trip)
            back.get()
            times.append(time.perf_counter() - started)
    finally:
        there.put(None)
        echoer.join()
    return statistics.median(times) * 1e6


def gauges() -> dict[str, float]:
    """``cpu_loop_s``, ``fsync_ms`` and ``thread_trip_us`` measured now."""
    return {
        "cpu_loop_s": round(cpu_seconds(), 3),
        "fsync_ms": round(fsync_ms(), 3),
        "thread_trip_us": round(thread_trip_us(), 1),
    }
