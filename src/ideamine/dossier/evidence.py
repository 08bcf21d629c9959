"""Evidence gaps and missing items: what a dossier cannot claim, and why.

An artifact field that says ``measured``/``scanned``/``executed``/``collected`` is false, an
evidence envelope whose tool was cut by its time limit (``timed_out``), or a ``status`` of
``planned``/``not_run``/``not_scanned`` with no such flag, is a gap: the plan exists, the
evidence does not. Such a field is reported as a gap, never as a result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ideamine.dossier.facts import RunFacts
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.stores.records import latest_attempts

__all__ = ["EVIDENCE_FLAGS", "STOPPED", "artifact_gaps", "evidence_gaps", "missing_reason"]

EVIDENCE_FLAGS = ("measured", "scanned", "executed", "collected")
UNRUN_STATUSES = ("planned", "not_run", "not_scanned")
STOPPED = (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.NEEDS_ATTENTION)


def artifact_gaps(artifact_type: str, content: object) -> list[dict[str, object]]:
    """Every gap in one artifact's content, outermost first (a gap's children are not
    reported again)."""
    return [
        {
            "artifact": artifact_type,
            "path": path or "/",
            "flag": flag,
            "reason": _text(node.get("reason")) or _default_reason(flag),
            "tool": _tool(node),
        }
        for path, flag, node in _walk(content, "")
    ]


def evidence_gaps(facts: RunFacts) -> list[dict[str, object]]:
    """Every gap in the run's latest artifacts, by artifact type."""
    gaps: list[dict[str, object]] = []
    for artifact_type, fact in sorted(facts.artifacts.items()):
        gaps.extend(artifact_gaps(artifact_type, fact.content))
    return gaps


def _walk(node: object, path: str) -> Iterator[tuple[str, str, Mapping[str, object]]]:
    if isinstance(node, Mapping):
        flag = _flag(node)
        if flag is not None:
            yield path, flag, node
            return
        for key, child in sorted(node.items()):
            yield from _walk(child, f"{path}/{_escape(str(key))}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _walk(child, f"{path}/{index}")


def _flag(node: Mapping[str, object]) -> str | None:
    if node.get("timed_out") is True:
        return "timed_out"
    flags = [name for name in EVIDENCE_FLAGS if name in node]
    for name in flags:
        if node[name] is False:
            return name
    if not flags and node.get("status") in UNRUN_STATUSES and "reason" in node:
        return f"status {node['status']}"
    return None


def _default_reason(flag: str) -> str:
    if flag == "timed_out":
        return "the tool was cut by its time limit: nothing was measured"
    return f"{flag} is false: no tool has produced it"


def _escape(key: str) -> str:
    """A JSON Pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _tool(node: Mapping[str, object]) -> str | None:
    for key in ("tool", "tools"):
        value = node.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value:
            return ", ".join(str(item) for item in value)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def missing_reason(facts: RunFacts, artifact_type: str) -> str:
    """Why the run has no ``artifact_type``: the phase that makes it and what became of it."""
    phase = facts.producer_of(artifact_type)
    if phase is None:
        return f"no phase of this run's pipeline produces {artifact_type}"
    attempt = latest_attempts(facts.phases).get(phase)
    if attempt is None:
        if facts.run.status in STOPPED:
            return f"phase {phase} never started: the run is {facts.run.status}" + _why(facts)
        return f"phase {phase} has not started yet (run {facts.run.status})"
    if attempt.status is PhaseStatus.FAILED:
        error = f": {attempt.error}" if attempt.error else ""
        return f"phase {phase} failed in attempt {attempt.attempt}{error}"
    if attempt.status in (PhaseStatus.RUNNING, PhaseStatus.READY):
        return f"phase {phase} is still {attempt.status} (attempt {attempt.attempt})"
    return f"phase {phase} {attempt.status} without producing {artifact_type}"


def _why(facts: RunFacts) -> str:
    return f" ({facts.run.error})" if facts.run.error else ""
