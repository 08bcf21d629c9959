"""financial_viability (bizdev): does the business plan add up?

The mean of six measured checks over BusinessPlan, PricingModel, GTMStrategy and the upstream
IdeaSpec:

* revenue: the plan names revenue streams, or a pricing tier costs money;
* unit margin: revenue per customer a month exceeds the cost to serve one;
* break-even: a positive number of customers is named, and at that margin it covers the
  recurring costs (cost items not about building the product);
* budget fit: the plan says it fits the budget, and the go-to-market spend stays within the
  IdeaSpec's ``budget_usd``;
* pricing: every tier has a non-negative price, and the strategy is argued;
* experiments: the share of pricing hypotheses with a success metric.

Passes at ``min_score`` (0.7, SPEC §1); feeds rubric ``viability``; a failure is an issue of
kind ``quality``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.reading import at, is_number, pool, records, thinness
from ideamine.knowledge.guards.settings import NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["check_financial_viability"]

KEYS = {"min_score": NUMBER}
_BUILD_WORDS = ("build", "development", "one-off", "one off", "setup", "set-up")


def check_financial_viability(given: GuardInput) -> GuardReport:
    """The financial_viability guard."""
    cfg = settings("financial_viability", given.config, KEYS)
    known = pool(given.artifacts, given.upstream)
    plan = _mapping(known.get("BusinessPlan"))
    pricing = _mapping(known.get("PricingModel"))
    checks = [
        _revenue(plan, pricing),
        _margin(plan),
        _break_even(plan),
        _budget(plan, _mapping(known.get("GTMStrategy")), _mapping(known.get("IdeaSpec"))),
        _pricing(pricing),
        _experiments(pricing),
    ]
    return scored(
        "financial_viability",
        checks,
        rubrics=("viability",),
        min_score=cfg.number("min_score", 0.7),
        severity="medium",
        kind="quality",
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _revenue(plan: Mapping[str, Any], pricing: Mapping[str, Any]) -> Check:
    streams = at(plan, "business_model.revenue_streams")
    paid = [t for t in records(pricing, "tiers") if _price(t) > 0]
    if thinness(streams, min_chars=5, min_items=1) is None or paid:
        return Check(name="revenue", score=1.0, note="revenue named")
    return Check(name="revenue", score=0.0, problem="no revenue stream and no paid pricing tier")


def _margin(plan: Mapping[str, Any]) -> Check:
    revenue, cost = _unit(plan)
    if revenue is None or cost is None:
        return Check(name="margin", score=0.0, problem="unit_economics lacks revenue or cost")
    if revenue > cost:
        return Check(name="margin", score=1.0, note=f"unit margin ${revenue - cost:g}/month")
    return Check(
        name="margin",
        score=0.0,
        problem=f"revenue per customer ${revenue:g}/month does not exceed the cost to serve "
        f"${cost:g}/month",
    )


def _break_even(plan: Mapping[str, Any]) -> Check:
    customers = at(plan, "viability.break_even_customers")
    revenue, cost = _unit(plan)
    if not is_number(customers) or customers <= 0:
        return Check(name="break_even", score=0.0, problem="no positive break_even_customers")
    running = sum(
        float(item["monthly_usd"])
        for item in records(plan, "cost_structure")
        if is_number(item.get("monthly_usd")) and not _is_build(item)
    )
    if revenue is None or cost is None or revenue <= cost:
        return Check(name="break_even", score=0.5, problem="break-even cannot be checked")
    needed = math.ceil(running / (revenue - cost)) if running else 0
    if customers >= needed:
        return Check(name="break_even", score=1.0, note=f"break-even at {customers} customers")
    return Check(
        name="break_even",
        score=fraction(customers, needed),
        problem=f"break_even_customers {customers} cannot cover ${running:g}/month at "
        f"${revenue - cost:g} margin each (needs {needed})",
    )


def _budget(plan: Mapping[str, Any], gtm: Mapping[str, Any], spec: Mapping[str, Any]) -> Check:
    problems = []
    if at(plan, "viability.budget_fit") is not True:
        problems.append("BusinessPlan.viability.budget_fit is not true")
    budget, spend = at(spec, "constraints.budget_usd"), gtm.get("budget_share_usd")
    if is_number(budget) and is_number(spend) and spend > budget:
        problems.append(f"GTMStrategy.budget_share_usd ${spend:g} exceeds the budget ${budget:g}")
    score = 1.0 - len(problems) / 2
    return Check(name="budget", score=score, problem="; ".join(problems), note="fits the budget")


def _pricing(pricing: Mapping[str, Any]) -> Check:
    tiers = records(pricing, "tiers")
    bad = [str(t.get("name", f"tiers[{i}]")) for i, t in enumerate(tiers) if _price(t) < 0]
    argued = thinness(at(pricing, "pricing_strategy.rationale"), min_chars=20, min_items=1)
    problems = [f"tiers without a valid price: {shown(bad)}"] if bad else []
    problems += ["PricingModel has no tiers"] if not tiers else []
    problems += [f"pricing_strategy.rationale {argued}"] if argued else []
    score = max(0.0, 1.0 - len(problems) / 2)
    return Check(name="pricing", score=score, problem="; ".join(problems), note="tiers priced")


def _experiments(pricing: Mapping[str, Any]) -> Check:
    tests = records(pricing, "experiments")
    vague = [
        f"experiments[{i}]"
        for i, e in enumerate(tests)
        if thinness(e.get("success_metric"), min_chars=3, min_items=1)
    ]
    if not tests:
        return Check(name="experiments", score=0.0, problem="no pricing experiment is planned")
    return Check(
        name="experiments",
        score=fraction(len(tests) - len(vague), len(tests)),
        problem=f"experiments without a success metric: {shown(vague)}" if vague else "",
    )


def _unit(plan: Mapping[str, Any]) -> tuple[float | None, float | None]:
    revenue = at(plan, "unit_economics.revenue_per_customer_month_usd")
    cost = at(plan, "unit_economics.cost_to_serve_month_usd")
    return (
        float(revenue) if is_number(revenue) else None,
        float(cost) if is_number(cost) else None,
    )


def _price(tier: Mapping[str, Any]) -> float:
    for key in ("price_usd_month", "price_usd", "price"):
        if is_number(tier.get(key)):
            return float(tier[key])
    return -1.0


def _is_build(item: Mapping[str, Any]) -> bool:
    text = f"{item.get('item', '')} {item.get('basis', '')}".lower()
    return any(word in text for word in _BUILD_WORDS)
