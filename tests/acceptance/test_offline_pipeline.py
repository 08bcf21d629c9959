"""The README's first command: the full 13-phase pipeline on the offline model, on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from tests.acceptance.conftest import artifact_hashes, ideamine, only_run_id, read_events

from ideamine.config.loader import load_pipeline

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"

# SPEC §1, "required artifacts": asserted from the spec, not read from the shipped config.
REQUIRED = {
    "intake": ["IdeaSpec"],
    "ideation": ["IdeationResult", "CompetitiveAnalysis", "TechStackProposal"],
    "critique": ["CritiqueReport", "RiskRegister", "RevisedAssumptions"],
    "prd": ["PRD", "RTM", "UserStories"],
    "bizdev": ["BusinessPlan", "PricingModel", "GTMStrategy"],
    "architecture": ["ArchitectureDoc", "OpenAPI", "DataModel", "InfrastructureSpec"],
    "build": ["SourceCode", "TestSuite", "CoverageReport", "RepoManifest"],
    "security": ["SecurityPack", "SBOM", "VulnerabilityScan", "SecretsScanReport"],
    "story-loop": ["ImplementedStories", "AcceptanceTestResults", "StoryProgress"],
    "qa": ["TestReport", "PerfReport", "A11yAudit", "CompatibilityMatrix"],
    "aesthetic": ["DesignSystem", "StyleGuide", "VisualAssets"],
    "release": ["ReleaseNotes", "DeploymentPlan", "RollbackPlan", "Documentation"],
    "beta": ["DeploymentReport", "MonitoringDashboard", "CanaryResults", "BetaMetrics"],
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("offline")
    result = ideamine("run", IDEA, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "completed" in result.stdout
    return folder, only_run_id(folder)


def _show(folder: Path, run_id: str, artifact_type: str) -> object:
    """The latest content of ``artifact_type``, via `ideamine artifacts --export` (once)."""
    exported = folder / "exported"
    if not exported.exists():
        done = ideamine("artifacts", run_id, "--export", str(exported), cwd=folder)
        assert done.returncode == 0, done.stderr
    return json.loads((exported / f"{artifact_type}.json").read_text())


def test_show_prints_the_same_content_as_export(finished: tuple[Path, str]) -> None:
    folder, run_id = finished
    shown = ideamine("artifacts", run_id, "--show", "PRD", cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == _show(folder, run_id, "PRD")


def test_every_required_artifact_exists_and_validates(finished: tuple[Path, str]) -> None:
    folder, run_id = finished
    pipeline = load_pipeline(None)
    listed = json.loads(ideamine("artifacts", run_id, "--json", cwd=folder).stdout)
    produced = {(row["phase"], row["type"]) for row in listed}
    for phase, types in REQUIRED.items():
        schemas = {a.type: a.schema for a in pipeline.phase(phase).artifacts}
        for artifact_type in types:
            assert (phase, artifact_type) in produced, f"{phase} did not produce {artifact_type}"
            content = _show(folder, run_id, artifact_type)
            errors = list(Draft202012Validator(schemas[artifact_type]).iter_errors(content))
            assert errors == [], f"{artifact_type}: {errors[0].message}"


def test_artifacts_are_about_the_idea(finished: tuple[Path, str]) -> None:
    folder, run_id = finished
    spec = _show(folder, run_id, "IdeaSpec")
    assert isinstance(spec, dict)
    assert "Farm" in spec["title"] and 5 <= len(spec["title"]) <= 200
    assert {"farmer", "restaurant"} <= {u.lower().rstrip("s") for u in _names(spec)}
    stories = json.dumps(_show(folder, run_id, "UserStories")).lower()
    assert "farmer" in stories and "restaurant" in stories
    paths = _show(folder, run_id, "OpenAPI")["paths"]  # type: ignore[index]
    assert {"/farmers", "/restaurants"} <= set(paths)
    coverage = _show(folder, run_id, "CoverageReport")
    assert coverage["measured"] is False  # type: ignore[index]  # evidence is never invented


def _names(spec: dict[str, object]) -> list[str]:
    users = spec["target_users"]
    assert isinstance(users, list)
    return [u if isinstance(u, str) else str(u.get("role") or u.get("name")) for u in users]


def test_phase_events_come_in_order(finished: tuple[Path, str]) -> None:
    """SPEC §10 criterion 1 (gates arrive with the quality loop): started, progress, ready,
    completed, in that order, for every phase."""
    folder, run_id = finished
    events = read_events(folder / "ideamine.db", run_id)
    for phase in REQUIRED:
        kinds = [e.type for e in events if e.phase == phase and e.type.startswith("phase.")]
        assert kinds[0] == "phase.started" and kinds[-2:] == ["phase.ready", "phase.completed"]
        assert "phase.progress" in kinds[1:-2]


def test_security_and_story_loop_start_together_after_build(
    finished: tuple[Path, str],
) -> None:
    """SPEC §10 criterion 10."""
    folder, run_id = finished
    events = read_events(folder / "ideamine.db", run_id)
    index = {(e.type, e.phase): i for i, e in enumerate(events)}
    build_done = index[("phase.completed", "build")]
    security, story = index[("phase.started", "security")], index[("phase.started", "story-loop")]
    assert build_done < min(security, story)
    between = events[min(security, story) + 1 : max(security, story)]
    assert not [e for e in between if e.type.startswith("task.")]


def test_a_second_run_gives_byte_identical_artifacts(
    finished: tuple[Path, str], tmp_path: Path
) -> None:
    folder, run_id = finished
    again = ideamine("run", IDEA, "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert artifact_hashes(tmp_path, only_run_id(tmp_path)) == artifact_hashes(folder, run_id)
