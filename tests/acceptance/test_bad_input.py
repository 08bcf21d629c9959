"""Bad input gets one line naming the problem plus a hint, a documented exit code, no
traceback, and never damages stored data."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.acceptance.conftest import ROOT, cli_env, ideamine, only_run_id

USAGE, STORE = 2, 3


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "(hint: " in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("idea", "needle"), [("", "empty"), ("   \n\t ", "empty"), ("x" * 100_000, "limit is 20,000")]
)
def test_unusable_idea_argument(tmp_path: Path, idea: str, needle: str) -> None:
    assert_one_line_error(ideamine("run", idea, cwd=tmp_path), USAGE, needle)
    assert not (tmp_path / "ideamine.db").exists()


def test_one_megabyte_idea_file(tmp_path: Path) -> None:
    big = tmp_path / "idea.txt"
    big.write_text("farm " * 210_000)
    assert_one_line_error(ideamine("run", "--file", str(big), cwd=tmp_path), USAGE, "idea.txt")


def test_non_utf8_idea_file(tmp_path: Path) -> None:
    bad = tmp_path / "idea.txt"
    bad.write_bytes(b"a marketplace \xff\xfe for farmers")
    assert_one_line_error(ideamine("run", "--file", str(bad), cwd=tmp_path), USAGE, "not UTF-8")


def test_non_utf8_idea_argument(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ideamine", "run", b"a marketplace \xff for farmers"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert_one_line_error(result, USAGE, "not UTF-8")


def test_idea_given_twice(tmp_path: Path) -> None:
    (tmp_path / "idea.txt").write_text("an idea")
    assert_one_line_error(ideamine("run", "an idea", "--file", "idea.txt", cwd=tmp_path), USAGE)


def test_config_with_a_cycle(tmp_path: Path, callable_config: Path) -> None:
    intake = callable_config / "phases" / "intake.yaml"
    document = yaml.safe_load(intake.read_text())
    document["depends_on"] = ["beta"]
    intake.write_text(yaml.safe_dump(document))
    result = ideamine("run", "an idea for farmers", "--config", str(callable_config), cwd=tmp_path)
    assert_one_line_error(result, USAGE, "dependency cycle", "intake →", "→ intake")
    assert not (tmp_path / "ideamine.db").exists()


def test_missing_agent_file(tmp_path: Path, callable_config: Path) -> None:
    (callable_config / "agents" / "QaAgent1.yaml").unlink()
    result = ideamine("config", "check", str(callable_config), cwd=tmp_path)
    assert_one_line_error(result, USAGE, "qa.yaml", "QaAgent1", "agents/QaAgent1.yaml")


@pytest.mark.parametrize("command", [["status"], ["resume"], ["events"], ["artifacts"], ["verify"]])
def test_unknown_run_id(finished_store: Path, command: list[str]) -> None:
    result = ideamine(*command, "nosuchrun", cwd=finished_store)
    assert_one_line_error(result, USAGE, "nosuchrun", "ideamine runs")


@pytest.mark.parametrize("command", [["status"], ["runs"], ["events", "x"], ["verify", "x"]])
def test_reading_commands_do_not_create_a_missing_store(tmp_path: Path, command: list[str]) -> None:
    result = ideamine(*command, "--store", "typo.db", cwd=tmp_path)
    assert_one_line_error(result, USAGE, "no IdeaMine store at typo.db")
    assert not (tmp_path / "typo.db").exists()


def test_an_unimportable_callable_is_refused_before_a_run_is_stored(
    tmp_path: Path, callable_config: Path
) -> None:
    agent = callable_config / "agents" / "QaAgent0.yaml"
    agent.write_text(agent.read_text().replace("tests.support.agents:echo", "no.such:thing"))
    result = ideamine("run", "an idea for farmers", "--config", str(callable_config), cwd=tmp_path)
    assert_one_line_error(result, USAGE, "QaAgent0", "no.such:thing")
    assert not (tmp_path / "ideamine.db").exists()


@pytest.fixture
def finished_store(tmp_path: Path, callable_config: Path) -> Path:
    """A folder whose ideamine.db holds one completed run."""
    folder = tmp_path / "store"
    folder.mkdir()
    done = ideamine(
        "run", "a marketplace for farmers", "--config", str(callable_config), "-q", cwd=folder
    )
    assert done.returncode == 0, done.stderr
    return folder


def test_file_that_is_not_a_database(tmp_path: Path, callable_config: Path) -> None:
    fake = tmp_path / "notes.db"
    fake.write_bytes(b"these are my notes, not a database\n" * 200)
    before = digest(fake)
    for args in (
        ["run", "an idea for farmers", "--config", str(callable_config)],
        ["runs"],
        ["status"],
    ):
        assert_one_line_error(
            ideamine(*args, "--store", str(fake), cwd=tmp_path), STORE, "not an IdeaMine database"
        )
    assert digest(fake) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("notes")) == ["notes.db"]


def test_store_in_a_missing_folder(tmp_path: Path, callable_config: Path) -> None:
    result = ideamine(
        "run",
        "an idea for farmers",
        "--config",
        str(callable_config),
        "--store",
        str(tmp_path / "nope" / "x.db"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, STORE, "does not exist")


def test_unsupported_store_scheme(tmp_path: Path) -> None:
    assert_one_line_error(
        ideamine("runs", "--store", "mysql://x/y", cwd=tmp_path), USAGE, "mysql://"
    )


@pytest.fixture
def read_only_store(finished_store: Path) -> Iterator[Path]:
    """``finished_store`` made read-only: a read-only mount when root, else chmod."""
    if os.geteuid() == 0:
        mount = finished_store.parent / "ro"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
        try:
            for item in finished_store.iterdir():
                (mount / item.name).write_bytes(item.read_bytes())
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            yield mount
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    else:
        for item in finished_store.iterdir():
            item.chmod(0o444)
        finished_store.chmod(0o555)
        yield finished_store
        finished_store.chmod(0o755)


def test_read_only_database(read_only_store: Path, callable_config: Path) -> None:
    db = read_only_store / "ideamine.db"
    before = digest(db)
    result = ideamine(
        "run", "another idea for farmers", "--config", str(callable_config), cwd=read_only_store
    )
    assert_one_line_error(result, STORE, "read-only")
    assert digest(db) == before
    run_id = only_run_id(read_only_store)  # reads still work on a read-only store
    assert ideamine("verify", run_id, cwd=read_only_store).returncode == 0


def test_bad_flag_value(tmp_path: Path) -> None:
    result = ideamine("run", "an idea", "--concurrency", "0", cwd=tmp_path)
    assert result.returncode == USAGE
    assert "Traceback" not in result.stderr


def test_a_malformed_advisory_is_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    advisories = tmp_path / "advisories"
    advisories.mkdir()
    (advisories / "GHSA-bad.json").write_text('{"id": "GHSA-1", "affected": "starlette"}')
    done = ideamine(
        "run", "a marketplace for farmers", "--advisories", str(advisories), cwd=tmp_path
    )
    assert_one_line_error(done, 2, "GHSA-bad.json")
    assert "affected" in done.stderr and "osv-schema" in done.stderr
    assert not (tmp_path / "ideamine.db").exists()


def test_waiving_a_gate_needs_a_justification_and_a_future_expiry(tmp_path: Path) -> None:
    short = ideamine("waive", "nope", "prd", "--reason", "ok", "--expires", "30d", cwd=tmp_path)
    assert_one_line_error(short, 2, "justification")
    past = ideamine(
        "waive",
        "nope",
        "prd",
        "--reason",
        "accepted for the beta",
        "--expires",
        "2001-01-01",
        cwd=tmp_path,
    )
    assert_one_line_error(past, 2, "not in the future")


def test_advisories_named_in_pipeline_yaml_are_checked_like_the_flag(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    pipeline = yaml.safe_load((ROOT / "src/ideamine/config/defaults/pipeline.yaml").read_text())
    pipeline["advisories"] = "osv"
    (config / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    missing = ideamine("run", "--config", str(config), "a marketplace for farmers", cwd=tmp_path)
    assert_one_line_error(missing, 2, "pipeline.yaml: advisories: no folder")
    (config / "osv").mkdir()
    (config / "osv" / "broken.json").write_text("{")
    broken = ideamine("run", "--config", str(config), "a marketplace for farmers", cwd=tmp_path)
    assert_one_line_error(broken, 2, "broken.json")
    assert not (tmp_path / "ideamine.db").exists()


def test_a_config_file_that_is_not_read_is_named_with_what_to_do(
    tmp_path: Path, callable_config: Path
) -> None:
    """A file someone wrote for IdeaMine that it ignores (here an agent no phase lists) is a
    warning, not an error: `config check`, `plan` and `run` name it and go on."""
    stray = callable_config / "agents" / "QaAgent9.yaml"
    stray.write_text((callable_config / "agents" / "QaAgent0.yaml").read_text())

    for command in (
        ["config", "check", str(callable_config)],
        ["plan", "--config", str(callable_config)],
    ):
        result = ideamine(*command, cwd=tmp_path)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"warning: {stray}: (file): not read: ")
        assert "no phase lists agent 'QaAgent9'" in lines[0] and "(hint: " in lines[0]
    assert (
        "1 file(s) of the folder not read"
        in ideamine("config", "check", str(callable_config), cwd=tmp_path).stdout
    )


def test_a_misspelt_environment_variable_is_named_before_it_misleads(tmp_path: Path) -> None:
    """`IDEAMINE_STOR=typo.db ideamine runs` would read ./ideamine.db: the warning says so."""
    result = ideamine("runs", cwd=tmp_path, env={**cli_env(), "IDEAMINE_STOR": "typo.db"})

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0] == (
        "warning: $IDEAMINE_STOR is not read by IdeaMine (hint: did you mean $IDEAMINE_STORE?)"
    )
    assert result.returncode == USAGE and lines[1].startswith("error: no IdeaMine store at")


def test_a_variable_name_with_markup_in_it_is_shown_as_written(tmp_path: Path) -> None:
    result = ideamine("--version", cwd=tmp_path, env={**cli_env(), "IDEAMINE_DATA_DIR[b]": "x"})

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        "warning: $IDEAMINE_DATA_DIR[b] is not read by IdeaMine "
        "(hint: did you mean $IDEAMINE_DATA_DIR?)"
    )


@pytest.mark.parametrize("command", [["status"], ["gates"], ["events"], ["dossier"], ["verify"]])
def test_a_reading_command_without_run_id_on_a_store_with_no_runs(
    tmp_path: Path, command: list[str]
) -> None:
    made = ideamine("db", "migrate", "--store", "empty.db", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    result = ideamine(*command, "--store", "empty.db", cwd=tmp_path)
    assert_one_line_error(result, USAGE, "holds no runs yet", "ideamine run")
