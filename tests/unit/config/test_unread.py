"""The YAML files of a --config folder that the loader did not read, each with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.configs import write_callable_pipeline

from ideamine.config.loader import load_pipeline
from ideamine.config.unread import unread_files
from ideamine.errors import ConfigProblem


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Phases ``intake`` and ``build`` (after it), agents ``IntakeAgent0`` and ``BuildAgent0``."""
    dag: dict[str, list[str]] = {"intake": [], "build": ["intake"]}
    return write_callable_pipeline(tmp_path / "cfg", dag, agents_per_phase=1)


def _unread(folder: Path) -> dict[str, ConfigProblem]:
    """The problems by the file's path relative to ``folder`` (``.`` for the folder)."""
    found = unread_files(folder, load_pipeline(folder))
    return {Path(p.file).relative_to(folder).as_posix(): p for p in found}


def _add(folder: Path, relative: str, text: str = "x: 1\n") -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_folder_whose_files_are_all_read_has_nothing_to_say(folder: Path) -> None:
    _add(folder, "README.md", "notes beside the configuration\n")
    _add(folder, ".git/config.yaml")

    assert _unread(folder) == {}


def test_a_yml_file_is_named_with_its_yaml_name(folder: Path) -> None:
    (folder / "schemas" / "BuildResult.yaml").rename(folder / "schemas" / "BuildResult.yml")

    problem = _unread(folder)["schemas/BuildResult.yml"]

    assert problem.problem == "not read: IdeaMine reads only .yaml files"
    assert problem.hint == "rename it to BuildResult.yaml"
    assert problem.field == "(file)"


@pytest.mark.parametrize(
    ("relative", "problem", "hint"),
    [
        (
            "pipelines.yaml",
            "not read: the folder's top level holds only pipeline.yaml",
            "did you mean pipeline.yaml?",
        ),
        (
            "agent/BuildAgent1.yaml",
            "not read: configuration files go in phases/, agents/ or schemas/, one level deep",
            "move it to agents/BuildAgent1.yaml",
        ),
        (
            "agents/extra/BuildAgent1.yaml",
            "not read: configuration files go in phases/, agents/ or schemas/, one level deep",
            "move it to agents/BuildAgent1.yaml",
        ),
        (
            "agents/buildagent0x.yaml",
            "not read: no phase lists agent 'buildagent0x'",
            "did you mean agents/BuildAgent0.yaml?",
        ),
        (
            "agents/Reviewer.yaml",
            "not read: no phase lists agent 'Reviewer'",
            "list it under a phase's `agents`, or delete the file",
        ),
        (
            "phases/buld.yaml",
            "not read: pipeline.yaml's `phases` does not name 'buld'",
            "did you mean phases/build.yaml?",
        ),
        (
            "schemas/BuildResults.yaml",
            "not read: no agent produces artifact type 'BuildResults'",
            "did you mean schemas/BuildResult.yaml?",
        ),
        (
            "schemas/Invoice.yaml",
            "not read: no agent produces artifact type 'Invoice'",
            "name the file after an agent's `artifact_type`, or delete it",
        ),
    ],
)
def test_each_unread_file_says_why_and_what_to_do(
    folder: Path, relative: str, problem: str, hint: str
) -> None:
    _add(folder, relative)

    found = _unread(folder)

    assert list(found) == [relative]
    assert (found[relative].problem, found[relative].hint) == (problem, hint)


def test_a_folder_none_of_whose_files_is_read_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    _add(folder, "notes.yaml")

    found = _unread(folder)

    assert list(found) == [".", "notes.yaml"]
    assert found["."].field == "(folder)"
    assert found["."].problem.startswith("no file of this folder is read")


def test_a_link_to_a_file_that_is_read_is_read(folder: Path) -> None:
    (folder / "agents" / "BuildAgent0.yaml").rename(folder / "BuildAgent0.yaml")
    (folder / "agents" / "BuildAgent0.yaml").symlink_to(folder / "BuildAgent0.yaml")
    (folder / "agents" / "Gone.yaml").symlink_to(folder / "nowhere.yaml")  # dangling

    found = _unread(folder)

    # the link's target is the file read, wherever it lies; the dangling link is named
    assert sorted(found) == ["agents/Gone.yaml"]


def test_a_yml_file_beside_the_yaml_file_that_is_read_is_not_to_be_renamed(folder: Path) -> None:
    _add(folder, "schemas/BuildResult.yml")
    _add(folder, "schemas/Other.YAML")

    found = _unread(folder)

    assert found["schemas/BuildResult.yml"].problem == "not read: BuildResult.yaml beside it is"
    assert found["schemas/BuildResult.yml"].hint == "merge it into BuildResult.yaml, or delete it"
    assert found["schemas/Other.YAML"].hint == "rename it to Other.yaml"


def test_the_walk_stops_two_folders_down_and_skips_hidden_ones(folder: Path) -> None:
    _add(folder, "node_modules/pkg/deep/config.yaml")
    _add(folder, ".venv/lib/x.yaml")
    _add(folder, "schemas/old/BuildResult.yaml")

    assert sorted(_unread(folder)) == ["schemas/old/BuildResult.yaml"]


def test_a_question_agent_with_no_phase_asking_says_so(folder: Path) -> None:
    pipeline = load_pipeline(folder)
    question = pipeline.qav_agents["question"]
    _add(folder, f"agents/{question}.yaml")

    found = _unread(folder)[f"agents/{question}.yaml"]

    assert found.problem == f"not read: {question!r} is a Q/A/V agent and no phase asks questions"
