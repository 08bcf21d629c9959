"""ideamine.tools.python_checks on hand-made workspaces: real compileall, pytest, coverage, ruff."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ideamine.tools.python_checks import compile_check, lint, run_selected_tests, run_tests

APP = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def sign(x: int) -> str:
    if x > 0:
        return "positive"
    return "not positive"
"""

TESTS = """\
import pytest
from fastapi.testclient import TestClient

from app.main import app


def test_health():
    assert TestClient(app).get("/health").json() == {"status": "ok"}


def test_failing():
    assert 1 + 1 == 3, "arithmetic is broken"


@pytest.mark.skip(reason="not yet")
def test_skipped():
    pass


class TestGroup:
    def test_inner(self):
        assert True
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def tree(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def app_files(**extra: str) -> dict[str, str]:
    return {"backend/app/__init__.py": "", "backend/app/main.py": APP, **extra}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FastAPI app with one passing, one failing, one skipped and one class-based test."""
    root = tmp_path_factory.mktemp("ws")
    return write(root, app_files(**{"backend/tests/test_main.py": TESTS}))


@pytest.fixture(scope="module")
def results(workspace: Path) -> tuple[dict[str, object], dict[str, object], set[str]]:
    before = tree(workspace)
    tests, coverage = run_tests(workspace, target_percent=80)
    assert tree(workspace) == before  # reports, caches and bytecode went elsewhere
    return tests, coverage, before


def test_counts_and_the_failing_test_by_node_id(results: tuple[dict, dict, set]) -> None:
    tests, _, _ = results
    assert {k: tests[k] for k in ("total", "passed", "failed", "errors", "skipped")} == {
        "total": 4,
        "passed": 2,
        "failed": 1,
        "errors": 0,
        "skipped": 1,
    }
    assert tests["failures"] == [
        {
            "name": "tests/test_main.py::test_failing",
            "message": "AssertionError: arithmetic is broken\nassert (1 + 1) == 3",
        }
    ]
    assert tests["problem"] is None
    evidence = tests["evidence"]
    assert evidence["tool"] == "pytest" and evidence["exit_code"] == 1
    assert evidence["executed"] is True and evidence["timed_out"] is False


def test_coverage_is_measured_by_coverage_py(results: tuple[dict, dict, set]) -> None:
    _, coverage, _ = results
    assert coverage["measured"] is True and coverage["target_percent"] == 80
    # sign() is never called: its two lines and both branches are missed
    assert 0 < coverage["percent"] < 100
    assert coverage["lines_total"] > coverage["lines_covered"] > 0
    assert set(coverage["files"]) == {"backend/app/__init__.py", "backend/app/main.py"}
    assert coverage["files"]["backend/app/main.py"] == coverage["percent"]
    assert coverage["evidence"]["tool"] == "coverage" and coverage["evidence"]["exit_code"] == 0


def test_select_runs_only_the_named_tests(workspace: Path) -> None:
    tests, _ = run_tests(workspace, select=["tests/test_main.py::TestGroup::test_inner"])
    assert (tests["total"], tests["passed"], tests["failures"]) == (1, 1, [])


def test_selected_tests_run_by_pytest_alone(workspace: Path) -> None:
    tests = run_selected_tests(workspace, ["tests/test_main.py"])
    assert (tests["total"], tests["passed"], tests["failed"], tests["skipped"]) == (4, 2, 1, 1)
    assert tests["failures"][0]["name"].endswith("test_failing")
    command = tests["evidence"]["command"]
    assert command[:3] == ["python", "-m", "pytest"] and "coverage" not in command


def test_compile_check_passes_a_sound_app(workspace: Path) -> None:
    before = tree(workspace)
    report = compile_check(workspace)
    assert (report["ok"], report["errors"]) == (True, [])
    steps = report["evidence"]["steps"]
    assert [step["tool"] for step in steps] == ["compileall", "import-check"]
    assert tree(workspace) == before  # no __pycache__ in the workspace


def test_a_syntax_error_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"backend/app/__init__.py": "", "backend/app/main.py": "x = 1\n"})
    write(tmp_path, {"backend/app/broken.py": "def f(:\n    pass\n"})
    report = compile_check(tmp_path)
    assert report["ok"] is False
    assert report["errors"] == [
        {"file": "backend/app/broken.py", "message": "SyntaxError: invalid syntax (line 1)"}
    ]


def test_a_module_that_compiles_but_fails_to_import_is_not_ok(tmp_path: Path) -> None:
    write(tmp_path, {"backend/app/__init__.py": "", "backend/app/main.py": "import app.db\n"})
    write(tmp_path, {"backend/app/db.py": "\nimport no_such_driver_xyz\n"})
    report = compile_check(tmp_path)
    assert report["ok"] is False
    [error] = report["errors"]
    assert error["file"] == "backend/app/db.py"
    assert "No module named 'no_such_driver_xyz'" in error["message"]
    assert "(line 2)" in error["message"]


def test_a_missing_entry_module_is_not_ok(tmp_path: Path) -> None:
    write(tmp_path, {"backend/app/__init__.py": ""})
    report = compile_check(tmp_path)
    assert report["ok"] is False
    assert report["errors"][0]["file"] == "backend/app/main.py"


def test_lint_counts_errors_and_warnings_with_its_own_rules(tmp_path: Path) -> None:
    long_line = "VALUE = " + repr("x" * 120) + "\n"
    write(tmp_path, {"backend/app/util.py": "import os\n\n" + long_line})
    # the workspace's own config would silence everything; lint ignores it
    write(tmp_path, {"backend/ruff.toml": "[lint]\nignore = ['E', 'F', 'W', 'B']\n"})
    report = lint(tmp_path)
    assert (report["errors"], report["warnings"]) == (1, 1)
    assert report["findings"] == [
        {
            "file": "backend/app/util.py",
            "line": 1,
            "code": "F401",
            "message": "`os` imported but unused",
            "severity": "error",
        },
        {
            "file": "backend/app/util.py",
            "line": 3,
            "code": "E501",
            "message": report["findings"][1]["message"],
            "severity": "warning",
        },
    ]
    assert report["evidence"]["tool"] == "ruff" and report["evidence"]["exit_code"] == 0


def test_lint_reports_syntax_errors_as_errors(tmp_path: Path) -> None:
    write(tmp_path, {"backend/app/broken.py": "def f(:\n    pass\n"})
    report = lint(tmp_path)
    assert report["errors"] >= 1
    assert {f["code"] for f in report["findings"]} == {"invalid-syntax"}


def test_lint_of_nothing_is_not_executed(tmp_path: Path) -> None:
    report = lint(tmp_path)
    assert report["errors"] is None and report["evidence"]["executed"] is False


def test_no_tests_collected_is_a_problem_not_a_pass(tmp_path: Path) -> None:
    write(tmp_path, app_files(**{"backend/tests/test_nothing.py": "X = 1\n"}))
    tests, coverage = run_tests(tmp_path)
    assert tests["total"] == 0 and tests["passed"] == 0
    assert tests["problem"].startswith("pytest collected no tests (exit 5): ")
    assert "no tests ran" in tests["problem"]
    # nothing imported the app: coverage.py measured it, at 0 %
    assert (coverage["measured"], coverage["percent"]) == (True, 0.0)


def test_a_collection_error_names_the_test_file(tmp_path: Path) -> None:
    write(tmp_path, app_files(**{"backend/tests/test_bad.py": "import nowhere_xyz\n"}))
    tests, _ = run_tests(tmp_path)
    assert tests["errors"] == 1
    assert tests["failures"] == [
        {
            "name": "tests/test_bad.py",
            "message": "ModuleNotFoundError: No module named 'nowhere_xyz'",
        }
    ]
    assert "exited 2" in tests["problem"]


def test_a_hanging_test_is_cut_and_gives_no_numbers(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hanging = (
        "import os, time\n\n\ndef test_hangs():\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(30)\n"
    )
    workspace = write(tmp_path / "ws", app_files(**{"backend/tests/test_slow.py": hanging}))
    started = time.monotonic()
    tests, coverage = run_tests(workspace, timeout=12)  # room for a slow start under load
    assert time.monotonic() - started < 25
    assert tests["evidence"]["timed_out"] is True and tests["evidence"]["exit_code"] is None
    assert all(tests[k] is None for k in ("total", "passed", "failed", "errors", "skipped"))
    assert "time limit" in tests["problem"]
    assert coverage["measured"] is False and coverage["percent"] is None
    assert coverage["evidence"]["timed_out"] is True
    assert not running(int(pid_file.read_text()))  # the test process was killed


def running(pid: int) -> bool:
    """True while ``pid`` runs (a killed process waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_missing_project_is_not_executed(tmp_path: Path) -> None:
    tests, coverage = run_tests(tmp_path)
    assert tests["total"] is None and tests["evidence"]["executed"] is False
    assert "no such folder" in tests["problem"]
    assert coverage["measured"] is False and coverage["evidence"]["executed"] is False
