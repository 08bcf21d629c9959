"""Executability: the generated workspace installs, imports, starts its service, and its own
tests pass.

Each step runs the real tool on the workspace and keeps its evidence envelope. The score is 1
when every step succeeded, else 0 (the ChatDev paper's per-software definition), and the
first failed step is named.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from ideamine.tools import service
from ideamine.tools.process import ToolRun, run_module
from ideamine.tools.python_checks import compile_check, run_selected_tests

__all__ = ["STEPS", "executability"]

STEPS = ("install", "import", "start", "tests")
_PROJECT = "backend"


async def executability(workspace: Path, *, limit_s: float = 600) -> dict[str, object]:
    """``{"score", "failed_step", "steps": [{"step", "ok", "detail", "evidence"}]}``."""
    steps = [
        await asyncio.to_thread(_install, workspace, limit_s),
        await asyncio.to_thread(_import, workspace, limit_s),
        await _start(workspace),
        await asyncio.to_thread(_tests, workspace, limit_s),
    ]
    failed = next((s["step"] for s in steps if s["ok"] is not True), None)
    return {"score": 0.0 if failed else 1.0, "failed_step": failed, "steps": steps}


def _step(name: str, ok: bool | None, detail: str, evidence: object) -> dict[str, object]:
    return {"step": name, "ok": ok, "detail": detail, "evidence": evidence}


def _install(workspace: Path, timeout: float) -> dict[str, object]:
    """pip resolves ``backend/requirements.txt`` for this interpreter (a dry run: nothing is
    changed; what it would install is listed)."""
    requirements = workspace / _PROJECT / "requirements.txt"
    if not requirements.is_file():
        return _step("install", False, f"{_PROJECT}/requirements.txt is missing", None)
    args = ["install", "--dry-run", "--no-input", "--disable-pip-version-check", "-r"]
    run = run_module("pip", "pip", [*args, str(requirements)], cwd=workspace, timeout=timeout)
    would = [
        line.removeprefix("Would install ").strip()
        for line in run.stdout.splitlines()
        if line.startswith("Would install ")
    ]
    detail = f"would install {would[0]}" if would else "every requirement is satisfied"
    return _step("install", run.ok, detail if run.ok else _failure(run), run.envelope())


def _import(workspace: Path, timeout: float) -> dict[str, object]:
    report = compile_check(workspace, paths=(_PROJECT,), timeout=timeout)
    errors = report["errors"]
    detail = "compiles, and app.main imports"
    if isinstance(errors, list) and errors:
        first = errors[0]
        detail = f"{first.get('file')}: {first.get('message')}" if isinstance(first, dict) else ""
    ok = report["ok"]
    return _step("import", ok if isinstance(ok, bool) else None, detail, report["evidence"])


async def _start(workspace: Path) -> dict[str, object]:
    """The service starts and answers ``GET /`` below 500."""
    try:
        async with service.running_service(workspace / _PROJECT) as svc:
            async with service.http_client(svc.base_url) as client:
                response = await client.get("/")
            ok = response.status_code < 500
            detail = f"GET / answered {response.status_code}"
            evidence = {"command": list(svc.command), "target": svc.base_url}
    except (service.ServiceError, httpx.HTTPError) as exc:
        return _step("start", False, f"the service did not start: {exc}", None)
    return _step("start", ok, detail, evidence)


def _tests(workspace: Path, timeout: float) -> dict[str, object]:
    section = run_selected_tests(workspace, ["tests"], project=_PROJECT, timeout=timeout)
    total, failed, errors = section["total"], section["failed"], section["errors"]
    ok = isinstance(total, int) and total > 0 and failed == 0 and errors == 0
    detail = f"{section['passed']}/{total} passed"
    if section.get("problem"):
        detail += f" ({section['problem']})"
    elif not ok and isinstance(total, int) and total == 0:
        detail = "the workspace has no tests"
    return _step("tests", ok, detail, section["evidence"])


def _failure(run: ToolRun) -> str:
    if not run.executed:
        return run.reason or "pip could not run"
    lines = [line for line in (run.stderr or run.stdout).splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"pip exited with {run.exit_code}"
