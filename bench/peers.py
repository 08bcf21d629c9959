"""The peers: the floor (plain asyncio + SQLite) measured now with the peers' own script, and
the other peers' medians copied from bench-peers/RESULTS.md (measured 2026-11-25 on this
machine; not re-run here)."""

from __future__ import annotations

from pathlib import Path

from bench import proc

PEERS_DIR = Path("/work/shared/bench-peers")
FLOOR = PEERS_DIR / "bench_floor.py"
COPIED_ON = "2026-11-25"

# RESULTS.md summary medians: W1 wall s, W1 overhead s, W2 tasks/s @200 and @2000, cost/task
# growth 2000 vs 200, peak RSS MiB (W2 2000, all processes), W3 completed re-runs of completed
# agents (per trial), W3 restart-to-done s.
FIELDS = ("w1", "w1_over", "w2_200", "w2_2000", "growth", "rss", "w3_rerun_done", "w3_restart")
_ROWS = [
    ("floor (FULL)", 0.286, 0.046, 6258, 6036, 1.04, 28, "0,0,0", 1.50),
    ("floor (NORMAL)", 0.251, 0.011, 48120, 39896, 1.21, 28, "0,0,0", 1.48),
    ("LangGraph 1.2.24", 0.302, 0.062, 1137, 952, 1.19, 94, "0,0,0", 2.09),
    ("DBOS 3.4.0 (SQLite)", 1.024, 0.784, 250, 296, 0.84, 85, "0,0,0", 3.64),
    ("DBOS 3.4.0 (PostgreSQL)", 0.609, 0.369, 272, 277, 0.98, 74, "0,2,0", 3.29),
    ("Celery 5.7.0 + Redis", 0.844, 0.604, 355, 194, 1.83, 141, "0,1,0", 7.36),
    ("Temporal 1.35.0", 1.296, 1.056, 182, 132, 1.39, 492, "0,0,0", 18.06),
    ("Prefect 3.9.1", 3.722, 3.482, 24, 28, 0.86, 500, "0,0,0", 9.59),
]
COPIED: dict[str, dict[str, object]] = {
    row[0]: dict(zip(FIELDS, row[1:], strict=True)) for row in _ROWS
}


def available() -> bool:
    return FLOOR.is_file()


def floor(
    workload: str, folder: Path, sync: str, *, n: int = 200, reps: int = 5
) -> dict[str, object]:
    """One invocation of the peers' floor script (stdlib only; this interpreter runs it)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        proc.PYTHON,
        str(FLOOR),
        workload,
        "--n",
        str(n),
        "--reps",
        str(reps),
        "--db",
        str(folder / "floor.sqlite"),
        "--sync",
        sync,
    ]
    found = proc.results(proc.call(command))
    if not found:
        raise RuntimeError("the floor script printed no RESULT line")
    return found[0]
