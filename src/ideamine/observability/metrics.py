"""Prometheus metrics (prefix ``ideamine_``) derived from the store on every scrape.

Nothing is counted in process memory: each scrape reads the rows, so runs driven by
``ideamine run``, by workers on other machines or by this server all show, and every
``ideamine serve`` replica reports the same values. Finished runs do not change, so their
figures are cached by ``(run id, updated_at)``; live runs are read again on each scrape.

The figures cover the newest ``RUN_LIMIT`` runs; phase durations come from ``phase_metrics``
(every row the retention policy kept).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.service_api import pinned_pipeline, running_owners
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.observability import PhasePerformance, phase_performance
from ideamine.stores.records import RunRecord
from ideamine.stores.sqlstore import SqlStore

__all__ = ["RUN_LIMIT", "MetricsReader", "Snapshot", "metric_families", "render"]

RUN_LIMIT = 10_000
ALL_TIME_DAYS = 365_000.0
DURATION_BUCKETS = (1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)
COST_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0)
_ACTIVE = (RunStatus.CREATED, RunStatus.RUNNING)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFigures:
    """What one run contributes to the counters."""

    status: RunStatus
    duration_seconds: float | None  # finished runs only
    cost_usd: float
    tokens: Counter[tuple[str, str]]  # (phase, input|output) → tokens
    cost_by_phase: Mapping[str, float]
    calls: Counter[str]  # outcome → model calls
    gates: Counter[tuple[str, bool]]  # (phase, passed) → verdicts


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveFigures:
    """What the unfinished runs hold right now, by phase."""

    tasks_running: Mapping[str, float]
    owners: frozenset[str]
    tokens_used: Mapping[str, float]
    tokens_allocated: Mapping[str, float]
    usd_used: Mapping[str, float]
    usd_allocated: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    runs: tuple[RunFigures, ...]
    live: LiveFigures
    phases: tuple[PhasePerformance, ...]


class MetricsReader:
    """Reads a ``Snapshot`` from the store, caching the figures of finished runs."""

    def __init__(self) -> None:
        self._finished: dict[str, tuple[str, RunFigures]] = {}

    async def snapshot(self, store: Store) -> Snapshot:
        runs = await store.list_runs(RUN_LIMIT)
        figures = [await self._figures(store, run) for run in runs]
        self._finished = {k: v for k, v in self._finished.items() if k in {r.id for r in runs}}
        phases: Sequence[PhasePerformance] = ()
        if isinstance(store, SqlStore):
            phases = await phase_performance(store, days=ALL_TIME_DAYS, now=time.time())
        live = await _live(store, [r for r in runs if not r.status.finished])
        return Snapshot(runs=tuple(figures), live=live, phases=tuple(phases))

    async def _figures(self, store: Store, run: RunRecord) -> RunFigures:
        cached = self._finished.get(run.id)
        if cached is not None and cached[0] == run.updated_at:
            return cached[1]
        figures = await _run_figures(store, run)
        if run.status.finished:
            self._finished[run.id] = (run.updated_at, figures)
        return figures


async def _run_figures(store: Store, run: RunRecord) -> RunFigures:
    tokens: Counter[tuple[str, str]] = Counter()
    cost: defaultdict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    for call in await store.model_calls(run.id):
        phase = str(call["phase"])
        tokens[(phase, "input")] += int(str(call["tokens_in"]))
        tokens[(phase, "output")] += int(str(call["tokens_out"]))
        cost[phase] += float(str(call["cost_usd"]))
        calls[str(call["outcome"])] += 1
    gates: Counter[tuple[str, bool]] = Counter()
    if isinstance(store, SqlStore):
        for verdict in await DossierStore(store).gate_evaluations(run.id):
            gates[(verdict.phase, verdict.passed)] += 1
    duration = None
    if run.status.finished:
        duration = max(0.0, _seconds(run.updated_at) - _seconds(run.created_at))
    return RunFigures(
        status=run.status,
        duration_seconds=duration,
        cost_usd=sum(cost.values()),
        tokens=tokens,
        cost_by_phase=cost,
        calls=calls,
        gates=gates,
    )


async def _live(store: Store, runs: Sequence[RunRecord]) -> LiveFigures:
    sums: dict[str, defaultdict[str, float]] = {
        name: defaultdict(float) for name in ("tasks", "tokens", "tokens_cap", "usd", "usd_cap")
    }
    owners: set[str] = set()
    for run in runs:
        _, _, tasks = await store.run_rows(run.id)
        owners |= running_owners(tasks)
        for task in tasks:
            sums["tasks"][task.phase] += task.status is TaskStatus.RUNNING
        pipeline = await pinned_pipeline(store, run)
        for spec in pipeline.phases if pipeline else ():
            sums["tokens_cap"][spec.name] += spec.budgets.tokens
            sums["usd_cap"][spec.name] += spec.budgets.usd
        for call in await store.model_calls(run.id):
            phase = str(call["phase"])
            sums["tokens"][phase] += int(str(call["tokens_in"])) + int(str(call["tokens_out"]))
            sums["usd"][phase] += float(str(call["cost_usd"]))
    return LiveFigures(
        tasks_running=sums["tasks"],
        owners=frozenset(owners),
        tokens_used=sums["tokens"],
        tokens_allocated=sums["tokens_cap"],
        usd_used=sums["usd"],
        usd_allocated=sums["usd_cap"],
    )


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def metric_families(snapshot: Snapshot) -> list[Metric]:
    """Every ``ideamine_`` series for one snapshot (a pure function)."""
    return [*_run_families(snapshot.runs), *_phase_families(snapshot), *_live_families(snapshot)]


def _run_families(runs: Sequence[RunFigures]) -> Iterator[Metric]:
    by_status = Counter(r.status for r in runs)
    gauge = GaugeMetricFamily("ideamine_runs", "Runs by status.", labels=["status"])
    for status in RunStatus:
        gauge.add_metric([status.value], by_status[status])
    yield gauge
    yield GaugeMetricFamily(
        "ideamine_runs_active",
        "Runs created or running.",
        value=sum(by_status[s] for s in _ACTIVE),
    )
    yield CounterMetricFamily(
        "ideamine_runs_completed", "Runs that completed.", value=by_status[RunStatus.COMPLETED]
    )
    finished = [r for r in runs if r.duration_seconds is not None]
    yield _histogram(
        "ideamine_run_duration_seconds",
        "Wall-clock time of finished runs (created to finished).",
        [r.duration_seconds or 0.0 for r in finished],
        DURATION_BUCKETS,
    )
    yield _histogram(
        "ideamine_run_cost_usd",
        "Model cost of finished runs.",
        [r.cost_usd for r in finished],
        COST_BUCKETS,
    )
    calls: Counter[str] = sum((r.calls for r in runs), Counter())
    family = CounterMetricFamily(
        "ideamine_model_calls", "Model calls by outcome.", labels=["outcome"]
    )
    for outcome, count in sorted(calls.items()):
        family.add_metric([outcome], count)
    yield family
    yield CounterMetricFamily(
        "ideamine_call_cache_hits", "Model calls served from the call cache.", value=calls["cached"]
    )


def _phase_families(snapshot: Snapshot) -> Iterator[Metric]:
    duration = SummaryMetricFamily(
        "ideamine_phase_duration_seconds",
        "Phase attempts' duration (phase_metrics).",
        labels=["phase"],
    )
    p95 = GaugeMetricFamily(
        "ideamine_phase_duration_p95_seconds", "95th percentile phase duration.", labels=["phase"]
    )
    completed = CounterMetricFamily(
        "ideamine_phases_completed", "Phase attempts that passed.", labels=["phase"]
    )
    errors = CounterMetricFamily(
        "ideamine_phase_errors", "Phase attempts that failed.", labels=["phase"]
    )
    for perf in sorted(snapshot.phases, key=lambda p: p.phase):
        passed = round(perf.attempts * perf.success_rate)
        duration.add_metric([perf.phase], perf.attempts, perf.avg_ms * perf.attempts / 1000)
        p95.add_metric([perf.phase], perf.p95_ms / 1000)
        completed.add_metric([perf.phase], passed)
        errors.add_metric([perf.phase], perf.attempts - passed)
    yield from (duration, p95, completed, errors)
    yield from _usage_families(snapshot.runs)


def _usage_families(runs: Sequence[RunFigures]) -> Iterator[Metric]:
    tokens: Counter[tuple[str, str]] = sum((r.tokens for r in runs), Counter())
    family = CounterMetricFamily(
        "ideamine_tokens", "Model tokens by phase and direction.", labels=["phase", "direction"]
    )
    for (phase, direction), count in sorted(tokens.items()):
        family.add_metric([phase, direction], count)
    yield family
    cost: defaultdict[str, float] = defaultdict(float)
    for run in runs:
        for phase, usd in run.cost_by_phase.items():
            cost[phase] += usd
    yield _labelled(CounterMetricFamily, "ideamine_cost_usd", "Model cost by phase.", cost)
    gates: Counter[tuple[str, bool]] = sum((r.gates for r in runs), Counter())
    evaluated: dict[str, float] = {phase: 0 for phase, _ in gates}
    passed: dict[str, float] = {phase: 0 for phase, _ in gates}
    for (phase, ok), count in gates.items():
        evaluated[phase] += count
        passed[phase] += count if ok else 0
    yield _labelled(CounterMetricFamily, "ideamine_gate_evaluated", "Gate verdicts.", evaluated)
    yield _labelled(
        CounterMetricFamily, "ideamine_gate_passed", "Gate verdicts that passed.", passed
    )


def _live_families(snapshot: Snapshot) -> Iterator[Metric]:
    live = snapshot.live
    yield GaugeMetricFamily(
        "ideamine_workers_busy",
        "Distinct processes (lease owners) running tasks now.",
        value=len(live.owners),
    )
    yield _labelled(
        GaugeMetricFamily, "ideamine_tasks_in_progress", "Tasks running now.", live.tasks_running
    )
    for name, doc, values in (
        ("ideamine_budget_tokens_used", "Tokens used by unfinished runs.", live.tokens_used),
        (
            "ideamine_budget_tokens_allocated",
            "Token budgets of unfinished runs.",
            live.tokens_allocated,
        ),
        ("ideamine_budget_usd_used", "USD used by unfinished runs.", live.usd_used),
        ("ideamine_budget_usd_allocated", "USD budgets of unfinished runs.", live.usd_allocated),
    ):
        yield _labelled(GaugeMetricFamily, name, doc, values)


def _labelled(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    values: Mapping[str, float],
) -> Metric:
    family = kind(name, doc, labels=["phase"])
    for phase, value in sorted(values.items()):
        family.add_metric([phase], value)
    return family


def _histogram(
    name: str, doc: str, values: Sequence[float], buckets: Iterable[float]
) -> HistogramMetricFamily:
    edges = [*buckets, float("inf")]
    counts = [(_le(edge), float(sum(1 for v in values if v <= edge))) for edge in edges]
    return HistogramMetricFamily(name, doc, buckets=counts, sum_value=sum(values))


def _le(edge: float) -> str:
    return "+Inf" if edge == float("inf") else f"{edge:g}"


class _Fixed(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(snapshot: Snapshot) -> bytes:
    """The snapshot in the Prometheus text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(metric_families(snapshot)))
    return generate_latest(registry)
