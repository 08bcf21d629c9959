"""forecast(): levels, critical path, time, tokens and cost before a run starts."""

from __future__ import annotations

import pytest
from tests.unit.engine.factories import SPEC_DAG, agent_spec, phase_spec, pipeline_spec

from ideamine.config.model import FanOutKind, PipelineSpec, Price
from ideamine.engine.forecast import PhaseForecast, forecast

PRICES = {
    "offline:template": Price(input_per_mtok=3.0, output_per_mtok=15.0),
    "cloud:big": Price(input_per_mtok=10.0, output_per_mtok=30.0),
}


def _diamond() -> PipelineSpec:
    """a → {b, c} → d with b the slow branch; one 1,000-token agent per phase."""
    phases = [
        phase_spec("a", agents=("A",), wallclock_minutes=10),
        phase_spec("b", depends_on=("a",), agents=("B",), wallclock_minutes=30),
        phase_spec("c", depends_on=("a",), agents=("C",), wallclock_minutes=5),
        phase_spec("d", depends_on=("b", "c"), agents=("D",), wallclock_minutes=10),
    ]
    agents = {name: agent_spec(name, max_tokens=1000) for name in "ABCD"}
    return pipeline_spec(phases, agents=agents, pricing=PRICES)


def test_levels_and_critical_path() -> None:
    result = forecast(_diamond())
    assert result.levels == (("a",), ("b", "c"), ("d",))
    assert result.critical_path == ("a", "b", "d")


def test_minutes_follow_the_critical_path() -> None:
    result = forecast(_diamond())
    assert result.minutes == 50
    assert result.sequential_minutes == 55


def test_each_phase_is_forecast_in_pipeline_order() -> None:
    result = forecast(_diamond())
    assert result.phases[1] == PhaseForecast(phase="b", level=1, minutes=30, tokens=2000, usd=0.018)
    assert [(p.phase, p.level) for p in result.phases] == [("a", 0), ("b", 1), ("c", 1), ("d", 2)]


def test_tokens_count_output_and_as_much_input_per_call() -> None:
    result = forecast(_diamond())
    assert [p.tokens for p in result.phases] == [2000] * 4
    assert result.tokens == 8000


def test_cost_comes_from_the_default_models_price() -> None:
    # 1,000 tokens in and out at $3 + $15 per million = $0.018 per phase.
    result = forecast(_diamond())
    assert result.usd == pytest.approx(0.072)


def test_cost_uses_the_agents_own_model() -> None:
    agents = {"A": agent_spec("A", max_tokens=1000, model="cloud:big")}
    pipeline = pipeline_spec([phase_spec("a", agents=("A",))], agents=agents, pricing=PRICES)
    assert forecast(pipeline).usd == pytest.approx(0.04)


def test_an_unpriced_model_costs_nothing_but_still_uses_tokens() -> None:
    agents = {"A": agent_spec("A", max_tokens=1000, model="local:free")}
    pipeline = pipeline_spec([phase_spec("a", agents=("A",))], agents=agents, pricing=PRICES)
    result = forecast(pipeline)
    assert (result.tokens, result.usd) == (2000, 0.0)


def test_callable_agents_make_no_model_calls() -> None:
    agents = {
        "A": agent_spec("A", max_tokens=1000),
        "Py": agent_spec("Py", max_tokens=1000, callable_="pkg.mod:run"),
    }
    phases = [phase_spec("a", agents=("A", "Py"))]
    result = forecast(pipeline_spec(phases, agents=agents, pricing=PRICES))
    assert (result.tokens, result.usd) == (2000, pytest.approx(0.018))


def test_loop_phases_count_their_max_iterations() -> None:
    loop = phase_spec("loop", agents=("W", "T"), kind=FanOutKind.ITERATIVE, max_iterations=4)
    agents = {name: agent_spec(name, max_tokens=1000) for name in "WT"}
    (phase,) = forecast(pipeline_spec([loop], agents=agents, pricing=PRICES)).phases
    assert phase.tokens == 2 * 1000 * 2 * 4
    assert phase.usd == pytest.approx(8 * 0.018)


def test_the_phase_token_budget_caps_tokens_and_cost() -> None:
    loop = phase_spec(
        "loop", agents=("W", "T"), kind=FanOutKind.ITERATIVE, max_iterations=4, tokens=4000
    )
    agents = {name: agent_spec(name, max_tokens=1000) for name in "WT"}
    (phase,) = forecast(pipeline_spec([loop], agents=agents, pricing=PRICES)).phases
    assert phase.tokens == 4000
    assert phase.usd == pytest.approx(8 * 0.018 * 4000 / 16000)


def test_a_budget_above_the_estimate_changes_nothing() -> None:
    agents = {"A": agent_spec("A", max_tokens=1000)}
    phases = [phase_spec("a", agents=("A",), tokens=1_000_000)]
    (phase,) = forecast(pipeline_spec(phases, agents=agents, pricing=PRICES)).phases
    assert (phase.tokens, phase.usd) == (2000, 0.018)


def test_forecast_of_the_spec_dag() -> None:
    phases = [phase_spec(name, depends_on=deps, agents=("X",)) for name, deps in SPEC_DAG.items()]
    agents = {"X": agent_spec("X", max_tokens=1000)}
    result = forecast(pipeline_spec(phases, agents=agents))
    assert len(result.levels) == 12
    assert result.levels[7] == ("security", "story-loop")
    assert result.minutes == 12 * 10.0
    assert result.sequential_minutes == 13 * 10.0
    assert result.usd == 0.0
