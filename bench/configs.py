"""Write the benchmark pipelines as overlay folders (``--config DIR``).

The same shape as ``tests/support/configs.py`` (whose ideas this reuses, kept apart so the
benchmark does not import the test suite): every phase is ``parallel`` with merge fan-in,
even story-loop, so W1 has the peers' 104 agent tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from bench.shape import DAG, FANOUT_PHASE, K, pascal, result_type

OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["value"],
    "properties": {"value": {"type": "object"}},
}


def _phase(
    name: str, deps: Sequence[str], agents: Sequence[str], heartbeat: Mapping[str, float] | None
) -> dict[str, object]:
    document: dict[str, object] = {
        "phase": name,
        "description": f"benchmark phase {name}",
        "depends_on": list(deps),
        "parallelism": "parallel",
        "aggregation": "merge",
        "agents": list(agents),
        "budgets": {"tokens": 1000, "wallclock_minutes": 10},
        "gate": {"pass_threshold": 0.5, "max_attempts": 1, "rubrics": {"grounding": 1.0}},
        "qav": {"max_questions": 0, "min_grounding": 0.5, "max_iterations": 1},
        "artifacts": [{"type": result_type(name), "required": True}],
        "retries": {"max_attempts": 3, "base_delay_ms": 10, "max_delay_ms": 50},
    }
    if heartbeat:
        document["heartbeat"] = dict(heartbeat)
    return document


def _agent(name: str, phase: str, function: str) -> dict[str, object]:
    return {
        "name": name,
        "phase": phase,
        "role": "benchmark agent",
        "artifact_type": result_type(phase),
        "output_schema": OUTPUT_SCHEMA,
        "callable": function,
        "timeout_seconds": 60,
    }


def write_pipeline(
    root: Path,
    dag: Mapping[str, Sequence[str]],
    *,
    agents_per_phase: int,
    function: str,
    heartbeat: Mapping[str, float] | None = None,
) -> Path:
    """An overlay folder for ``dag`` whose agents all call ``function``; returns ``root``."""
    for folder in ("phases", "agents", "schemas"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    pipeline = {"name": "bench", "version": "1", "phases": list(dag)}
    pipeline["default_model"] = "offline:template"
    _dump(root / "pipeline.yaml", pipeline)
    for phase, deps in dag.items():
        agents = [f"{pascal(phase)}Agent{i}" for i in range(agents_per_phase)]
        _dump(root / "phases" / f"{phase}.yaml", _phase(phase, deps, agents, heartbeat))
        _dump(root / "schemas" / f"{result_type(phase)}.yaml", {"type": "object"})
        for agent in agents:
            _dump(root / "agents" / f"{agent}.yaml", _agent(agent, phase, function))
    return root


def w1_pipeline(
    root: Path, *, slow: bool = False, heartbeat: Mapping[str, float] | None = None
) -> Path:
    """W1 (``step``, 0.02 s agents) or, with ``slow``, W3 (``slow_step``, 0.2 s agents)."""
    function = "bench.agents:slow_step" if slow else "bench.agents:step"
    return write_pipeline(root, DAG, agents_per_phase=K, function=function, heartbeat=heartbeat)


def w2_pipeline(root: Path, n: int) -> Path:
    """W2: one phase listing ``n`` no-op agents (IdeaMine lists a phase's agents by name)."""
    return write_pipeline(
        root, {FANOUT_PHASE: []}, agents_per_phase=n, function="bench.agents:noop"
    )


def _dump(path: Path, document: object) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
