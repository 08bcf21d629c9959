"""Turn the collected measurements into figures (medians, overheads, tasks/s) and markdown
tables."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from bench.shape import TASKS, W1_IDEAL

Row = Sequence[object]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max (rounded to the millisecond)."""
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def show(s: Mapping[str, float], digits: int = 3) -> str:
    """``median [min-max]``."""
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def w1_figures(walls: Sequence[float]) -> dict[str, object]:
    """W1's wall, overhead over the ideal 0.24 s, and overhead per agent task (ms)."""
    wall = spread(walls)
    overhead = wall["median"] - W1_IDEAL
    return {
        "wall": wall,
        "overhead_s": round(overhead, 4),
        "per_task_ms": round(overhead / TASKS * 1000, 2),
    }


def w2_figures(walls_200: Sequence[float], walls_2000: Sequence[float]) -> dict[str, object]:
    """Tasks/s at both sizes and the growth of the per-task cost from 200 to 2000."""
    out: dict[str, object] = {
        "n200": spread(walls_200),
        "tasks_s_200": round(200 / statistics.median(walls_200)),
    }
    if walls_2000:
        per_200 = statistics.median(walls_200) / 200
        per_2000 = statistics.median(walls_2000) / 2000
        out |= {
            "n2000": spread(walls_2000),
            "tasks_s_2000": round(2000 / statistics.median(walls_2000)),
            "growth": round(per_2000 / per_200, 2),
        }
    return out


def table(headers: Row, rows: Sequence[Row]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
