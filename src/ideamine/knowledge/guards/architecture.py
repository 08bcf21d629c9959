"""The architecture phase's guards: scalability and security.

**scalability** is the mean of six checks over ArchitectureDoc, InfrastructureSpec, OpenAPI and
the upstream NFRs: a substantive scaling ``strategy``; named ``bottlenecks``; numeric
``targets`` (``p95_latency_ms``, ``throughput_rps``); targets at least as strict as the NFRs'
p95 latency and throughput; more than one instance or horizontal scaling; and list endpoints
that paginate (a claim of pagination that the OpenAPI contradicts scores 0; unpaginated lists
named as a bottleneck score 0.5). Passes at ``min_score`` (0.75); feeds rubric ``scalability``.

**security** reads SecurityControls: the mean of (controls / ``min_controls``, capped), the
share of ``categories`` (authentication, authorization, input-validation) covered, the share of
threat-model control references that resolve, the share of the IdeaSpec's compliance regimes
the controls claim, and the share of controls with a substantive description. Passes when
there are at least ``min_controls`` (5) controls and every other share is 1; feeds rubric
``security``; shortfalls are issues of kind ``coverage`` for the SecurityControls producers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.quantities import latency_ms, rate_rps
from ideamine.knowledge.guards.reading import at, is_number, listed, pool, records, thinness
from ideamine.knowledge.guards.settings import COUNT, NAMES, NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["check_scalability", "check_security"]

SCALE_KEYS = {"min_score": NUMBER}
SECURITY_KEYS = {"min_controls": COUNT, "categories": NAMES}
CATEGORIES = ("authentication", "authorization", "input-validation")
_PAGE_PARAMS = frozenset({"limit", "offset", "page", "page_size", "per_page", "cursor"})
_CLAIMS_PAGES = re.compile(
    r"\b(?:are|is|stay|remain)\s+paginated\b|\bpaginated\s+(?:reads|lists|endpoints)\b", re.I
)
_REPLICAS = re.compile(r"(\d+)\s+(?:\w+\s+)?(?:instances|replicas|workers|containers|nodes)")


def check_scalability(given: GuardInput) -> GuardReport:
    """The scalability guard."""
    cfg = settings("scalability", given.config, SCALE_KEYS)
    known = pool(given.artifacts, given.upstream)
    doc = _mapping(known.get("ArchitectureDoc"))
    plan = _mapping(doc.get("scalability"))
    checks = [
        _strategy(plan),
        _bottlenecks(plan),
        _targets(plan),
        _meets_nfrs(plan, known.get("NFRs")),
        _replicas(doc, known.get("InfrastructureSpec")),
        _pagination(plan, known.get("OpenAPI")),
    ]
    return scored(
        "scalability",
        checks,
        rubrics=("scalability",),
        min_score=cfg.number("min_score", 0.75),
        severity="medium",
        kind="quality",
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strategy(plan: Mapping[str, Any]) -> Check:
    why = thinness(plan.get("strategy"), min_chars=30, min_items=1)
    if why is None:
        return Check(name="strategy", score=1.0, note="scaling strategy stated")
    return Check(name="strategy", score=0.0, problem=f"ArchitectureDoc.scalability.strategy {why}")


def _bottlenecks(plan: Mapping[str, Any]) -> Check:
    why = thinness(plan.get("bottlenecks"), min_chars=5, min_items=1)
    if why is None:
        return Check(name="bottlenecks", score=1.0)
    return Check(name="bottlenecks", score=0.0, problem=f"scalability.bottlenecks {why}")


def _targets(plan: Mapping[str, Any]) -> Check:
    missing = [
        k for k in ("p95_latency_ms", "throughput_rps") if not is_number(at(plan, f"targets.{k}"))
    ]
    return Check(
        name="targets",
        score=fraction(2 - len(missing), 2),
        problem=f"scalability.targets lacks {', '.join(missing)}" if missing else "",
    )


def _meets_nfrs(plan: Mapping[str, Any], nfrs: object) -> Check:
    latency, rate = _nfr_targets(nfrs)
    ours_latency = at(plan, "targets.p95_latency_ms")
    ours_rate = at(plan, "targets.throughput_rps")
    problems = []
    if latency is not None and is_number(ours_latency) and ours_latency > latency:
        problems.append(f"target p95 {ours_latency:g} ms is looser than the NFR's {latency:g} ms")
    if rate is not None and is_number(ours_rate) and ours_rate < rate:
        problems.append(f"target {ours_rate:g} rps is below the NFR's {rate:g} rps")
    compared = (latency is not None) + (rate is not None)
    score = 1.0 - len(problems) / compared if compared else 1.0
    return Check(
        name="nfrs", score=score, problem="; ".join(problems), note="targets meet the NFRs"
    )


def _nfr_targets(nfrs: object) -> tuple[float | None, float | None]:
    latency = rate = None
    for nfr in records(nfrs, "nfrs"):
        metric, target = str(nfr.get("metric", "")).lower(), str(nfr.get("target", ""))
        if "latency" in metric and ("p95" in metric or "95" in metric):
            latency = latency_ms(target) if latency is None else latency
        elif "throughput" in metric or "per second" in target:
            rate = rate_rps(target) if rate is None else rate
    return latency, rate


def _replicas(doc: Mapping[str, Any], infra: object) -> Check:
    text = json.dumps([doc.get("deployment_architecture"), infra], ensure_ascii=False).lower()
    counts = [int(n) for n in _REPLICAS.findall(text)]
    if "horizontal" in text or "autoscal" in text or any(n >= 2 for n in counts):
        return Check(name="replicas", score=1.0, note="scales out beyond one instance")
    return Check(
        name="replicas",
        score=0.0,
        problem="the deployment runs one instance and says nothing of scaling out",
    )


def _pagination(plan: Mapping[str, Any], openapi: object) -> Check:
    lists = _list_endpoints(openapi)
    flat = [path for path, params in lists if not (params & _PAGE_PARAMS)]
    if not lists or not flat:
        return Check(name="pagination", score=1.0, note="list endpoints paginate")
    claims = _CLAIMS_PAGES.search(str(plan.get("strategy", ""))) is not None
    named = "paginat" in json.dumps(plan.get("bottlenecks", "")).lower()
    where = f"{len(flat)} of {len(lists)} list endpoints take no page parameter ({shown(flat)})"
    if claims:
        return Check(
            name="pagination",
            score=0.0,
            problem=f"scalability.strategy says lists are paginated, but {where}",
        )
    score = 0.5 if named else 0.0
    verdict = "named as a bottleneck" if named else "not addressed"
    return Check(name="pagination", score=score, problem=f"{where}: {verdict}")


def _list_endpoints(openapi: object) -> list[tuple[str, frozenset[str]]]:
    found = []
    for path, item in _mapping(at(openapi, "paths")).items():
        get = _mapping(_mapping(item).get("get"))
        schema = at(get, "responses.200.content.application/json.schema")
        if get and _mapping(schema).get("type") == "array":
            names = {str(p.get("name", "")) for p in records(get, "parameters")}
            found.append((f"GET {path}", frozenset(names)))
    return found


def check_security(given: GuardInput) -> GuardReport:
    """The security guard (architecture's security controls)."""
    cfg = settings("security", given.config, SECURITY_KEYS)
    known = pool(given.artifacts, given.upstream)
    controls_doc = _mapping(known.get("SecurityControls"))
    controls = records(controls_doc, "controls")
    need = cfg.count("min_controls", 5)
    checks = [
        Check(
            name="count",
            score=fraction(len(controls), need) if need else 1.0,
            problem=f"SecurityControls lists {len(controls)} controls, fewer than {need}"
            if len(controls) < need
            else "",
            note=f"{len(controls)} controls",
        ),
        _categories(controls, cfg.names("categories", CATEGORIES)),
        _threats(controls_doc, controls),
        _compliance(controls_doc, _mapping(known.get("IdeaSpec"))),
        _described(controls),
    ]
    return scored(
        "security",
        checks,
        rubrics=("security",),
        min_score=1.0,
        severity="high",
        kind="coverage",
        missing_agents=given.producers.get("SecurityControls", ()),
    )


def _categories(controls: list[Mapping[str, Any]], wanted: tuple[str, ...]) -> Check:
    seen = {str(c.get("category", "")).lower() for c in controls}
    missing = [w for w in wanted if w.lower() not in seen]
    return Check(
        name="categories",
        score=fraction(len(wanted) - len(missing), len(wanted)) if wanted else 1.0,
        problem=f"no control for {shown(missing)}" if missing else "",
    )


def _threats(doc: Mapping[str, Any], controls: list[Mapping[str, Any]]) -> Check:
    ids = {str(c.get("id")) for c in controls}
    refs = [str(r) for r in listed(doc, "threat_model[].control_ids[]")]
    unknown = sorted({r for r in refs if r not in ids})
    if not refs:
        return Check(
            name="threats", score=0.0, problem="the threat model maps no threat to a control"
        )
    return Check(
        name="threats",
        score=fraction(len([r for r in refs if r in ids]), len(refs)),
        problem=f"threat_model names controls that do not exist: {shown(unknown)}"
        if unknown
        else "",
    )


def _compliance(doc: Mapping[str, Any], spec: Mapping[str, Any]) -> Check:
    """Each regime the IdeaSpec requires is mapped (a name, or ``{"regime", "control_ids"}``
    whose controls all exist)."""
    wanted = [str(r) for r in at(spec, "constraints.compliance") or ()]
    ids = {str(c.get("id")) for c in records(doc, "controls")}
    mapped: dict[str, list[str]] = {}
    for entry in doc.get("compliance") or ():
        if isinstance(entry, str):
            mapped[entry.upper()] = []
        elif isinstance(entry, Mapping) and isinstance(entry.get("regime"), str):
            refs = [str(i) for i in entry.get("control_ids") or ()]
            mapped[entry["regime"].upper()] = [i for i in refs if i not in ids]
    missing = [r for r in wanted if r.upper() not in mapped]
    dangling = [f"{r} → {', '.join(mapped[r.upper()])}" for r in wanted if mapped.get(r.upper())]
    problems = [f"no controls address compliance with {shown(missing)}"] if missing else []
    problems += (
        [f"compliance maps controls that do not exist: {shown(dangling)}"] if dangling else []
    )
    bad = len(missing) + len(dangling)
    return Check(
        name="compliance",
        score=1.0 if not wanted else fraction(len(wanted) - bad, len(wanted)),
        problem="; ".join(problems),
    )


def _described(controls: list[Mapping[str, Any]]) -> Check:
    bare = [
        str(c.get("id", f"controls[{i}]"))
        for i, c in enumerate(controls)
        if thinness(c.get("description"), min_chars=20, min_items=1)
    ]
    return Check(
        name="described",
        score=fraction(len(controls) - len(bare), len(controls)) if controls else 0.0,
        problem=f"controls without a substantive description: {shown(bare)}" if bare else "",
    )
