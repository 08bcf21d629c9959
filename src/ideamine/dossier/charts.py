"""Geometry of the dossier's two inline SVG charts: the phase Gantt and cost by phase.

Only numbers and labels are computed here; the HTML template draws them (escaped), so the
charts need no script, no external file and no network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Bar", "Chart", "cost_chart", "gantt_chart"]

WIDTH = 760.0
LABEL = 150.0  # room for phase names on the left
ROW = 24.0
TOP = 8.0
AXIS = 28.0  # room for tick labels at the bottom
TICKS = 5
RIGHT = 110.0  # room for the value written after the longest bar


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    label: str
    x: float
    y: float
    width: float
    status: str  # css class: passed, failed, running, ready, cost
    note: str  # the value, shown beside the bar and as its title


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    width: float
    height: float
    label_width: float
    row: float
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]  # x position, label
    caption: str


def _time(text: object) -> float:
    return datetime.fromisoformat(str(text)).timestamp()


def _rows(count: int) -> float:
    return TOP + ROW * max(count, 1) + AXIS


def _ticks(span: float, unit: str, digits: int) -> tuple[tuple[float, str], ...]:
    plot = WIDTH - LABEL - RIGHT
    return tuple(
        (LABEL + plot * step / TICKS, f"{span * step / TICKS:,.{digits}f}{unit}")
        for step in range(TICKS + 1)
    )


def gantt_chart(phases: Sequence[Mapping[str, object]]) -> Chart:
    """One bar per phase attempt from its start to its end (or the last known time)."""
    if not phases:
        return Chart(
            width=WIDTH,
            height=_rows(0),
            label_width=LABEL,
            row=ROW,
            bars=(),
            ticks=(),
            caption="No phase has started.",
        )
    starts = [_time(p["started_at"]) for p in phases]
    ends = [
        _time(p["finished_at"]) if p.get("finished_at") else s
        for p, s in zip(phases, starts, strict=True)
    ]
    origin, span = min(starts), max(max(ends) - min(starts), 1e-6)
    plot = WIDTH - LABEL - RIGHT
    bars = []
    for index, (p, start, end) in enumerate(zip(phases, starts, ends, strict=True)):
        attempt = f" #{p['attempt']}" if int(str(p["attempt"])) > 1 else ""
        bars.append(
            Bar(
                label=f"{p['phase']}{attempt}",
                x=LABEL + plot * (start - origin) / span,
                y=TOP + ROW * index,
                width=max(plot * (end - start) / span, 2.0),
                status=str(p["status"]),
                note=_duration(end - start) if p.get("finished_at") else "not finished",
            )
        )
    return Chart(
        width=WIDTH,
        height=_rows(len(bars)),
        label_width=LABEL,
        row=ROW,
        bars=tuple(bars),
        ticks=_ticks(span, " s", 2 if span < 10 else 0),
        caption=f"Phase attempts over {_duration(span)} of wall-clock time.",
    )


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def cost_chart(by_phase: Sequence[Mapping[str, object]]) -> Chart:
    """Cost per phase in USD, or tokens per phase when every call was free."""
    costs = [float(str(p["cost_usd"])) for p in by_phase]
    tokens = [float(str(p["tokens"])) for p in by_phase]
    use_cost = any(value > 0 for value in costs)
    values = costs if use_cost else tokens
    top = max(values, default=0.0) or 1.0
    plot = WIDTH - LABEL - RIGHT
    bars = tuple(
        Bar(
            label=str(p["phase"]),
            x=LABEL,
            y=TOP + ROW * index,
            width=plot * value / top,
            status="cost",
            note=f"${value:.4f}" if use_cost else f"{int(value):,} tokens",
        )
        for index, (p, value) in enumerate(zip(by_phase, values, strict=True))
    )
    caption = (
        "Model cost per phase (USD)."
        if use_cost
        else "Every model call cost $0 (e.g. the offline model), so bars show tokens per phase."
    )
    if not any(values):
        caption = "No model call of this run used tokens or cost."
    unit = "$" if use_cost else ""
    ticks = tuple((x, f"{unit}{label}") for x, label in _ticks(top, "", 4 if use_cost else 0))
    ticks = ticks if any(values) else ()
    return Chart(
        width=WIDTH,
        height=_rows(len(bars)),
        label_width=LABEL,
        row=ROW,
        bars=bars,
        ticks=ticks,
        caption=caption,
    )
