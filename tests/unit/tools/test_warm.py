"""ideamine.tools.warm: pytest forked from a warm interpreter reports what a fresh run would,
sees the project as it is now, gets only the tool environment, is killed with what it started
at its time limit, and goes back to a fresh interpreter when it cannot be warm."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.tools.test_process import alive, wait_gone

from ideamine.tools.process import ToolRun, python_command, run_module, run_tool
from ideamine.tools.warm import WarmPython

TIME = re.compile(r" in \d+\.\d+s")


@pytest.fixture
def warm() -> Iterator[WarmPython]:
    client = WarmPython()
    yield client
    client.close()


def project(root: Path, tests: str, module: str = "def add(a, b):\n    return a + b\n") -> Path:
    """A project folder: ``calc.py`` and ``tests/test_calc.py``."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(module)
    (root / "tests" / "test_calc.py").write_text(textwrap.dedent(tests))
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


PASS_AND_FAIL = """
    from calc import add

    def test_adds():
        assert add(2, 2) == 4

    def test_fails():
        assert add(2, 2) == 5
"""
ARGS = ["-q", "-p", "no:cacheprovider", "tests"]
ENV = {"PYTHONPATH": "", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def warm_run(warm: WarmPython, root: Path, *, timeout: float = 60, **env: str) -> ToolRun | None:
    return warm.run(
        "pytest", "pytest", ARGS, cwd=root, timeout=timeout, version="v", env={**ENV, **env}
    )


def test_a_warm_run_reports_what_a_fresh_run_does(tmp_path: Path, warm: WarmPython) -> None:
    root = project(tmp_path / "p", PASS_AND_FAIL)
    fresh = run_tool("pytest", python_command("pytest", *ARGS), cwd=root, timeout=60, env=ENV)

    ran = warm_run(warm, root)

    assert ran is not None and warm.runs == 1
    assert (
        (ran.exit_code, ran.timed_out, ran.executed)
        == (fresh.exit_code, False, True)
        == (
            1,
            False,
            True,
        )
    )
    assert TIME.sub("", ran.stdout) == TIME.sub("", fresh.stdout)
    assert "1 failed, 1 passed" in ran.stdout and "assert 4 == 5" in ran.stdout
    assert ran.command == python_command("pytest", *ARGS)


def test_each_run_sees_the_project_as_it_is_then(tmp_path: Path, warm: WarmPython) -> None:
    root = project(
        tmp_path / "p", "from calc import add\n\ndef test_adds():\n    assert add(2, 2) == 4\n"
    )
    first = warm_run(warm, root)
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")

    second = warm_run(warm, root)

    assert first is not None and first.exit_code == 0
    assert second is not None and second.exit_code == 1
    assert warm.runs == 2


RECORD = """
import json, os, sys

def test_records():
    with open(os.environ["RECORD_TO"], "w") as out:
        json.dump({"environ": sorted(os.environ), "cwd": os.getcwd(), "path": sys.path}, out)
"""


def test_a_run_has_the_environment_folder_and_import_path_of_a_fresh_run(
    tmp_path: Path, warm: WarmPython, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    root = project(tmp_path / "p", RECORD)
    extra = tmp_path / "extra"
    env = {**ENV, "PYTHONPATH": str(extra), "EXTRA_SETTING": "on"}
    fresh_to, warm_to = tmp_path / "fresh.json", tmp_path / "warm.json"
    command = python_command("pytest", *ARGS)
    fresh = run_tool(
        "pytest", command, cwd=root, timeout=60, env={**env, "RECORD_TO": str(fresh_to)}
    )

    ran = warm.run(
        "pytest",
        "pytest",
        ARGS,
        cwd=root,
        timeout=60,
        version="v",
        env={**env, "RECORD_TO": str(warm_to)},
    )

    assert fresh.exit_code == 0 and ran is not None and ran.exit_code == 0, ran
    seen, expected = json.loads(warm_to.read_text()), json.loads(fresh_to.read_text())
    assert seen == expected
    assert "EXTRA_SETTING" in seen["environ"] and "OPENAI_API_KEY" not in seen["environ"]
    assert "UNRELATED_SETTING" not in seen["environ"] and seen["cwd"] == str(root)
    assert str(extra) in seen["path"]


def test_a_run_past_its_time_limit_is_killed_with_what_it_started(
    tmp_path: Path, warm: WarmPython
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    root = project(
        tmp_path / "p",
        f"""
        import subprocess, time

        def test_hangs():
            child = subprocess.Popen(["sleep", "60"])
            open({str(pid_file)!r}, "w").write(str(child.pid))
            time.sleep(60)
        """,
    )

    ran = warm_run(warm, root, timeout=3)

    assert ran is not None
    assert (ran.timed_out, ran.exit_code) == (True, None)
    assert wait_gone(int(pid_file.read_text()))


def test_a_project_module_named_like_a_warm_one_runs_fresh(
    tmp_path: Path, warm: WarmPython
) -> None:
    root = project(tmp_path / "p", "import httpx\n\ndef test_own():\n    assert httpx.OWN\n")
    (root / "httpx.py").write_text("OWN = True\n")

    assert warm_run(warm, root) is None  # the warm process has its own httpx imported
    ran = run_module("pytest", "pytest", ARGS, cwd=root, timeout=60, env=ENV)
    assert ran.exit_code == 0, ran.stdout  # the fresh interpreter imports the project's


def test_runs_from_several_threads_each_get_their_own_outcome(
    tmp_path: Path, warm: WarmPython
) -> None:
    roots = [
        project(tmp_path / f"p{i}", f"def test_it():\n    assert {i} % 2 == 0\n") for i in range(4)
    ]
    codes: dict[int, int | None] = {}

    def one(index: int) -> None:
        ran = warm_run(warm, roots[index])
        codes[index] = None if ran is None else ran.exit_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert codes == {0: 0, 1: 1, 2: 0, 3: 1}
    assert warm.runs == 4


def test_when_the_warm_process_dies_runs_go_to_a_fresh_interpreter(
    tmp_path: Path, warm: WarmPython
) -> None:
    root = project(tmp_path / "p", PASS_AND_FAIL)
    assert warm_run(warm, root) is not None
    pid = warm.pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)

    assert warm_run(warm, root) is None
    assert warm.broken == "the warm process ended"


CLIENT = """
import sys
from pathlib import Path
from ideamine.tools.warm import warm_python
warm = warm_python()
ran = warm.run("pytest", "pytest", ["-q", "tests"], cwd=Path(sys.argv[1]), timeout=60, version="v")
print(warm.pid, ran.exit_code, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_warm_process_ends_when_its_client_is_killed(tmp_path: Path) -> None:
    root = project(tmp_path / "p", PASS_AND_FAIL)
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None
    pid, code = (int(word) for word in client.stdout.readline().split())
    assert code == 1 and alive(pid)

    client.kill()
    client.communicate()  # reaps it and closes its pipes

    assert wait_gone(pid, seconds=10), "the warm process outlived its client"
