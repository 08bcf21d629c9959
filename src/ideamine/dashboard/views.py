"""What the dashboard's templates show, computed from the store's rows: the Gantt's geometry,
budget burn, the error stream and the runs table (the quality loop's part is in
``dashboard.quality``). Pure functions of a
``RunDetail`` (plus the clock's ``now``), so they are easy to test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ideamine.engine.states import PhaseStatus, TaskStatus
from ideamine.service_api import RunDetail
from ideamine.stores.records import EventRecord, PhaseRecord, latest_attempts

__all__ = [
    "Bar",
    "budget_rows",
    "duration",
    "error_rows",
    "gantt",
    "status_counts",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One Gantt row: a phase's latest attempt placed on the run's time axis (in %)."""

    phase: str
    status: str
    attempt: int
    left: float
    width: float
    tasks_done: int
    tasks_total: int
    seconds: float | None
    error: str | None


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def gantt(detail: RunDetail, now: float) -> tuple[list[Bar], float]:
    """The bars in pipeline order and the axis length in seconds."""
    start = _ts(detail.run.created_at)
    latest = latest_attempts(detail.phases)
    ends = [_ts(p.finished_at) for p in detail.phases if p.finished_at]
    end = max(ends, default=start) if detail.run.status.finished else now
    span = max(end - start, 1e-3)
    return [_bar(name, latest.get(name), detail, start, span, now) for name in detail.order], span


def _bar(
    name: str, record: PhaseRecord | None, detail: RunDetail, start: float, span: float, now: float
) -> Bar:
    own = [t for t in detail.tasks if record and t.phase == name and t.attempt == record.attempt]
    done = sum(1 for t in own if t.status in (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED))
    if record is None:
        return Bar(
            phase=name,
            status="waiting",
            attempt=0,
            left=0,
            width=0,
            tasks_done=0,
            tasks_total=0,
            seconds=None,
            error=None,
        )
    begin = _ts(record.started_at)
    finish = _ts(record.finished_at) if record.finished_at else now
    left = min(100.0, max(0.0, (begin - start) / span * 100))
    width = max(0.6, min(100.0 - left, (finish - begin) / span * 100))
    return Bar(
        phase=name,
        status=record.status.value,
        attempt=record.attempt,
        left=round(left, 3),
        width=round(width, 3),
        tasks_done=done,
        tasks_total=len(own),
        seconds=max(0.0, finish - begin),
        error=record.error,
    )


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def budget_rows(detail: RunDetail) -> list[dict[str, object]]:
    """Per phase: tokens, USD and minutes used against budget, as percentages."""
    return [
        {
            "phase": b.phase,
            "tokens_used": b.tokens_used,
            "tokens_budget": b.tokens_budget,
            "tokens_pct": _pct(b.tokens_used, b.tokens_budget),
            "usd_used": b.usd_used,
            "usd_budget": b.usd_budget,
            "usd_pct": _pct(b.usd_used, b.usd_budget),
            "minutes_used": b.minutes_used,
            "minutes_budget": b.minutes_budget,
            "minutes_pct": _pct(b.minutes_used, b.minutes_budget),
        }
        for b in detail.budgets
    ]


def _pct(used: float, budget: float) -> float:
    return round(min(100.0, used / budget * 100), 1) if budget > 0 else 0.0


def error_rows(events: Sequence[EventRecord]) -> list[dict[str, object]]:
    """The error stream: what failed, where, and why."""
    rows = []
    for event in events:
        payload = event.payload
        detail = payload.get("reason") or payload.get("error") or payload.get("cause") or ""
        strategy = payload.get("strategy")
        rows.append(
            {
                "id": event.id,
                "at": event.at[11:19],
                "type": event.type,
                "phase": event.phase or "",
                "key": payload.get("key") or event.task_id or "",
                "detail": str(detail)[:400],
                "strategy": str(strategy) if strategy else "",
                "severity": "bad" if event.type.endswith(("failed", "error")) else "warn",
            }
        )
    return rows


def status_counts(detail: RunDetail) -> dict[str, int]:
    latest = latest_attempts(detail.phases)
    counts = {status.value: 0 for status in PhaseStatus} | {"waiting": 0}
    for name in detail.order:
        record = latest.get(name)
        counts[record.status.value if record else "waiting"] += 1
    return counts
