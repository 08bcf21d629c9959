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
import time
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
    assert warm.broken == "" and warm.pid is not None  # it works; this run is not for it
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
    # whichever notices first: its reader thread (end of output) or this run (its request
    # cannot be written); seen once under load in a full unit run
    assert warm.broken in ("the warm process ended", "the warm process stopped reading")


CLIENT = """
import sys
from pathlib import Path
from ideamine.tools.warm import warm_python
warm = warm_python()
env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
ran = warm.run(
    "pytest", "pytest", ["-q", "tests"], cwd=Path(sys.argv[1]), timeout=60, version="v", env=env
)
print(warm.pid, ran.exit_code, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_warm_process_ends_when_its_client_is_killed(tmp_path: Path) -> None:
    root = project(tmp_path / "p", PASS_AND_FAIL)
    with subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as client:
        assert client.stdout is not None
        pid, code = (int(word) for word in client.stdout.readline().split())
        assert code == 1 and alive(pid)

        client.kill()

    assert wait_gone(pid, seconds=10), "the warm process outlived its client"


def test_a_run_ends_as_a_fresh_interpreter_would(tmp_path: Path, warm: WarmPython) -> None:
    """Non-daemon threads are joined and atexit functions run before the run exits."""
    marks = tmp_path / "marks"
    root = project(
        tmp_path / "p",
        f"""
        import atexit, threading, time

        def mark(name):
            with open({str(marks)!r}, "a") as out:
                out.write(name + "\\n")

        def test_leaves_work_behind():
            atexit.register(mark, "atexit")
            threading.Thread(target=lambda: (time.sleep(0.3), mark("thread"))).start()
        """,
    )

    ran = warm_run(warm, root)

    assert ran is not None and ran.exit_code == 0, ran
    assert sorted(marks.read_text().split()) == ["atexit", "thread"]


def test_an_interrupted_run_reports_what_pytest_reports(tmp_path: Path, warm: WarmPython) -> None:
    root = project(
        tmp_path / "p",
        """
        import os, signal

        def test_interrupts_itself():
            os.kill(os.getpid(), signal.SIGINT)
        """,
    )
    fresh = run_tool("pytest", python_command("pytest", *ARGS), cwd=root, timeout=60, env=ENV)

    ran = warm_run(warm, root)

    assert ran is not None
    assert ran.exit_code == fresh.exit_code == 2  # pytest's "interrupted"
    assert "KeyboardInterrupt" in ran.stdout and "KeyboardInterrupt" in fresh.stdout


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONHASHSEED": "0"},  # read when an interpreter starts: a fork cannot apply it
        {"PYTHONWARNINGS": "error"},
        {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": ""},  # autoloaded plugins would not be rewritten
    ],
)
def test_a_run_a_fork_cannot_give_what_it_asks_runs_fresh(
    tmp_path: Path, warm: WarmPython, env: dict[str, str]
) -> None:
    root = project(tmp_path / "p", PASS_AND_FAIL)

    assert warm_run(warm, root, **env) is None
    assert warm.runs == 0


def test_a_relative_folder_is_the_callers(
    tmp_path: Path, warm: WarmPython, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path / "p", PASS_AND_FAIL)
    monkeypatch.chdir(tmp_path)

    ran = warm_run(warm, Path("p"))

    assert ran is not None and ran.exit_code == 1 and "1 failed, 1 passed" in ran.stdout


def test_the_client_goes_on_after_a_run_past_its_time_limit(
    tmp_path: Path, warm: WarmPython
) -> None:
    slow = project(tmp_path / "slow", "import time\n\ndef test_slow():\n    time.sleep(30)\n")
    quick = project(tmp_path / "quick", PASS_AND_FAIL)

    late = warm_run(warm, slow, timeout=1.5)
    after = warm_run(warm, quick)

    assert late is not None and late.timed_out
    assert after is not None and after.exit_code == 1 and warm.broken == ""


def test_a_run_whose_warm_process_dies_under_it_is_left_to_a_fresh_run(
    tmp_path: Path, warm: WarmPython
) -> None:
    pid_file = tmp_path / "run.pid"
    root = project(
        tmp_path / "p",
        f"""
        import os, time

        def test_slow():
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(30)
        """,
    )
    assert warm._start() and warm.pid is not None
    server = warm.pid

    def kill_server_once_the_run_is_going() -> None:
        while not pid_file.exists():
            time.sleep(0.05)
        os.kill(server, signal.SIGKILL)

    killer = threading.Thread(target=kill_server_once_the_run_is_going)
    killer.start()
    ran = warm_run(warm, root, timeout=60)
    killer.join()

    assert ran is None  # its outcome is unknown: run_module runs it fresh
    assert wait_gone(int(pid_file.read_text()))  # and nothing of it is left running
    assert warm.broken == "the warm process ended"


def test_coverage_under_the_warm_process_measures_what_a_fresh_run_measures(
    tmp_path: Path, warm: WarmPython
) -> None:
    root = project(
        tmp_path / "p",
        "from calc import add\n\ndef test_adds():\n    assert add(2, 2) == 4\n",
        module="def add(a, b):\n    return a + b\n\n\ndef unused():\n    return 0\n",
    )
    reports = {}
    for how in ("fresh", "warm"):
        data = tmp_path / f"{how}.coverage"
        args = ["run", "--branch", "--source=calc", f"--data-file={data}", "-m", "pytest", *ARGS]
        if how == "fresh":
            ran = run_tool(
                "coverage", python_command("coverage", *args), cwd=root, timeout=60, env=ENV
            )
        else:
            ran = warm.run("coverage", "coverage", args, cwd=root, timeout=60, version="v", env=ENV)
        assert ran is not None and ran.exit_code == 0, ran
        report = run_tool(
            "coverage",
            python_command("coverage", "report", f"--data-file={data}"),
            cwd=root,
            timeout=60,
            env=ENV,
        )
        reports[how] = report.stdout

    assert reports["warm"] == reports["fresh"]
    assert "calc.py" in reports["warm"] and warm.runs == 1


def test_starting_soon_readies_the_warm_process_for_the_first_run(
    tmp_path: Path, warm: WarmPython
) -> None:
    warm.start_soon()
    deadline = time.monotonic() + 60
    while warm.pid is None and time.monotonic() < deadline:
        time.sleep(0.05)
    started = warm.pid

    ran = warm_run(warm, project(tmp_path / "p", PASS_AND_FAIL))

    assert started is not None and warm.pid == started  # the run used it, none other
    assert ran is not None and ran.exit_code == 1
