"""Fan-in: combine a phase attempt's task outputs, ordered by branch key, never by time.

Every function here sorts by branch key first, so the result is the same whatever order the
tasks finished in (a hypothesis test proves it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ideamine.canonical import canonical_json
from ideamine.config.model import AggregationKind

__all__ = ["Outputs", "aggregate", "concat", "merge", "vote"]

Outputs = Mapping[str, object]  # branch key → output


def _ordered(outputs: Outputs) -> list[object]:
    return [outputs[key] for key in sorted(outputs)]


def merge(outputs: Outputs) -> object:
    """Deep-merge mappings in branch-key order: a later branch wins a key; keys sorted."""
    result: object = {}
    for value in _ordered(outputs):
        result = _merge_two(result, value)
    return _sort_keys(result)


def _merge_two(left: object, right: object) -> object:
    if isinstance(left, dict) and isinstance(right, dict):
        merged = dict(left)
        for key, value in right.items():
            merged[key] = _merge_two(merged[key], value) if key in merged else value
        return merged
    return right


def _sort_keys(value: object) -> object:
    if isinstance(value, dict):
        return {key: _sort_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sort_keys(item) for item in value]
    return value


def concat(outputs: Outputs) -> object:
    """The outputs as ``{"items": [...]}`` in branch-key order."""
    return {"items": _ordered(outputs)}


def vote(outputs: Outputs) -> object:
    """The output most branches agree on (by canonical JSON); ties go to the first branch."""
    ordered = _ordered(outputs)
    if not ordered:
        return None
    counts = Counter(canonical_json(value) for value in ordered)
    best = max(counts.values())
    return next(value for value in ordered if counts[canonical_json(value)] == best)


def aggregate(
    kind: AggregationKind, outputs: Outputs, custom: Callable[[list[Any]], object] | None = None
) -> object:
    """Fan ``outputs`` in with the phase's aggregation ``kind``.

    A ``custom`` function receives the outputs as a list already in branch-key order.
    """
    if kind is AggregationKind.MERGE:
        return merge(outputs)
    if kind is AggregationKind.CONCAT:
        return concat(outputs)
    if kind is AggregationKind.VOTE:
        return vote(outputs)
    if custom is None:
        raise ValueError("custom aggregation needs its function")
    return custom(_ordered(outputs))
