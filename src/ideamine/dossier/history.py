"""How the run went: phase timeline, gate history, cost per phase, provenance of every
artifact, assumptions and open questions. All read from the run's rows; nothing estimated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ideamine.dossier.facts import RunFacts
from ideamine.stores.dossiers import GateEvaluationRecord

__all__ = ["assumptions", "costs", "gate_history", "open_questions", "phase_timeline", "provenance"]

NO_GATE = "no gate has judged this run yet"


def _seconds(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds(), 6)


def phase_timeline(facts: RunFacts) -> list[dict[str, object]]:
    """Every phase attempt with its start, end and duration, in start order."""
    return [
        {
            "phase": p.phase,
            "attempt": p.attempt,
            "status": p.status.value,
            "started_at": p.started_at,
            "finished_at": p.finished_at,
            "duration_seconds": _seconds(p.started_at, p.finished_at),
            "error": p.error,
        }
        for p in sorted(facts.phases, key=lambda p: (p.started_at, p.phase, p.attempt))
    ]


def gate_history(facts: RunFacts) -> dict[str, object]:
    """Gate verdicts per phase attempt; an attempt no gate judged says so, with no score."""
    verdicts: dict[tuple[str, int], GateEvaluationRecord] = {}
    for verdict in facts.gates:
        verdicts[(verdict.phase, verdict.attempt)] = verdict  # the latest per attempt
    attempts = []
    for p in sorted(facts.phases, key=lambda p: (facts_order(facts, p.phase), p.attempt)):
        judged = verdicts.get((p.phase, p.attempt))
        attempts.append(
            {
                "phase": p.phase,
                "attempt": p.attempt,
                "phase_status": p.status.value,
                "judged": judged is not None,
                "passed": judged.passed if judged else None,
                "score": judged.score if judged else None,
                "threshold": judged.threshold if judged else _threshold(facts, p.phase),
            }
        )
    return {
        "judged": bool(facts.gates),
        "note": None if facts.gates else NO_GATE,
        "attempts": attempts,
        "evaluations": [_verdict(v) for v in facts.gates],
    }


def facts_order(facts: RunFacts, phase: str) -> int:
    order = facts.phase_order()
    return order.index(phase) if phase in order else len(order)


def _threshold(facts: RunFacts, phase: str) -> float | None:
    for spec in facts.pipeline.phases if facts.pipeline else ():
        if spec.name == phase:
            return spec.gate.pass_threshold
    return None


def _verdict(v: GateEvaluationRecord) -> dict[str, object]:
    return {
        "id": v.id,
        "phase": v.phase,
        "attempt": v.attempt,
        "passed": v.passed,
        "score": v.score,
        "threshold": v.threshold,
        "created_at": v.created_at,
        "result": dict(v.result),
    }


def _number(value: object) -> float:
    return float(str(value)) if value is not None else 0.0


def costs(facts: RunFacts) -> dict[str, object]:
    """Model calls, tokens and cost per phase (pipeline order) and per model, with totals."""
    by_phase: dict[str, dict[str, float]] = {name: _zero() for name in facts.phase_order()}
    by_model: dict[str, dict[str, float]] = {}
    for call in facts.calls:
        model = f"{call['provider']}:{call['model']}"
        for bucket in (
            by_phase.setdefault(str(call["phase"]), _zero()),
            by_model.setdefault(model, _zero()),
        ):
            bucket["calls"] += 1
            bucket["tokens_in"] += _number(call["tokens_in"])
            bucket["tokens_out"] += _number(call["tokens_out"])
            bucket["cost_usd"] += _number(call["cost_usd"])
    total = _zero()
    for bucket in by_phase.values():
        for key in total:
            total[key] += bucket[key]
    return {
        "total": _rounded(total),
        "by_phase": [{"phase": name, **_rounded(b)} for name, b in by_phase.items()],
        "by_model": [{"model": name, **_rounded(b)} for name, b in sorted(by_model.items())],
    }


def _zero() -> dict[str, float]:
    return {"calls": 0.0, "tokens_in": 0.0, "tokens_out": 0.0, "cost_usd": 0.0}


def _rounded(bucket: Mapping[str, float]) -> dict[str, object]:
    return {
        "calls": int(bucket["calls"]),
        "tokens_in": int(bucket["tokens_in"]),
        "tokens_out": int(bucket["tokens_out"]),
        "tokens": int(bucket["tokens_in"] + bucket["tokens_out"]),
        "cost_usd": round(bucket["cost_usd"], 6),
    }


def provenance(facts: RunFacts) -> list[dict[str, object]]:
    """Where every artifact (latest version) came from, in phase order."""
    entries = []
    for artifact_type, fact in facts.artifacts.items():
        record, origin = fact.record, fact.record.provenance
        inputs = origin.get("input_artifact_ids")
        entries.append(
            {
                "artifact": artifact_type,
                "id": record.id,
                "version": record.version,
                "sha256": record.content_hash,
                "phase": record.phase,
                "attempt": record.attempt,
                "created_at": record.created_at,
                "agents": _strings(origin.get("agents")),
                "models": _strings(origin.get("models")),
                "prompt_hashes": _strings(origin.get("prompt_hashes")),
                "inputs": [
                    {"id": i, "type": facts.artifact_types.get(i)} for i in _strings(inputs)
                ],
                "tokens": int(_number(origin.get("tokens"))),
                "cost_usd": _number(origin.get("cost_usd")),
            }
        )
    return sorted(entries, key=lambda e: (facts_order(facts, str(e["phase"])), str(e["artifact"])))


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def assumptions(facts: RunFacts) -> dict[str, object]:
    """The intake's assumptions and the critique's revisions of them, as stated."""
    spec = facts.content("IdeaSpec") or {}
    revised = facts.content("RevisedAssumptions") or {}
    keep = ("id", "statement", "reason", "field")
    keep_revised = (
        "id",
        "source",
        "original",
        "revised",
        "status",
        "confidence",
        "validation_method",
    )
    return {
        "initial": [_pick(a, keep) for a in _objects(spec.get("assumptions"))],
        "revised": [_pick(a, keep_revised) for a in _objects(revised.get("assumptions"))],
    }


def _objects(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _pick(item: Mapping[str, object], keys: tuple[str, ...]) -> dict[str, object]:
    return {key: None if item.get(key) is None else str(item.get(key)) for key in keys}


def open_questions(facts: RunFacts) -> list[dict[str, object]]:
    """Every distinct open question any artifact lists, with the artifacts that ask it."""
    found: dict[str, list[str]] = {}
    for artifact_type, fact in facts.artifacts.items():
        content = fact.content
        questions = content.get("open_questions") if isinstance(content, Mapping) else None
        for question in questions if isinstance(questions, list) else ():
            found.setdefault(str(question), []).append(artifact_type)
    return [{"question": q, "sources": sorted(s)} for q, s in found.items()]
