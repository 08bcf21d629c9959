"""The commands that read one run take the newest run when RUN_ID is left out, say on stderr
which run that is, and print what they print with that run's id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.acceptance.conftest import ideamine
from tests.support.configs import SPEC_DAG, write_callable_pipeline

READERS = (
    ["status"],
    ["gates"],
    ["gates", "--json"],
    ["verify"],
    ["events", "--json"],
    ["artifacts", "--json"],
    ["questions"],
    ["dossier", "compile", "--summary"],
    ["dossier", "--summary"],
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ideamine.db holds two completed runs of a small Python pipeline."""
    folder = tmp_path_factory.mktemp("newest")
    config = write_callable_pipeline(folder / "config", SPEC_DAG, agents_per_phase=2)
    for idea in ("a marketplace for farmers", "a library of garden tools for neighbours"):
        done = ideamine("run", idea, "--config", str(config), "-q", cwd=folder)
        assert done.returncode == 0, done.stderr
    return folder


def test_a_reading_command_without_run_id_reads_the_newest_run(two_runs: Path) -> None:
    listed = ideamine("runs", "--json", cwd=two_runs)
    newest, older = (run["id"] for run in json.loads(listed.stdout))
    for command in READERS:
        flags = [word for word in command if word.startswith("-")]
        named = [*[word for word in command if not word.startswith("-")], newest, *flags]
        chosen = ideamine(*command, cwd=two_runs)
        given = ideamine(*named, cwd=two_runs)
        assert chosen.returncode == given.returncode == 0, (command, chosen.stderr)
        assert chosen.stdout == given.stdout, command
        assert older not in chosen.stdout, command
        if command != ["status"]:  # its first line names the run
            assert f"(run {newest}, the newest in the store)" in chosen.stderr, command
