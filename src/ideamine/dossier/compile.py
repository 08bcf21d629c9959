"""Compile a run into its signed release dossier, and keep it.

``compile_document`` is pure: the same ``RunFacts`` and version give the same document and
so the same signature. ``compile_run`` reads the run, reuses the stored dossier when the run
has not changed since (same fingerprint), else derives the version against the project's
previous dossier, signs, and stores the result with its ``dossier.compiled`` event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ideamine.canonical import canonical_json
from ideamine.dossier.evidence import STOPPED, evidence_gaps
from ideamine.dossier.facts import RunFacts, gather, project_of
from ideamine.dossier.history import (
    assumptions,
    costs,
    gate_history,
    open_questions,
    phase_timeline,
    provenance,
)
from ideamine.dossier.sections import build_sections
from ideamine.dossier.sign import SIGNATURE_KEY, sign
from ideamine.dossier.version import Surface, VersionDecision, derive_version, parse_version
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierRecord, DossierStore, NewDossier
from ideamine.stores.records import latest_attempts

__all__ = ["FORMAT", "CompiledDossier", "compile_document", "compile_run", "completeness"]

FORMAT = "ideamine.dossier/1"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledDossier:
    record: DossierRecord
    document: Mapping[str, object]  # signed
    reused: bool  # True when the stored dossier was still current


async def compile_run(store: Store, run_id: str, *, version: str | None = None) -> CompiledDossier:
    """The run's current dossier: the stored one if the run has not changed, else a new one.

    Args:
        version: ``X.Y.Z`` to use instead of the derived version.

    Raises:
        UsageError: ``version`` is not semantic; RunNotFoundError: no such run.
        StoreError: the store cannot be read or written.
    """
    if version is not None:
        parse_version(version)
    await store.get_run(run_id)
    dossiers = DossierStore(store)
    fingerprint, _ = await dossiers.fingerprint(run_id)
    stored = await dossiers.latest_for_run(run_id)
    if stored and stored.fingerprint == fingerprint and version in (None, stored.version):
        return CompiledDossier(record=stored, document=json.loads(stored.content), reused=True)
    facts = await gather(store, run_id)
    project = project_of(facts)
    previous = await dossiers.previous_in_project(project, exclude_run=run_id)
    surface = _surface(facts)
    decision = derive_version(
        surface,
        Surface.from_json(json.loads(previous.content).get("surface")) if previous else None,
        previous.version if previous else None,
        version,
    )
    document = sign(compile_document(facts, project=project, decision=decision, surface=surface))
    signature = document[SIGNATURE_KEY]
    assert isinstance(signature, dict)
    record = await dossiers.save(
        NewDossier(
            run_id=run_id,
            project=project,
            version=decision.number,
            content=canonical_json(document),
            sha256=str(signature["value"]),
            fingerprint=facts.fingerprint,
        )
    )
    return CompiledDossier(record=record, document=document, reused=False)


def _surface(facts: RunFacts) -> Surface:
    return Surface.of(
        facts.content("OpenAPI"), facts.content("DataModel"), facts.content("UserStories")
    )


def compile_document(
    facts: RunFacts, *, project: str, decision: VersionDecision, surface: Surface
) -> dict[str, object]:
    """The unsigned dossier of ``facts`` (see ``dossier.schema.json``)."""
    sections = build_sections(facts)
    spec = facts.content("IdeaSpec") or {}
    return {
        "format": FORMAT,
        "title": str(spec.get("title") or facts.run.idea[:120]),
        "project": project,
        "run": _run(facts),
        "status": _status(facts),
        "version": {
            "number": decision.number,
            "bump": decision.bump,
            "previous": decision.previous,
            "reasons": list(decision.reasons),
        },
        "surface": surface.to_json(),
        "completeness": completeness(sections, facts),
        "sections": sections,
        "gates": gate_history(facts),
        "phases": phase_timeline(facts),
        "costs": costs(facts),
        "assumptions": assumptions(facts),
        "open_questions": open_questions(facts),
        "evidence_gaps": evidence_gaps(facts),
        "provenance": provenance(facts),
        "ledger": _ledger(facts),
    }


def _run(facts: RunFacts) -> dict[str, object]:
    run = facts.run
    return {
        "id": run.id,
        "idea": run.idea,
        "project": run.project,
        "status": run.status.value,
        "error": run.error,
        "created_at": run.created_at,
        "as_of": facts.as_of,
        "manifest_hash": run.manifest_hash,
        "constraints": dict(run.constraints),
    }


def _ledger(facts: RunFacts) -> dict[str, object]:
    return {
        "intact": facts.chain.ok,
        "events_verified": facts.chain.checked,
        "broken_at": facts.chain.broken_at,
        "reason": facts.chain.reason or None,
        "head": facts.chain_head,
        "fingerprint": facts.fingerprint,
    }


def _status(facts: RunFacts) -> dict[str, object]:
    """Whether the run finished, and for each phase that did not pass, why."""
    latest = latest_attempts(facts.phases)
    not_passed = []
    for name in facts.phase_order():
        attempt = latest.get(name)
        if attempt is not None and attempt.status is PhaseStatus.PASSED:
            continue
        not_passed.append({"phase": name, "reason": _phase_reason(facts, name)})
    status = facts.run.status
    partial = status is not RunStatus.COMPLETED
    if status in STOPPED:
        note = f"The run stopped early ({status}); this dossier is partial."
    elif partial:
        note = f"The run is {status}, not finished; this dossier is partial."
    else:
        note = "The run completed every phase."
    if facts.run.error:
        note += f" Reason: {facts.run.error}"
    return {"partial": partial, "note": note, "phases_not_passed": not_passed}


def _phase_reason(facts: RunFacts, phase: str) -> str:
    attempt = latest_attempts(facts.phases).get(phase)
    if attempt is None:
        return f"never started (run {facts.run.status})"
    if attempt.status is PhaseStatus.FAILED:
        return f"failed in attempt {attempt.attempt}" + (
            f": {attempt.error}" if attempt.error else ""
        )
    return f"{attempt.status} in attempt {attempt.attempt} (not finished)"


def completeness(sections: list[dict[str, object]], facts: RunFacts) -> dict[str, object]:
    """The share of dossier items that are present, and every item that is not, with why."""
    items = [
        {
            "section": str(section["key"]),
            "key": str(item["key"]),
            "title": str(item["title"]),
            "status": str(item["status"]),
            "reason": item.get("reason"),
        }
        for section in sections
        for item in _items(section)
    ]
    items.append(_gate_item(facts))
    present = sum(1 for item in items if item["status"] == "present")
    return {
        "percent": round(100.0 * present / len(items), 1),
        "present": present,
        "gaps": sum(1 for item in items if item["status"] == "gap"),
        "missing": sum(1 for item in items if item["status"] == "missing"),
        "total": len(items),
        "incomplete": [item for item in items if item["status"] != "present"],
    }


def _items(section: Mapping[str, object]) -> list[Mapping[str, object]]:
    items = section["items"]
    assert isinstance(items, list)
    return items


def _gate_item(facts: RunFacts) -> dict[str, object]:
    judged = bool(facts.gates)
    return {
        "section": "gates",
        "key": "gate_history",
        "title": "Gate history",
        "status": "present" if judged else "gap",
        "reason": None if judged else "no gate has judged this run yet",
    }
