"""Every guard the shipped phase YAMLs configure for intake … architecture, aesthetic and release
passes on the artifacts of a real offline run: honest offline artifacts pass honest guards.

The run is the real CLI in a subprocess (``ideamine run``, offline model, SQLite in a temporary
folder, the tool phases running their real tools), with one change: a config overlay that sets
every phase's gate ``pass_threshold`` to 0, so the run reaches release whatever the tool phases
measure and whatever Q/A/V grounds. The guards are then run here with the *shipped* configs,
and must pass on their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.knowledge.guards import GuardInput, GuardReport, guard_for

# The run executes the real tools of build, security, story-loop and qa (minutes, not seconds).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
PHASES_DIR = Path(__file__).parents[3] / "src" / "ideamine" / "config" / "defaults" / "phases"
JUDGED = ("intake", "ideation", "critique", "prd", "bizdev", "architecture", "aesthetic", "release")


def _ideamine(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDEAMINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "ideamine", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"ideamine {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _open_gates(overlay: Path) -> None:
    """Copies of the shipped phase YAMLs whose gates pass at any score."""
    (overlay / "phases").mkdir(parents=True)
    for path in PHASES_DIR.glob("*.yaml"):
        phase = yaml.safe_load(path.read_text(encoding="utf-8"))
        phase["gate"]["pass_threshold"] = 0.0
        (overlay / "phases" / path.name).write_text(yaml.safe_dump(phase), encoding="utf-8")


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Any]]:
    """The run's latest artifacts: type → (phase, content)."""
    folder = tmp_path_factory.mktemp("offline-run")
    _open_gates(folder / "overlay")
    store = str(folder / "run.db")
    _ideamine("run", IDEA, "--store", store, "--config", str(folder / "overlay"), "-q", cwd=folder)
    (run,) = json.loads(_ideamine("runs", "--store", store, "--json", cwd=folder))
    run_id = run["id"] if isinstance(run, Mapping) else run
    _ideamine("artifacts", run_id, "--store", store, "--export", str(folder / "out"), cwd=folder)
    provenance = json.loads((folder / "out" / "provenance.json").read_text(encoding="utf-8"))
    return {
        type_: (str(record["phase"]), json.loads((folder / "out" / f"{type_}.json").read_text()))
        for type_, record in provenance.items()
    }


def _before(pipeline: PipelineSpec, phase: str) -> set[str]:
    """The phases ``phase`` depends on, transitively."""
    found: set[str] = set()
    todo = list(pipeline.phase(phase).depends_on)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(pipeline.phase(name).depends_on)
    return found


def _judge(
    pipeline: PipelineSpec, phase: str, run: Mapping[str, tuple[str, Any]]
) -> list[GuardReport]:
    spec = pipeline.phase(phase)
    earlier = _before(pipeline, phase)
    producers: dict[str, tuple[str, ...]] = {}
    for agent in spec.agents:
        for type_ in pipeline.agents[agent].artifact_types:
            producers[type_] = (*producers.get(type_, ()), agent)
    given = {
        "phase": phase,
        "artifacts": {t: c for t, (p, c) in run.items() if p == phase},
        "upstream": {t: c for t, (p, c) in run.items() if p in earlier},
        "producers": producers,
    }
    return [
        asyncio.run(guard_for(g.type).check(GuardInput(config=dict(g.config), **given)))
        for g in spec.guards
    ]


@pytest.mark.parametrize("phase", JUDGED)
def test_shipped_guards_pass_on_the_offline_artifacts(
    offline_run: Mapping[str, tuple[str, Any]], phase: str
) -> None:
    pipeline = load_pipeline()
    reports = _judge(pipeline, phase, offline_run)
    assert reports, f"{phase} configures no guard"
    for report in reports:
        assert report.passed, f"{phase}/{report.type}: {report.reasons}"
        assert not report.evidence_gap
        assert report.scores and all(score >= 0.75 for score in report.scores.values())


def test_beta_reports_gaps_not_passes_on_the_offline_artifacts(
    offline_run: Mapping[str, tuple[str, Any]],
) -> None:
    """Nothing is deployed offline: deployment health and the canary are evidence gaps."""
    reports = {r.type: r for r in _judge(load_pipeline(), "beta", offline_run)}
    assert reports["deployment_health"].evidence_gap and reports["deployment_health"].scores == {}
    assert reports["canary_validation"].evidence_gap and reports["canary_validation"].scores == {}
    assert reports["monitoring"].scores == {"monitoring": 1.0}
