"""The peers: the floor (plain asyncio + SQLite) measured now with the peers' own script, and
the other peers' medians either read from a file their driver wrote on this machine
(``bench/run.py --peers FILE``, see :func:`measured`) or copied from bench-peers/RESULTS.md
(measured 2026-11-25 on the machine of that day)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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
    "langgraph-sync": ("LangGraph {} (durability sync)", "langgraph"),
    "dbos": ("DBOS {} (SQLite)", "dbos"),
    "dbos-pg": ("DBOS {} (PostgreSQL)", "dbos"),
    "dbos-queue": ("DBOS {} (SQLite, queue)", "dbos"),
    "dbos-queue-fastpoll": ("DBOS {} (SQLite, queue, 0.05 s poll)", "dbos"),
    "celery": ("Celery {} + Redis", "celery"),
    "temporal": ("Temporal {}", "temporalio"),
    "prefect": ("Prefect {}", "prefect"),
}
FLOORS = ("floor", "floor-normal")  # measured by bench/run.py beside IdeaMine instead


class PeersFileError(Exception):
    """The peers' results file cannot be read; the message says which file and line."""


@dataclass(frozen=True, slots=True)
class _Line:
    """One invocation of a peer's script, as run_all.py recorded it: the fields used here."""

    peer: str
    workload: str
    ts: str
    n: int | None
    ran: bool  # exit 0 with a result (W1, W2)
    walls: tuple[float, ...]
    rss_mb: float | None  # all processes', at W2's N = 2,000
    version: str | None
    trial_ok: bool  # W3
    rerun: int | None  # W3: agents that had completed re-run after the kill
    restart_s: float | None  # W3


def measured(path: Path) -> tuple[str, dict[str, dict[str, object]]]:
    """The peers' rows from a results file that bench-peers/run_all.py wrote (``--out``): the
    day it was measured and, per peer, the same figures as :data:`COPIED`. The floor is left
    out: ``bench/run.py`` measures it beside IdeaMine.

    Raises:
        PeersFileError: the file cannot be read, a line is not one run_all.py writes
            (naming the line), or it holds no peer but the floor.
    """
    lines = _lines(path)
    by_peer: dict[str, list[_Line]] = defaultdict(list)
    for line in lines:
        by_peer[line.peer].append(line)
    if not by_peer:
        raise PeersFileError(f"{path}: no peer other than the floor in it")
    day = max(line.ts for line in lines)[:10]
    return day, {_name(peer, found): _figures(found) for peer, found in by_peer.items()}


def _lines(path: Path) -> list[_Line]:
    """The file's lines of the peers :data:`NAMES` knows (the floor's are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PeersFileError(f"{path}: cannot read it ({exc})") from exc
    found = []
    for number, text_line in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        try:
            item = json.loads(text_line)
        except ValueError as exc:
            raise PeersFileError(f"{where}: not JSON ({exc})") from exc
        line = _line(item, where)
        if line is not None:
            found.append(line)
    return found


def _line(item: object, where: str) -> _Line | None:
    """``item`` checked and read; None for the floor's lines."""
    try:
        assert isinstance(item, dict)
        peer, workload = str(item["peer"]), str(item["workload"])
        if peer in FLOORS:
            return None
        if peer not in NAMES:
            raise PeersFileError(f"{where}: unknown peer {peer!r} (known: {', '.join(NAMES)})")
        result = item.get("result") or {}
        ran = item.get("rc") == 0 and bool(result)
        versions = result.get("versions") or {}
        execs = item.get("execs") or {}
        restart = item.get("restart_to_done_s")
        return _Line(
            peer=peer,
            workload=workload,
            ts=str(item["ts"]),
            n=None if item.get("n") is None else int(item["n"]),
            ran=ran,
            walls=tuple(float(w) for w in result["walls"]) if ran and workload != "w3" else (),
            rss_mb=(
                float(result["rss"]["tree_mb"])
                if ran and workload == "w2" and item.get("n") == 2000
                else None
            ),
            version=str(versions[NAMES[peer][1]]) if NAMES[peer][1] in versions else None,
            trial_ok=bool(item.get("ok")),
            rerun=int(execs["completed_then_rerun"]) if execs else None,
            restart_s=None if restart is None else float(restart),
        )
    except (AssertionError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PeersFileError(
            f"{where}: not a line of bench-peers/run_all.py's output ({type(exc).__name__}: "
            f"{exc}; it needs peer, workload, ts, and a result's walls and rss)"
        ) from exc


def _name(peer: str, found: Iterable[_Line]) -> str:
    template, _ = NAMES[peer]
    version = next((line.version for line in found if line.version), "?")
    return template.format(version)


def _figures(found: Iterable[_Line]) -> dict[str, object]:
    """A peer's medians over its successful invocations, as report.py computes them."""
    w1: list[float] = []
    w2: dict[int | None, list[float]] = defaultdict(list)
    rss: list[float] = []
    trials: list[_Line] = []
    for line in found:
        if line.workload == "w3":
            trials.append(line)
        elif line.workload == "w1":
            w1 += line.walls
        else:
            w2[line.n] += line.walls
            rss += [line.rss_mb] if line.rss_mb is not None else []
    wall, small, big = _median(w1), _median(w2[200]), _median(w2[2000])
    restarts = [t.restart_s for t in trials if t.trial_ok and t.restart_s is not None]
    return {
        "w1": wall,
        "w1_over": None if wall is None else wall - W1_IDEAL,
        "w2_200": None if small is None else round(200 / small),
        "w2_2000": None if big is None else round(2000 / big),
        "growth": None if small is None or big is None else round(big / 2000 / (small / 200), 2),
        "rss": round(max(rss)) if rss else None,
        "w3_ok": f"{sum(t.trial_ok for t in trials)}/{len(trials)}" if trials else "n/a",
        "w3_rerun_done": ",".join(str(t.rerun) for t in trials if t.rerun is not None),
        "w3_restart": _median(restarts),
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
