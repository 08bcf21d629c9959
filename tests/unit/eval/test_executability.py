"""Executability on hand-made workspaces: real pip (dry run), compileall and import, uvicorn
and pytest. A workspace scores 1 only when every step succeeds."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path

import pytest

from ideamine.eval.executability import STEPS, executability

APP = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    return {"status": "ok"}
"""

TESTS = """\
from fastapi.testclient import TestClient

from app.main import app


def test_index():
    assert TestClient(app).get("/").json() == {"status": "ok"}
"""


def requirements() -> str:
    return "".join(f"{name}=={version(name)}\n" for name in ("fastapi", "uvicorn", "httpx"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    files = {
        "backend/app/__init__.py": "",
        "backend/app/main.py": APP,
        "backend/tests/test_main.py": TESTS,
        "backend/requirements.txt": requirements(),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_sound_workspace_scores_one(workspace: Path) -> None:
    report = asyncio.run(executability(workspace))
    assert report["score"] == 1.0 and report["failed_step"] is None
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == list(STEPS)
    assert all(s["ok"] is True for s in steps.values())
    assert steps["install"]["detail"] == "every requirement is satisfied"
    assert steps["start"]["detail"] == "GET / answered 200"
    assert steps["tests"]["detail"] == "1/1 passed"


def test_a_failing_test_makes_executability_zero(workspace: Path) -> None:
    tests = workspace / "backend/tests/test_main.py"
    tests.write_text(TESTS.replace('{"status": "ok"}', '{"status": "broken"}', 1))
    report = asyncio.run(executability(workspace))
    assert (report["score"], report["failed_step"]) == (0.0, "tests")
    assert report["steps"][-1]["detail"] == "0/1 passed"


def test_an_app_that_does_not_import_fails_at_import(workspace: Path) -> None:
    (workspace / "backend/app/main.py").write_text("import not_a_module_anywhere\n" + APP)
    report = asyncio.run(executability(workspace))
    assert (report["score"], report["failed_step"]) == (0.0, "import")
    steps = {s["step"]: s for s in report["steps"]}
    assert "not_a_module_anywhere" in steps["import"]["detail"]
    assert steps["start"]["ok"] is False  # the service cannot start either


def test_requirements_pip_cannot_read_fail_at_install(workspace: Path) -> None:
    (workspace / "backend/requirements.txt").write_text("fastapi===>>broken\n")
    report = asyncio.run(executability(workspace))
    assert (report["score"], report["failed_step"]) == (0.0, "install")


def test_a_workspace_without_tests_is_not_executable(workspace: Path) -> None:
    (workspace / "backend/tests/test_main.py").unlink()
    report = asyncio.run(executability(workspace))
    assert report["failed_step"] == "tests"
