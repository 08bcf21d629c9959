"""``bench/gauge.py``: the machine's speed now, on the CPU and on the disk."""

from __future__ import annotations

from bench import gauge


def test_the_gauges_measure_a_positive_time_for_the_cpu_an_fsync_and_a_thread_trip() -> None:
    measured = gauge.gauges()
    assert set(measured) == {"cpu_loop_s", "fsync_ms", "thread_trip_us"}
    assert 0 < measured["cpu_loop_s"] < 30
    assert 0 < measured["fsync_ms"] < 10_000
    assert 0 < measured["thread_trip_us"] < 1_000_000
