"""Issue 9's targets, judged from one ``bench/run.py`` result: each one's bound, the measured
figure and whether it is met, so a measurement states its own verdict (README, JSON)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bench.report import table
from bench.shape import LEVELS, W3_SLEEP, K

Results = Mapping[str, Any]
MIB = 1024 * 1024 / 1e6  # MB per MiB: the targets are in MB, /proc reports KiB
W3_MARGIN_S = 0.3
# Phases finish in DAG order; the 8th and 9th (security, story-loop) share level 8, so from
# the 8th phase on, one level fewer than phases is done (8 phases: 7 levels, 9: 8).
SHARED_LEVEL_PHASES = 8


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    bound: str
    measured: str
    met: bool | None  # None: not measured (a --quick pass skips N = 2,000)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _unmeasured(target: str, bound: str) -> Verdict:
    return Verdict(target, bound, "not measured (--quick)", None)


def _w1(results: Results) -> Verdict:
    over = results["w1"]["ideamine"]["overhead_s"]
    floor = results["w1"].get("floor-FULL", {}).get("overhead_s")
    beside = f" (floor FULL {floor:.3f} s)" if floor is not None else ""
    return Verdict("W1 overhead, SQLite", "≤ 0.05 s", f"{over:.4f} s{beside}", over <= 0.05)


def _w2_rate(results: Results) -> Verdict:
    rate = results["w2"]["ideamine"].get("tasks_s_2000")
    floor = results["w2"].get("floor-FULL", {}).get("tasks_s_2000")
    beside = f" (floor FULL {floor})" if floor is not None else ""
    if rate is None:
        return _unmeasured("W2 at N = 2,000, SQLite", "≥ 3,000 tasks/s")
    return Verdict(
        "W2 at N = 2,000, SQLite", "≥ 3,000 tasks/s", f"{rate} tasks/s{beside}", rate >= 3000
    )


def _w2_growth(results: Results) -> Verdict:
    growth = results["w2"]["ideamine"].get("growth")
    if growth is None:
        return _unmeasured("W2 cost per task, 2,000 vs 200", "≤ 1.3×")
    return Verdict("W2 cost per task, 2,000 vs 200", "≤ 1.3×", f"{growth:.2f}×", growth <= 1.3)


def _w2_memory(results: Results) -> Verdict:
    at_2000 = results["w2"]["ideamine"]["rss_mb"].get("2000")
    if at_2000 is None:
        return _unmeasured("W2 peak RSS at N = 2,000", "≤ 100 MB")
    peak = at_2000 * MIB
    return Verdict("W2 peak RSS at N = 2,000", "≤ 100 MB", f"{peak:.1f} MB", peak <= 100)


def _w3_reruns(results: Results) -> Verdict:
    trials = results["w3"]
    again = [t["completed_then_rerun"] for t in trials]
    ok = all(t["ok"] for t in trials)
    shown = f"{','.join(map(str, again))}; {sum(t['ok'] for t in trials)}/{len(trials)} correct"
    return Verdict("W3 finished tasks re-executed", "0", shown, ok and not any(again))


def remaining_s(done_before_kill: int) -> float:
    """The ideal time left after a kill with ``done_before_kill`` agents finished: the levels
    not yet finished, at W3's agent time each."""
    phases_done = done_before_kill // K
    levels_done = phases_done - 1 if phases_done >= SHARED_LEVEL_PHASES else phases_done
    return max(0, LEVELS - levels_done) * W3_SLEEP


def _w3_time(results: Results) -> Verdict:
    trials = results["w3"]
    # per trial: the time over its own remaining work, then the median of those
    over = statistics.median(
        t["restart_to_done_s"] - remaining_s(t["done_before_kill"]) for t in trials
    )
    took = statistics.median(t["restart_to_done_s"] for t in trials)
    left = statistics.median(remaining_s(t["done_before_kill"]) for t in trials)
    return Verdict(
        "W3 restart-to-done, SQLite",
        f"≤ remaining ({left:.1f} s) + {W3_MARGIN_S} s",
        f"{took:.2f} s: {over:+.2f} s over the remaining work",
        over <= W3_MARGIN_S,
    )


def _pg(results: Results) -> Verdict:
    rate = results["postgresql"].get("w2_4w", {}).get("tasks_s_2000")
    if rate is None:
        return _unmeasured("W2 at N = 2,000, PostgreSQL, 4 workers", "≥ 2,000 tasks/s")
    return Verdict(
        "W2 at N = 2,000, PostgreSQL, 4 workers", "≥ 2,000 tasks/s", f"{rate} tasks/s", rate >= 2000
    )


def _offline(results: Results) -> Verdict:
    wall = results["offline"]["wall"]["median"]
    peak = results["offline"]["rss_mb"]["max"] * MIB
    return Verdict(
        "offline pipeline of one real idea",
        "< 30 s and < 300 MB",
        f"{wall:.2f} s, {peak:.1f} MB",
        wall < 30 and peak < 300,
    )


JUDGES: tuple[Callable[[Results], Verdict], ...] = (
    _w1,
    _w2_rate,
    _w2_growth,
    _w2_memory,
    _w3_reruns,
    _w3_time,
    _pg,
    _offline,
)


def judge(results: Results) -> list[Verdict]:
    """Every target's verdict, in the issue's order."""
    return [check(results) for check in JUDGES]


def render(verdicts: list[Verdict]) -> str:
    shown = {True: "met", False: "**missed**", None: "–"}
    rows = [[v.target, v.bound, v.measured, shown[v.met]] for v in verdicts]
    return table(("target (issue 9)", "bound", "measured", "verdict"), rows)
