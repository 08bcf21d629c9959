"""Write small pipeline configurations (overlay folders) for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from ideamine.config.loader import default_config_dir

SPEC_DAG: dict[str, list[str]] = {
    "intake": [],
    "ideation": ["intake"],
    "critique": ["ideation"],
    "prd": ["critique"],
    "bizdev": ["prd"],
    "architecture": ["bizdev"],
    "build": ["architecture"],
    "security": ["build"],
    "story-loop": ["build"],
    "qa": ["security", "story-loop"],
    "aesthetic": ["qa"],
    "release": ["aesthetic"],
    "beta": ["release"],
}

OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["value"],
    "properties": {"value": {"type": "object"}},
}


def phase_document(
    name: str,
    deps: Sequence[str],
    agents: Sequence[str],
    parallelism: str | int = "parallel",
    aggregation: str = "merge",
    loop: Mapping[str, object] | None = None,
    heartbeat: Mapping[str, object] | None = None,
    retries: int = 3,
) -> dict[str, object]:
    document: dict[str, object] = {
        "phase": name,
        "description": f"test phase {name}",
        "depends_on": list(deps),
        "parallelism": parallelism,
        "aggregation": aggregation,
        "agents": list(agents),
        "budgets": {"tokens": 1000, "wallclock_minutes": 1},
        "gate": {"pass_threshold": 0.5, "max_attempts": 1, "rubrics": {"grounding": 1.0}},
        "qav": {"max_questions": 0, "min_grounding": 0.5, "max_iterations": 1},
        "artifacts": [{"type": f"{_pascal(name)}Result", "required": True}],
        "retries": {"max_attempts": retries, "base_delay_ms": 10, "max_delay_ms": 50},
    }
    if heartbeat:
        document["heartbeat"] = dict(heartbeat)
    if loop:
        document["loop"] = dict(loop)
    return document


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def write_callable_pipeline(
    root: Path,
    dag: Mapping[str, Sequence[str]],
    *,
    agents_per_phase: int,
    function: str = "tests.support.agents:echo",
    parallelism: Mapping[str, str | int] | None = None,
    heartbeat: Mapping[str, object] | None = None,
) -> Path:
    """A pipeline over ``dag`` whose agents all call ``function``; returns ``root``."""
    (root / "phases").mkdir(parents=True, exist_ok=True)
    (root / "agents").mkdir(exist_ok=True)
    (root / "schemas").mkdir(exist_ok=True)
    (root / "pipeline.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "test",
                "version": "1",
                "phases": list(dag),
                "default_model": "offline:template",
            }
        )
    )
    for name, deps in dag.items():
        agents = [f"{_pascal(name)}Agent{index}" for index in range(agents_per_phase)]
        mode = (parallelism or {}).get(name, "parallel")
        loop = {"max_iterations": 3, "until": "iteration >= 3"} if mode == "iterative" else None
        document = phase_document(
            name,
            deps,
            agents,
            parallelism=mode,
            aggregation="concat" if loop else "merge",
            loop=loop,
            heartbeat=heartbeat,
        )
        (root / "phases" / f"{name}.yaml").write_text(yaml.safe_dump(document))
        (root / "schemas" / f"{_pascal(name)}Result.yaml").write_text(
            yaml.safe_dump({"type": "object"})
        )
        for agent in agents:
            (root / "agents" / f"{agent}.yaml").write_text(
                yaml.safe_dump(
                    {
                        "name": agent,
                        "phase": name,
                        "role": "test agent",
                        "artifact_type": f"{_pascal(name)}Result",
                        "output_schema": OUTPUT_SCHEMA,
                        "callable": function,
                        "timeout_seconds": 30,
                    }
                )
            )
    return root


def write_shipped_phases(root: Path, phases: Sequence[str]) -> Path:
    """An overlay folder running only ``phases`` of the shipped pipeline (their agents, models
    and gates unchanged): a real run in seconds for tests that need some run, not all of one.
    Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    pipeline = yaml.safe_load((default_config_dir() / "pipeline.yaml").read_text())
    pipeline["phases"] = list(phases)
    (root / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    return root


def write_coverage_loop(
    root: Path,
    nfr_function: str,
    *,
    max_attempts: int = 4,
    model: str = "offline:template",
    guards: list[dict[str, object]] | None = None,
) -> Path:
    """One phase, prd, whose NFRsAgent may write too few NFRs; gated by coverage."""
    for folder in ("phases", "agents", "schemas"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yaml").write_text(
        yaml.safe_dump({"name": "loop", "version": "1", "phases": ["prd"], "default_model": model})
    )
    (root / "phases" / "prd.yaml").write_text(
        yaml.safe_dump(
            {
                "phase": "prd",
                "parallelism": "parallel",
                "agents": ["StoryCutterAgent", "NFRsAgent"],
                "budgets": {"tokens": 100_000, "wallclock_minutes": 5},
                "guards": guards
                or [{"type": "coverage", "config": {"min_stories": 5, "min_nfrs": 3}}],
                "gate": {
                    "pass_threshold": 0.9,
                    "max_attempts": max_attempts,
                    "rubrics": {"coverage": 1.0},
                },
                "qav": {
                    "enabled": False,
                    "max_questions": 0,
                    "min_grounding": 0.5,
                    "max_iterations": 1,
                },
                "artifacts": [{"type": "UserStories"}, {"type": "NFRs"}],
                "retries": {"max_attempts": 1, "base_delay_ms": 10, "max_delay_ms": 50},
            }
        )
    )
    for name, artifact, function in (
        ("StoryCutterAgent", "UserStories", "tests.support.agents:stories"),
        ("NFRsAgent", "NFRs", nfr_function),
    ):
        (root / "agents" / f"{name}.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "phase": "prd",
                    "role": "test agent",
                    "artifact_type": artifact,
                    "output_schema": {"type": "object"},
                    "callable": function,
                }
            )
        )
    return root
