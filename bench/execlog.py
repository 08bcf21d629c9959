"""Read W3's side file (``$BENCH_EXEC_LOG``): which agents ran, completed, and ran again."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Executions:
    """Agent executions before and after the crash, as the peer benchmarks count them."""

    done_before_kill: int
    in_flight_at_kill: int
    executions_total: int
    re_executed: int
    completed_then_rerun: int  # avoidable waste: the output existed before the kill
    in_flight_rerun: int  # unavoidable: killed mid-sleep

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def lines(path: Path) -> list[tuple[str, str, str, str]]:
    """(event, key, attempt, pid) per line; a torn last line (SIGKILL mid-write) is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[0], parts[1], parts[2], parts[3]))
    return rows


def count(path: Path, *, before: int) -> Executions:
    """Count executions; the first ``before`` lines were written before the kill."""
    rows = lines(path)
    done = {key for event, key, _, _ in rows[:before] if event == "done"}
    started = {key for event, key, _, _ in rows[:before] if event == "start"}
    starts = Counter(key for event, key, _, _ in rows if event == "start")
    again = [key for key, n in starts.items() for _ in range(n - 1)]
    return Executions(
        done_before_kill=len(done),
        in_flight_at_kill=len(started - done),
        executions_total=sum(starts.values()),
        re_executed=len(again),
        completed_then_rerun=sum(1 for key in again if key in done),
        in_flight_rerun=sum(1 for key in again if key not in done),
    )


def in_flight_by_pid(path: Path) -> Counter[str]:
    """How many agents each process has started and not finished (so far)."""
    rows = lines(path)
    finished = Counter((key, pid) for event, key, _, pid in rows if event == "done")
    open_: Counter[str] = Counter()
    for event, key, _, pid in rows:
        if event == "start":
            if finished[(key, pid)]:
                finished[(key, pid)] -= 1
            else:
                open_[pid] += 1
    return open_
