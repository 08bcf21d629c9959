"""engine.budget: the worst case of a request, thresholds, the tightest scope, limits, and how
tool and wall-clock minutes are measured."""

from __future__ import annotations

import pytest

from ideamine.config.model import Budgets, Price
from ideamine.engine.budget import (
    Account,
    Amounts,
    Level,
    Resource,
    Scope,
    active_minutes,
    decide,
    evidence_minutes,
    level_of,
    pauses,
    phase_limits,
    prompt_tokens,
    run_limits,
    task_limits,
    worst_case,
)


def _account(
    scope: Scope = Scope.PHASE, *, limit: Amounts, used: Amounts | None = None, name: str = "p"
) -> Account:
    return Account(scope=scope, name=name, limits=limit, used=used or Amounts())


# -- the worst case -----------------------------------------------------------------------


@pytest.mark.parametrize(("chars", "tokens"), [(0, 1), (1, 1), (4, 1), (5, 2), (400, 100)])
def test_prompt_tokens_are_characters_over_four_rounded_up(chars: int, tokens: int) -> None:
    assert prompt_tokens("x" * chars) == tokens


def test_worst_case_is_the_prompt_plus_max_tokens_priced_from_the_table() -> None:
    price = Price(input_per_mtok=2.0, output_per_mtok=10.0)
    request = worst_case("x" * 4000, 500, price)
    assert request.tokens == 1000 + 500
    assert request.usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    assert request.tool_minutes == request.wallclock_minutes == 0


def test_a_model_missing_from_the_pricing_table_costs_nothing() -> None:
    assert worst_case("hello", 100, None) == Amounts(tokens=2 + 100, usd=0.0)


# -- thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "level"),
    [
        (0.0, Level.OK),
        (0.4999, Level.OK),
        (0.5, Level.WARN),
        (0.7999, Level.WARN),
        (0.8, Level.THROTTLE),
        (0.95, Level.THROTTLE),  # exactly 95 % is still allowed: a call must *pass* it
        (0.9501, Level.EXCEED),
        (3.0, Level.EXCEED),
    ],
)
def test_level_of_a_share(share: float, level: Level) -> None:
    assert level_of(share) is level


def test_used_plus_the_worst_case_decides_not_the_usage_alone() -> None:
    account = _account(limit=Amounts(tokens=1000), used=Amounts(tokens=400))
    assert decide([account], Amounts(tokens=50)).level is Level.OK  # 45 %
    assert decide([account], Amounts(tokens=100)).level is Level.WARN  # 50 %
    assert decide([account], Amounts(tokens=400)).level is Level.THROTTLE  # 80 %
    exceed = decide([account], Amounts(tokens=551))  # 95.1 %: the call would pass 95 %
    assert exceed.level is Level.EXCEED
    assert exceed.tightest is not None and exceed.tightest.projected == 951


def test_crossings_are_announced_once_each() -> None:
    account = _account(limit=Amounts(tokens=1000), used=Amounts(tokens=800))
    first = decide([account], Amounts(tokens=50))  # 85 %: straight past both thresholds
    assert [a.level for a in first.announce] == [Level.WARN, Level.THROTTLE]
    marks = {a.mark for a in first.announce}
    assert decide([account], Amounts(tokens=60), marks).announce == ()
    assert decide([account], Amounts(tokens=60), marks).level is Level.THROTTLE


def test_a_new_limit_is_announced_afresh() -> None:
    before = decide([_account(limit=Amounts(tokens=1000), used=Amounts(tokens=600))], Amounts())
    marks = {a.mark for a in before.announce}
    raised = _account(limit=Amounts(tokens=1100), used=Amounts(tokens=600))
    after = decide([raised], Amounts(), marks)
    assert [a.level for a in after.announce] == [Level.WARN]
    assert after.announce[0].payload()["limit"] == 1100


def test_an_exceeding_call_announces_nothing_and_names_scope_and_resource() -> None:
    run = _account(Scope.RUN, limit=Amounts(tokens=100_000), used=Amounts(tokens=60_000))
    phase = _account(limit=Amounts(tokens=10_000, usd=1.0), used=Amounts(tokens=9_000, usd=0.1))
    decision = decide([phase, run], Amounts(tokens=1_000, usd=0.01))
    assert decision.level is Level.EXCEED and decision.announce == ()
    assert decision.tightest is not None
    assert (decision.tightest.scope, decision.tightest.resource) == (Scope.PHASE, Resource.TOKENS)


# -- the tightest scope wins --------------------------------------------------------------


def test_the_tightest_scope_decides() -> None:
    task = _account(Scope.TASK, limit=Amounts(tokens=2_000), name="t1")
    phase = _account(limit=Amounts(tokens=50_000), used=Amounts(tokens=30_000))
    run = _account(Scope.RUN, limit=Amounts(tokens=1_000_000), used=Amounts(tokens=30_000))
    decision = decide([task, phase, run], Amounts(tokens=1_950))
    assert decision.level is Level.EXCEED  # 97.5 % of the task's 2 000, 64 % of the phase's
    assert decision.tightest is not None and decision.tightest.scope is Scope.TASK
    smaller = decide([task, phase, run], Amounts(tokens=900)).tightest
    assert smaller is not None and smaller.scope is Scope.PHASE  # 45 % of the task, 62 % here


def test_the_tightest_resource_decides() -> None:
    phase = _account(
        limit=Amounts(tokens=100_000, wallclock_minutes=10),
        used=Amounts(tokens=1_000, wallclock_minutes=9.6),
    )
    decision = decide([phase], Amounts(tokens=500))
    assert decision.level is Level.EXCEED
    assert decision.tightest is not None
    assert decision.tightest.resource is Resource.WALLCLOCK_MINUTES
    assert decision.tightest.request == 0  # a call adds no wall clock up front


def test_equal_shares_name_the_first_account_given() -> None:
    task = _account(Scope.TASK, limit=Amounts(tokens=1000), name="t")
    phase = _account(limit=Amounts(tokens=1000))
    decision = decide([task, phase], Amounts(tokens=990))
    assert decision.tightest is not None and decision.tightest.scope is Scope.TASK


def test_a_zero_limit_is_no_limit() -> None:
    unlimited = _account(limit=Amounts(), used=Amounts(tokens=10**9, usd=10**6))
    assert decide([unlimited], Amounts(tokens=10**9, usd=10.0)).level is Level.OK
    only_tokens = _account(limit=Amounts(tokens=1000), used=Amounts(usd=10**6))
    assert decide([only_tokens], Amounts(tokens=10, usd=1.0)).level is Level.OK


# -- limits -------------------------------------------------------------------------------

INTAKE = Budgets(tokens=50_000, usd=0.0, tool_minutes=30, wallclock_minutes=15)
IDEATION = Budgets(tokens=100_000, usd=2.0, tool_minutes=0, wallclock_minutes=30)


def test_the_run_budget_is_the_sum_of_its_phases() -> None:
    assert run_limits([INTAKE, IDEATION]) == Amounts(
        tokens=150_000, usd=2.0, tool_minutes=30, wallclock_minutes=45
    )


def test_an_addition_raises_every_limit_that_exists_and_leaves_no_limit_alone() -> None:
    added = Amounts(tokens=10_000, usd=5.0, tool_minutes=1, wallclock_minutes=2)
    assert phase_limits(INTAKE, added) == Amounts(
        tokens=60_000, usd=0.0, tool_minutes=31, wallclock_minutes=17
    )
    assert run_limits([INTAKE, IDEATION], added).usd == 7.0
    assert task_limits(2_000, added) == Amounts(tokens=12_000)
    assert task_limits(None, added) == Amounts()  # an agent without ``budget``: no task limit


# -- measuring ----------------------------------------------------------------------------


def test_pauses_span_from_pause_or_needs_attention_to_resume() -> None:
    events = [
        ("run.started", 0.0),
        ("run.needs_attention", 100.0),
        ("run.resumed", 400.0),
        ("run.paused", 500.0),
        ("run.needs_attention", 520.0),  # already paused: the pause began at 500
    ]
    assert pauses(events, now=700.0) == [(100.0, 400.0), (500.0, 700.0)]


def test_wall_clock_leaves_out_the_paused_time() -> None:
    paused = [(100.0, 400.0), (500.0, 700.0)]
    assert active_minutes((0.0, 1000.0), paused) == pytest.approx((1000 - 300 - 200) / 60)
    assert active_minutes((300.0, 450.0), paused) == pytest.approx(50 / 60)
    assert active_minutes((150.0, 160.0), paused) == 0


def test_tool_minutes_add_up_every_evidence_envelope() -> None:
    output = {
        "compile": {"ok": True, "evidence": {"tool": "compileall", "duration_ms": 30_000}},
        "tests": {"evidence": {"tool": "pytest", "duration_ms": 90_000.0}},
        "lint": [{"evidence": {"tool": "ruff", "duration_ms": 60_000}}],
        "duration_ms": 999_999,  # not inside an evidence envelope: not tool time
        "other": {"evidence": {"duration_ms": True}},  # not a number
    }
    assert evidence_minutes(output) == pytest.approx(3.0)
    assert evidence_minutes([1, "x", None]) == 0
