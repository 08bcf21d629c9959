"""Stated quantities: the same number said in several artifacts, found so it can be compared.

A :class:`Fact` is one statement of one quantity, with where it was said and how. Facts come
from three places:

* keyed values anywhere in an artifact: ``budget_usd``, ``timeline_days``,
  ``p95_latency_ms``, ``throughput_rps``, and ``compliance`` inside a ``constraints`` object;
* requirement records with a ``metric`` and a ``target`` (NFRs): a p95 latency metric gives a
  latency, a throughput metric a rate;
* sentences: a clause that mentions p95 (``p95``, ``95th percentile``, ``95%``) and one time
  (``200 ms``, ``2 s``) states the p95 latency; ``100 requests per second`` or ``100 rps``
  states the throughput. Clauses about one endpoint (``GET /farmers``) or an alert or abort
  condition (``> 1000 ms``, ``exceeds``) are thresholds of something else and are skipped.

Latencies are normalised to milliseconds, so ``1 s`` and ``1000 ms`` agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ideamine.knowledge.guards.reading import is_number, strings

__all__ = ["LABELS", "Fact", "facts", "latency_ms", "rate_rps"]

LABELS: Mapping[str, str] = {
    "budget_usd": "the budget (USD)",
    "timeline_days": "the timeline (days)",
    "p95_latency_ms": "the p95 latency",
    "throughput_rps": "the throughput (requests per second)",
    "compliance": "the compliance regimes",
}
_KEYED = ("budget_usd", "timeline_days", "p95_latency_ms", "throughput_rps")
_P95 = re.compile(r"\bp95\b|95th[ -]percentile|\b95 ?%", re.IGNORECASE)
_TIME = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?)\b", re.IGNORECASE)
_RATE = re.compile(
    r"(\d[\d,]*(?:\.\d+)?)\s*(?:requests per second|requests/s|req/s|rps)\b", re.IGNORECASE
)
_ENDPOINT = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD)\s+/")
_THRESHOLD = re.compile(r">(?!=)|\bexceed|\babove\b|\babort|\balert", re.IGNORECASE)
_CLAUSE = re.compile(r"(?<=[.;!?])\s+|\n+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """One statement of a quantity: ``value`` normalised, ``said`` as written."""

    quantity: str
    value: float | frozenset[str]
    where: str
    said: str


def facts(artifacts: Mapping[str, Any]) -> list[Fact]:
    """Every stated quantity in ``artifacts`` (by type), in type and document order."""
    found: list[Fact] = []
    for type_ in sorted(artifacts):
        keyed = list(_keyed(artifacts[type_], type_))
        targets = list(_targets(artifacts[type_], type_))
        taken = {f.where for f in targets}
        said = [f for f in _sentences(artifacts[type_], type_) if f.where not in taken]
        found += keyed + targets + said
    return found


def latency_ms(text: str) -> float | None:
    """The one time in ``text`` in milliseconds (None for none, or for several that differ)."""
    values = {_to_ms(number, unit) for number, unit in _TIME.findall(text)}
    return values.pop() if len(values) == 1 else None


def rate_rps(text: str) -> float | None:
    """The one request rate in ``text`` (None for none, or for several that differ)."""
    values = {_number(number) for number in _RATE.findall(text)}
    return values.pop() if len(values) == 1 else None


def _keyed(value: object, where: str) -> Iterator[Fact]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            here = f"{where}.{key}"
            if key in _KEYED and is_number(inner):
                yield Fact(quantity=key, value=float(inner), where=here, said=f"{inner:g}")
            elif key == "constraints" and isinstance(inner, Mapping):
                yield from _compliance(inner, here)
            yield from _keyed(inner, here)
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from _keyed(inner, f"{where}[{index}]")


def _compliance(constraints: Mapping[str, Any], where: str) -> Iterator[Fact]:
    regimes = constraints.get("compliance")
    if isinstance(regimes, list | tuple) and all(isinstance(r, str) for r in regimes):
        shown = ", ".join(regimes) or "none"
        value = frozenset(r.upper() for r in regimes)
        yield Fact(quantity="compliance", value=value, where=f"{where}.compliance", said=shown)


def _targets(value: object, where: str) -> Iterator[Fact]:
    """Facts from records with a ``metric`` and a textual ``target`` (NFRs)."""
    if isinstance(value, Mapping):
        metric, target = value.get("metric"), value.get("target")
        if isinstance(metric, str) and isinstance(target, str):
            yield from _target_fact(metric, target, f"{where}.target")
        for key, inner in value.items():
            yield from _targets(inner, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from _targets(inner, f"{where}[{index}]")


def _target_fact(metric: str, target: str, where: str) -> Iterator[Fact]:
    lowered = metric.lower()
    if _P95.search(metric) and ("latency" in lowered or "response" in lowered):
        value = latency_ms(target)
        if value is not None:
            yield Fact(quantity="p95_latency_ms", value=value, where=where, said=target)
    elif "throughput" in lowered or "per second" in lowered or _RATE.search(target):
        rate = rate_rps(target)
        if rate is not None:
            yield Fact(quantity="throughput_rps", value=rate, where=where, said=target)


def _sentences(value: object, where: str) -> Iterator[Fact]:
    for place, text in strings(value, where):
        for clause in _CLAUSE.split(text):
            if _ENDPOINT.search(clause) or _THRESHOLD.search(clause):
                continue
            yield from _clause_facts(clause.strip(), place)


def _clause_facts(clause: str, where: str) -> Iterator[Fact]:
    if _P95.search(clause):
        value = latency_ms(clause)
        if value is not None:
            yield Fact(quantity="p95_latency_ms", value=value, where=where, said=clause)
    rate = rate_rps(clause)
    if rate is not None:
        yield Fact(quantity="throughput_rps", value=rate, where=where, said=clause)


def _to_ms(number: str, unit: str) -> float:
    value = _number(number)
    return value if unit.lower().startswith("m") else value * 1000.0


def _number(text: str) -> float:
    return float(text.replace(",", ""))
