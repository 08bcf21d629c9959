"""ideamine.tools.process: real subprocesses, their envelope, time limits, clean environments."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path

import pytest

from ideamine.tools.process import (
    OUTPUT_LIMIT,
    ToolRun,
    python_command,
    run_module,
    run_tool,
    tool_env,
    tool_version,
)

ENVELOPE_KEYS = {"tool", "version", "command", "exit_code", "timed_out", "duration_ms", "executed"}


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie waiting to be reaped is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_gone(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_finished_run_reports_exit_code_output_and_envelope(tmp_path: Path) -> None:
    run = run_tool(
        "python",
        python("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"),
        cwd=tmp_path,
        timeout=30,
    )
    assert (run.exit_code, run.timed_out, run.executed, run.ok) == (3, False, True, False)
    assert run.stdout.strip() == "out" and run.stderr.strip() == "err"
    envelope = run.envelope()
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["command"][0] == "python"  # not the venv's absolute path
    assert envelope["version"] == platform.python_version()
    assert isinstance(envelope["duration_ms"], float) and envelope["duration_ms"] > 0
    json.dumps(envelope)  # plain JSON, ready for an artifact


def test_the_tool_runs_in_cwd(tmp_path: Path) -> None:
    run = run_tool("python", python("import os; print(os.getcwd())"), cwd=tmp_path, timeout=30)
    assert Path(run.stdout.strip()) == tmp_path.resolve()


def test_a_missing_executable_is_not_executed_and_never_raises(tmp_path: Path) -> None:
    run = run_tool("nosuchtool", ["/nonexistent/nosuchtool", "--go"], cwd=tmp_path, timeout=5)
    assert not run.executed and run.exit_code is None
    assert "could not start" in run.reason
    envelope = run.envelope()
    assert envelope["executed"] is False and envelope["reason"] == run.reason


def test_a_missing_folder_is_not_executed(tmp_path: Path) -> None:
    run = run_tool("python", python("pass"), cwd=tmp_path / "absent", timeout=5)
    assert not run.executed and "no such folder" in run.reason


def test_a_module_that_is_not_installed_is_not_executed(tmp_path: Path) -> None:
    run = run_module("ghost", "no_such_module_xyz", ["--help"], cwd=tmp_path, timeout=5)
    assert not run.executed and "no_such_module_xyz is not installed" in run.reason
    assert run.command == python_command("no_such_module_xyz", "--help")


def test_a_hanging_tool_is_cut_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    run = run_tool("python", python(code), cwd=tmp_path, timeout=6)  # room for a slow start
    assert time.monotonic() - started < 20
    assert run.timed_out and run.exit_code is None and run.executed
    assert run.envelope()["timed_out"] is True
    for pid in map(int, pids.read_text().split()):
        assert wait_gone(pid), f"process {pid} outlived the time limit"


def test_children_left_behind_by_a_finished_tool_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'],\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
    )
    run = run_tool("python", python(code), cwd=tmp_path, timeout=20)
    assert run.exit_code == 0
    assert wait_gone(int(pid_file.read_text()))


def test_output_is_capped_and_says_so(tmp_path: Path) -> None:
    code = f"import sys; sys.stdout.write('x' * {OUTPUT_LIMIT + 5000})"
    capped = run_tool("python", python(code), cwd=tmp_path, timeout=30)
    assert capped.stdout.startswith("x" * 1000)
    assert capped.stdout.count("x") == OUTPUT_LIMIT
    assert f"output truncated: {OUTPUT_LIMIT + 5000} bytes" in capped.stdout
    whole = run_tool("python", python(code), cwd=tmp_path, timeout=30, stdout_limit=None)
    assert whole.stdout == "x" * (OUTPUT_LIMIT + 5000)


def test_tools_get_a_clean_environment_without_keys_or_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-should-not-leak")
    monkeypatch.setenv("SOME_UNRELATED_SETTING", "x")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    extra = {"APP_MODE": "test", "ANTHROPIC_API_KEY": "explicit-but-dropped"}
    run = run_tool("python", python(code), cwd=tmp_path, timeout=30, env=extra)
    env = json.loads(run.stdout)
    assert env["APP_MODE"] == "test"
    assert not {"OPENAI_API_KEY", "GITHUB_TOKEN", "ANTHROPIC_API_KEY"} & set(env)
    assert "SOME_UNRELATED_SETTING" not in env
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert tool_env({"X_TOKEN_Y": "1"}).get("X_TOKEN_Y") is None


def test_tool_versions_come_from_the_installed_packages() -> None:
    assert tool_version("pytest") == importlib.metadata.version("pytest")
    assert tool_version("detect_secrets") == importlib.metadata.version("detect-secrets")
    assert tool_version("cyclonedx_py") == importlib.metadata.version("cyclonedx-bom")
    assert tool_version("compileall") == platform.python_version()
    assert tool_version("no-such-tool-anywhere-xyz") == "unknown"


def test_not_run_has_no_numbers() -> None:
    run = ToolRun.not_run("bandit", "no workspace")
    assert run.envelope() == {
        "tool": "bandit",
        "version": "",
        "command": [],
        "exit_code": None,
        "timed_out": False,
        "duration_ms": 0.0,
        "executed": False,
        "reason": "no workspace",
    }
