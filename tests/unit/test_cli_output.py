"""What the CLI prints when its output is piped or redirected: whole lines (a log keeps a run
id and a command in one line), and ideas clipped with an ellipsis in one-line views."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from tests.acceptance.conftest import cli_env, ideamine
from tests.support.configs import write_callable_pipeline

from ideamine.cli.app import EXIT_PIPE, OutputClosed, clip, runs_async
from ideamine.cli.main import cli

IDEA = (
    "A tool-lending library for the neighbours of one apartment building, with a waiting "
    "list for the popular drills and ladders"
)


def _env() -> dict[str, str]:
    """The acceptance suite's CLI environment, without its ``COLUMNS``: output piped as a
    user's would be, no width set."""
    env = cli_env()
    del env["COLUMNS"]
    return env


def _ideamine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return ideamine(*args, cwd=cwd, env=_env(), timeout=120)


@pytest.mark.parametrize(
    ("text", "most", "expected"),
    [
        ("short idea", 60, "short idea"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three four", 10, "one two t…"),
        ("one two  three", 9, "one two…"),
        ("a\nmulti-line\n\n idea", 80, "a multi-line idea"),
        ("abcdefghij", 5, "abcd…"),
    ],
)
def test_clip_keeps_one_line_of_at_most_the_given_length(
    text: str, most: int, expected: str
) -> None:
    clipped = clip(text, most)
    assert clipped == expected
    assert len(clipped) <= most and "\n" not in clipped


def test_piped_output_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    """A run submitted with ``--detach``, then shown and listed, and the plan: each message
    is one line however long, and the long idea is clipped where a view clips it."""
    store = str(tmp_path / "ideamine.db")
    submitted = _ideamine("run", IDEA, "--detach", "--store", store, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()

    shown = _ideamine("status", run_id, "--store", store, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    headline = shown.stdout.splitlines()[0]
    assert headline.startswith(f"run {run_id} created")
    assert headline.endswith(" · " + clip(IDEA, 80)) and clip(IDEA, 80).endswith("…")

    listed = _ideamine("runs", "--store", store, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "…" in listed.stdout  # the table's idea cell is clipped at 60 characters

    planned = _ideamine("plan", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    path = next(line for line in planned.stdout.splitlines() if line.startswith("critical"))
    assert path.endswith("→ beta") and len(path) > 80


def test_an_error_and_its_hint_stay_on_one_line(tmp_path: Path) -> None:
    shown = _ideamine("status", "f" * 12, "--store", str(tmp_path / "none.db"), cwd=tmp_path)
    assert shown.returncode == 2
    lines = shown.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80, shown.stderr
    assert lines[0].startswith("error: no IdeaMine store at ") and "(hint: " in lines[0]


@pytest.mark.parametrize("as_json", [False, True])
def test_output_cut_by_its_reader_ends_quietly_with_exit_code_141(
    tmp_path: Path, as_json: bool
) -> None:
    """``ideamine events RUN | head -1``: no traceback, no "Exception ignored", and not exit
    code 1 (which says the run failed)."""
    config = write_callable_pipeline(
        tmp_path / "config", {"a": [], "b": ["a"], "c": ["b"]}, agents_per_phase=20
    )
    store = str(tmp_path / "ideamine.db")
    ran = _ideamine("run", IDEA, "-q", "--store", store, "--config", str(config), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split()[1]
    command = [sys.executable, "-m", "ideamine", "events", run_id, "--store", store]
    with subprocess.Popen(
        command + (["--json"] if as_json else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=_env(),
    ) as reader:
        assert reader.stdout is not None and reader.stderr is not None
        assert reader.stdout.readline()  # the first event, then the reader goes away
        reader.stdout.close()
        assert reader.wait(timeout=60) == EXIT_PIPE
        assert reader.stderr.read() == b""


def test_an_error_whose_reader_went_away_keeps_its_exit_code(tmp_path: Path) -> None:
    """stderr's reader gone: the message is lost, the documented code (2 here) is kept."""
    with subprocess.Popen(
        [sys.executable, "-m", "ideamine", "status", "f" * 12, "--store", str(tmp_path / "n.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=_env(),
    ) as shown:
        assert shown.stderr is not None
        shown.stderr.close()  # before the command gets to print its error
        assert shown.wait(timeout=60) == 2


def test_output_closed_under_a_test_runner_exits_141_too() -> None:
    """``runs_async`` handles ``OutputClosed`` where stdout is not a file (click's runner)."""

    @click.command()
    @runs_async
    async def cut() -> None:
        raise OutputClosed

    done = CliRunner().invoke(cut, [])
    assert done.exit_code == EXIT_PIPE, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_help_ends_with_where_to_start_naming_real_commands() -> None:
    shown = CliRunner().invoke(cli, ["--help"])
    assert shown.exit_code == 0
    start = shown.output[shown.output.index("Start with:") :]
    named = re.findall(r"^\s+ideamine (\S+)", start, flags=re.MULTILINE)
    assert named == ["run", "status", "dossier"]
    for name in named:
        assert cli.get_command(click.Context(cli), name) is not None, name


def test_an_unknown_sqlite_sync_level_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = {**_env(), "IDEAMINE_SQLITE_SYNC": "fast"}
    store = tmp_path / "ideamine.db"
    shown = ideamine("run", IDEA, "--detach", "--store", str(store), cwd=tmp_path, env=env)
    assert shown.returncode == 2, shown.stderr
    assert shown.stderr.startswith("error: $IDEAMINE_SQLITE_SYNC is 'fast', not one of full")
    assert "Traceback" not in shown.stderr and not store.exists()


@pytest.mark.parametrize(
    ("store", "extra", "message"),
    [
        ("ideamine.db", {"IDEAMINE_SQLITE_SYNC": "fast"}, "error: $IDEAMINE_SQLITE_SYNC is 'fast'"),
        (".", {}, "error: --store . is a folder"),
    ],
)
def test_serve_refuses_an_unusable_store_before_it_starts(
    tmp_path: Path, store: str, extra: dict[str, str], message: str
) -> None:
    """What no retry can fix is exit 2 with one line, not a server that fails to start."""
    shown = ideamine(
        "serve", "--store", store, "--port", "0", cwd=tmp_path, env={**_env(), **extra}
    )
    assert shown.returncode == 2, shown.stderr
    assert shown.stderr.startswith(message) and len(shown.stderr.splitlines()) == 1
    assert "Traceback" not in shown.stderr
