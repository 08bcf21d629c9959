"""An evaluation's numbers: means overall and per category, specificity, and the targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from ideamine.eval.embedding import cosine
from ideamine.eval.runner import Outcome

__all__ = ["METRICS", "PAPER", "TARGETS", "specificities", "summarize"]

METRICS = ("completeness", "executability", "consistency", "quality")

PAPER = (
    {
        "system": "GPT-Engineer",
        "completeness": 0.5022,
        "executability": 0.3583,
        "consistency": 0.7887,
        "quality": 0.1419,
    },
    {
        "system": "MetaGPT",
        "completeness": 0.4834,
        "executability": 0.4145,
        "consistency": 0.7601,
        "quality": 0.1523,
    },
    {
        "system": "ChatDev",
        "completeness": 0.5600,
        "executability": 0.8800,
        "consistency": 0.8021,
        "quality": 0.3953,
    },
)
"""The ChatDev paper's published SRDD figures (arXiv 2307.07924). Its consistency used
another embedding model than ours, so consistency and quality are not directly comparable."""

TARGETS = (
    ("every run completes", "runs_completed_rate", 1.0),
    ("completeness", "completeness", 1.0),
    ("executability", "executability", 1.0),
    ("every artifact valid", "validity_rate", 1.0),
    ("specificity", "specificity", 1.5),
)
"""(what, summary key, at least): the targets an offline evaluation is held to."""


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The report's numbers for ``outcomes`` (finished ones measured, others listed)."""
    results = [o.result for o in outcomes if o.result is not None]
    specific = specificities(results)
    rows = [_row(r, specific.get(_key(r))) for r in results]
    overall = _means(rows)
    overall["specificity"] = _overall_specificity(results)
    categories = {
        category: _means([r for r in rows if r["category"] == category])
        for category in sorted({str(r["category"]) for r in rows})
    }
    return {
        "ideas": len(outcomes),
        "finished": len(results),
        "unfinished": [
            {"key": o.idea.key, "problem": o.problem} for o in outcomes if o.result is None
        ],
        "overall": overall,
        "categories": categories,
        "rows": rows,
        "targets": [
            {
                "what": what,
                "key": key,
                "target": target,
                "value": overall.get(key),
                "met": _met(overall.get(key), target) and len(results) == len(outcomes),
            }
            for what, key, target in TARGETS
        ],
        "paper": list(PAPER),
    }


def specificities(results: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per idea: its consistency with its own artifacts divided by the mean of its
    consistency with every other idea's artifacts (needs two ideas or more)."""
    found = {}
    for result in results:
        others = [_similarity(result, other) for other in results if _key(other) != _key(result)]
        if others and fmean(others) > 0:
            found[_key(result)] = round(_similarity(result, result) / fmean(others), 4)
    return found


def _overall_specificity(results: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean own consistency over mean cross consistency, over every pair of ideas."""
    own = [_similarity(r, r) for r in results]
    cross = [_similarity(a, b) for a in results for b in results if _key(a) != _key(b)]
    if not cross or fmean(cross) <= 0:
        return None
    return round(fmean(own) / fmean(cross), 4)


def _similarity(idea_of: Mapping[str, Any], artifacts_of: Mapping[str, Any]) -> float:
    """Consistency of one result's idea with another's artifacts (PRD and code, averaged)."""
    idea = idea_of["embeddings"]["idea"]
    vectors = artifacts_of["embeddings"]
    return (cosine(idea, vectors["prd"]) + cosine(idea, vectors["code"])) / 2


def _row(result: Mapping[str, Any], specificity: float | None) -> dict[str, Any]:
    idea = result["idea"]
    gates = result.get("gates") or {}
    return {
        "key": idea["key"],
        "name": idea["name"],
        "category": idea["category"],
        "run_id": result.get("run_id"),
        "status": result.get("status"),
        "phases": f"{result.get('phases_passed')}/{result.get('phases_total')}",
        "completed": result.get("status") == "completed",
        "completeness": result["completeness"]["score"],
        "executability": result["executability"]["score"],
        "failed_step": result["executability"].get("failed_step"),
        "consistency": result["consistency"]["score"],
        "quality": result["quality"],
        "specificity": specificity,
        "valid": bool(result["validity"]["valid"]),
        "gate_pass_rate": gates.get("pass_rate"),
        "attempts": gates.get("attempts"),
        "tokens": result.get("tokens"),
        "cost_usd": result.get("cost_usd"),
        "wall_s": result.get("wall_s"),
    }


def _means(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        values = [float(r[key]) for r in rows if r.get(key) is not None]
        return round(fmean(values), 4) if values else None

    return {
        "ideas": len(rows),
        "runs_completed_rate": _mean_of([1.0 if r["completed"] else 0.0 for r in rows]),
        **{metric: mean(metric) for metric in METRICS},
        "specificity": mean("specificity"),
        "validity_rate": _mean_of([1.0 if r["valid"] else 0.0 for r in rows]),
        "gate_pass_rate": mean("gate_pass_rate"),
        "attempts": mean("attempts"),
        "tokens": sum(int(r["tokens"] or 0) for r in rows),
        "cost_usd": round(sum(float(r["cost_usd"] or 0) for r in rows), 6),
        "wall_s": mean("wall_s"),
    }


def _mean_of(values: Sequence[float]) -> float | None:
    return round(fmean(values), 4) if values else None


def _met(value: object, target: float) -> bool:
    return isinstance(value, int | float) and value >= target


def _key(result: Mapping[str, Any]) -> str:
    return str(result["idea"]["key"])
