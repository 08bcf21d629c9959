"""The peers: the floor (plain asyncio + SQLite) measured now with the peers' own script, and
the other peers' medians either read from a file their driver wrote on this machine
(``bench/run.py --peers FILE``, see :func:`measured`) or copied from bench-peers/RESULTS.md
(measured 2026-11-25 on the machine of that day)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench import proc
from bench.shape import W1_IDEAL

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
    row[0]: dict(zip(FIELDS, row[1:], strict=True)) | {"w3_ok": "3/3"} for row in _ROWS
}

# run_all.py's label -> the row's name ({} takes the version of the package named second)
NAMES = {
    "langgraph": ("LangGraph {}", "langgraph"),
    "dbos": ("DBOS {} (SQLite)", "dbos"),
    "dbos-pg": ("DBOS {} (PostgreSQL)", "dbos"),
    "celery": ("Celery {} + Redis", "celery"),
    "temporal": ("Temporal {}", "temporalio"),
    "prefect": ("Prefect {}", "prefect"),
}


class PeersFileError(Exception):
    """The peers' results file cannot be read; the message says which file and line."""


def measured(path: Path) -> tuple[str, dict[str, dict[str, object]]]:
    """The peers' rows from a results file that bench-peers/run_all.py wrote (``--out``): the
    day it was measured and, per peer, the same figures as :data:`COPIED`. The floor is left
    out: ``bench/run.py`` measures it beside IdeaMine."""
    lines = _lines(path)
    by_peer: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        if line["peer"] in NAMES:
            by_peer[line["peer"]].append(line)
    if not by_peer:
        raise PeersFileError(f"{path}: no peer other than the floor in it (labels {set(NAMES)})")
    day = max(str(line["ts"]) for line in lines)[:10]
    rows = {_name(found): _figures(found) for found in by_peer.values()}
    return day, rows


def _lines(path: Path) -> list[Mapping[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PeersFileError(f"{path}: cannot read it ({exc.strerror})") from exc
    found: list[Mapping[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise PeersFileError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(item, dict) or not {"peer", "workload", "ts"} <= item.keys():
            raise PeersFileError(
                f"{path}:{number}: not a line of bench-peers/run_all.py's output "
                "(it needs peer, workload and ts)"
            )
        found.append(item)
    return found


def _name(found: Iterable[Mapping[str, Any]]) -> str:
    peer = ""
    for line in found:
        peer = line["peer"]
        versions = (line.get("result") or {}).get("versions")
        if versions:
            template, package = NAMES[peer]
            return template.format(versions.get(package, "?"))
    return NAMES[peer][0].format("?")


def _figures(found: Iterable[Mapping[str, Any]]) -> dict[str, object]:
    """A peer's medians over its successful invocations, as report.py computes them."""
    w1: list[float] = []
    w2: dict[int, list[float]] = defaultdict(list)
    rss: list[float] = []
    trials: list[Mapping[str, Any]] = []
    for line in found:
        result = line.get("result") or {}
        if line["workload"] == "w3":
            trials.append(line)
        elif line.get("rc") != 0 or not result:
            continue
        elif line["workload"] == "w1":
            w1 += result["walls"]
        else:
            w2[line["n"]] += result["walls"]
            if line["n"] == 2000:
                rss.append(result["rss"]["tree_mb"])
    wall, small, big = _median(w1), _median(w2[200]), _median(w2[2000])
    return {
        "w1": wall,
        "w1_over": None if wall is None else wall - W1_IDEAL,
        "w2_200": None if small is None else round(200 / small),
        "w2_2000": None if big is None else round(2000 / big),
        "growth": None if small is None or big is None else round(big / 2000 / (small / 200), 2),
        "rss": round(max(rss)) if rss else None,
        "w3_ok": f"{sum(1 for t in trials if t.get('ok'))}/{len(trials)}",
        "w3_rerun_done": ",".join(
            str(t["execs"]["completed_then_rerun"]) for t in trials if t.get("execs")
        ),
        "w3_restart": _median(
            [t["restart_to_done_s"] for t in trials if t.get("ok") and t.get("restart_to_done_s")]
        ),
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


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
