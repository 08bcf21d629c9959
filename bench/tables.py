"""The markdown tables ``bench/run.py`` prints (and docs/benchmarks.md reproduces)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench import peers, targets
from bench.report import show, table
from bench.shape import TASKS

Results = Mapping[str, Any]
SUMMARY = (
    "engine",
    "W1 wall s median [min-max]",
    "W1 overhead s",
    "overhead / 104 agents, ms",
    "W2 tasks/s @200",
    "W2 tasks/s @2000",
    "cost/task 2000 vs 200",
    "peak RSS MiB (W2)",
    "W3 completes",
    "W3 re-runs of completed agents",
    "W3 restart-to-done s",
)


def render(results: Results) -> str:
    """Every table, with a header naming the machine and the load."""
    m = results["machine"]
    head = (
        f"IdeaMine benchmarks {results['date']} ({results['command']}): {m['nproc']} cores, "
        f"{m['memory_gib']} GiB, Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL "
        f"{m['postgresql']}; load average {m['loadavg_start']} at start, "
        f"{m.get('loadavg_end')} at end"
    )
    if "gauges_start" in m:  # results since 2026-11-27 20:00 carry them
        start = m["gauges_start"]
        head += (
            f"; CPU gauge (3M additions) {start['cpu_loop_s']} s, fsync {start['fsync_ms']} ms, "
            f"thread round trip {start.get('thread_trip_us', '–')} µs at start, "
            f"{m.get('gauges_end')} at end"
        )
    source = m.get("source")  # results since 2026-11-28 13:20 carry it
    if source and source["commit"]:
        changed = " with uncommitted changes" if source["uncommitted"] else ""
        head += f"; code at {source['commit']}{changed}"
    parts = [
        head,
        "## Issue 9's targets",
        targets.render(targets.judge(results)),
        "## Summary (IdeaMine and the floor measured now; the other peers when each row says)",
        summary(results),
        "## W1 per-round medians (s)",
        rounds(results),
        "## W3 crash-resume trials",
        crash(results),
        "## PostgreSQL with `ideamine worker` processes",
        postgres(results),
        "## Offline pipeline of one real idea",
        offline(results),
    ]
    return "\n\n".join(parts) + "\n"


def _w3_cells(trials: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    ok = sum(1 for t in trials if t["ok"])
    reruns = ",".join(str(t["completed_then_rerun"]) for t in trials)
    inflight = ",".join(str(t["in_flight_rerun"]) for t in trials)
    times = sorted(t[key] for t in trials)
    return [
        f"{ok}/{len(trials)}",
        f"{reruns} (in-flight {inflight})",
        f"{times[len(times) // 2]:.2f}",
    ]


def summary(results: Results) -> str:
    rows = [
        _row(
            "IdeaMine, embedded (SQLite)",
            results["w1"]["ideamine"],
            results["w2"]["ideamine"],
            _w3_cells(results["w3"], "restart_to_done_s"),
        )
    ]
    pg = results["postgresql"]
    for key in sorted(k for k in pg if k.startswith("w1_")):
        count = key.split("_")[1].removesuffix("w")
        label = f"IdeaMine, PostgreSQL, {count} worker(s) (W1 submit-to-done, W2 created-to-done)"
        rows.append(_row(label, pg[key], pg.get(f"w2_{count}w", {}), ["", "", ""]))
    w3_pg = _w3_cells(pg["w3_2w"], "kill_to_done_s")
    rows.append(["IdeaMine, PostgreSQL, W3: 2 workers, 1 killed", *[""] * 7, *w3_pg])
    for sync in ("FULL", "NORMAL"):
        if f"floor-{sync}" in results["w1"]:
            rows.append(
                _row(
                    f"floor ({sync}), now",
                    results["w1"][f"floor-{sync}"],
                    results["w2"][f"floor-{sync}"],
                    ["", "", ""],
                )
            )
    known = results.get("peers")  # results since 2026-11-28 12:30 may carry them
    day, found = (known["day"], known["rows"]) if known else (peers.COPIED_ON, peers.COPIED)
    how = "measured" if known else "copied"
    rows += [_peer_row(f"{name}, {how} {day}", figures) for name, figures in found.items()]
    return table(SUMMARY, rows)


def _peer_row(label: str, c: Mapping[str, Any]) -> list[object]:
    """A peer's summary row; n/a where the peer's file holds no successful measurement."""

    def shown(value: object, digits: int | None = None) -> object:
        if value is None:
            return "n/a"
        return f"{value:.{digits}f}" if digits is not None else value

    over = c["w1_over"]
    return [
        label,
        shown(c["w1"], 3),
        shown(over, 3),
        shown(None if over is None else over / TASKS * 1000, 2),
        shown(c["w2_200"]),
        shown(c["w2_2000"]),
        shown(c["growth"]),
        shown(c["rss"]),
        c["w3_ok"],
        c["w3_rerun_done"] or "n/a",
        shown(c["w3_restart"], 2),
    ]


def _row(label: str, w1: Mapping[str, Any], w2: Mapping[str, Any], w3: list[str]) -> list[object]:
    rss = w2.get("rss_mb") or {}
    peak = (
        max(rss.values())
        if isinstance(rss, dict) and rss
        else max(w2.get("worker_rss_mb", [0]) or [0])
    )
    return [
        label,
        show(w1["wall"]),
        f"{w1['overhead_s']:.3f}",
        f"{w1['per_task_ms']:.2f}",
        w2.get("tasks_s_200", ""),
        w2.get("tasks_s_2000", ""),
        w2.get("growth", ""),
        peak,
        *w3,
    ]


def rounds(results: Results) -> str:
    rows = [
        [label, ", ".join(f"{x:.3f}" for x in item["round_medians"]), item["rss_mb"]]
        for label, item in results["w1"].items()
    ]
    return table(("engine", "round medians", "peak RSS MiB (W1)"), rows)


def _seconds(value: object) -> str:
    """``value`` s to two places, or blank (results stored before the figure existed)."""
    return f"{value:.2f}" if isinstance(value, int | float) else ""


def crash(results: Results) -> str:
    cols = (
        "done before kill",
        "in flight at kill",
        "executions total",
        "re-executed",
        "completed-then-rerun",
        "in-flight rerun",
    )
    keys = (
        "done_before_kill",
        "in_flight_at_kill",
        "executions_total",
        "re_executed",
        "completed_then_rerun",
        "in_flight_rerun",
    )
    rows = [
        [
            "SQLite, resume",
            i,
            t["ok"],
            t["killed_at_s"],
            *(t[k] for k in keys),
            f"{t['restart_to_done_s']:.2f}",
            _seconds(t.get("resume_call_to_done_s")),
            f"{t['longest_ledger_pause_s']:.2f}",
        ]
        for i, t in enumerate(results["w3"])
    ]
    rows += [
        [
            "PostgreSQL, 2 workers, 1 killed",
            i,
            t["ok"],
            t["killed_at_s"],
            *(t[k] for k in keys),
            f"{t['kill_to_done_s']:.2f}",
            "",
            f"{t['longest_ledger_pause_s']:.2f}",
        ]
        for i, t in enumerate(results["postgresql"]["w3_2w"])
    ]
    return table(
        (
            "setup",
            "trial",
            "ok",
            "killed at s",
            *cols,
            "restart (or kill) to done s",
            "resume call to done s",
            "longest ledger pause s",
        ),
        rows,
    )


def postgres(results: Results) -> str:
    rows = []
    for key, item in sorted(results["postgresql"].items()):
        if key == "w3_2w":
            continue
        submitted = item.get("submit_to_done") or item.get("wall") or item["n200"]
        big = item.get("n2000")
        rows.append(
            [
                key,
                show(submitted),
                show(item["created_to_done"]),
                show(big) if big else "",
                item.get("tasks_s_2000", ""),
                item["worker_rss_mb"],
            ]
        )
    return table(
        (
            "workload_workers",
            "submit-to-done s",
            "created-to-done s",
            "W2 N=2000 created-to-done s",
            "W2 tasks/s @2000",
            "worker peak RSS MiB",
        ),
        rows,
    )


def offline(results: Results) -> str:
    o = results["offline"]
    return table(
        ("wall s median [min-max]", "peak RSS MiB", "summary"),
        [[show(o["wall"]), show(o["rss_mb"], 1), o["summary"]]],
    )
