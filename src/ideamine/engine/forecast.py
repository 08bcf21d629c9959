"""What a run will take before it starts: levels, critical path, time, tokens and cost.

The forecast is an upper bound: a phase is expected to take its wall-clock budget, and each
agent call to use its ``max_tokens`` of output plus as much input, capped by the phase's
token budget. Loops count their maximum iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

from ideamine.config.model import PhaseSpec, PipelineSpec
from ideamine.engine.dag import critical_path, levels

__all__ = ["Forecast", "PhaseForecast", "forecast"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseForecast:
    phase: str
    level: int
    minutes: float
    tokens: int
    usd: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    levels: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]
    minutes: float  # along the critical path
    sequential_minutes: float  # if every phase ran one after another
    tokens: int
    usd: float
    phases: tuple[PhaseForecast, ...]


def forecast(pipeline: PipelineSpec) -> Forecast:
    """Forecast the whole pipeline."""
    graph = {spec.name: spec.depends_on for spec in pipeline.phases}
    duration = {spec.name: spec.budgets.wallclock_minutes for spec in pipeline.phases}
    grouped = levels(graph)
    level_of = {name: index for index, names in enumerate(grouped) for name in names}
    path, minutes = critical_path(graph, duration)
    phases = tuple(_phase(pipeline, spec, level_of[spec.name]) for spec in pipeline.phases)
    return Forecast(
        levels=tuple(tuple(names) for names in grouped),
        critical_path=tuple(path),
        minutes=minutes,
        sequential_minutes=sum(duration.values()),
        tokens=sum(p.tokens for p in phases),
        usd=round(sum(p.usd for p in phases), 4),
        phases=phases,
    )


def _phase(pipeline: PipelineSpec, spec: PhaseSpec, level: int) -> PhaseForecast:
    rounds = spec.loop.max_iterations if spec.loop else 1
    tokens = 0
    usd = 0.0
    for name in spec.agents:
        agent = pipeline.agents[name]
        calls = 0 if agent.callable else rounds
        agent_tokens = 2 * agent.max_tokens * calls
        price = pipeline.pricing.get(pipeline.model_for(agent))
        if price is not None:
            usd += agent.max_tokens * calls * (price.input_per_mtok + price.output_per_mtok) / 1e6
        tokens += agent_tokens
    if spec.budgets.tokens and tokens > spec.budgets.tokens:
        usd *= spec.budgets.tokens / tokens
        tokens = spec.budgets.tokens
    return PhaseForecast(
        phase=spec.name,
        level=level,
        minutes=spec.budgets.wallclock_minutes,
        tokens=tokens,
        usd=round(usd, 4),
    )
