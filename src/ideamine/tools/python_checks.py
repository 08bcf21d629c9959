"""The build checks of a generated workspace: compile, tests with coverage, lint.

Each function runs the real tool on the workspace (see docs/evidence.md) and returns one
section of the BuildReport (``compile``, ``tests``, ``lint``) or the CoverageReport, each with
its ``evidence`` envelope. Reports, caches and bytecode go to temporary folders outside the
workspace, so its git tree stays clean. A tool cut by its time limit gives null numbers, never
guessed ones.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

from ideamine.tools.process import ToolRun, run_module, run_tool, tool_version

__all__ = ["LINT_ERRORS", "LINT_SELECT", "compile_check", "lint", "run_selected_tests", "run_tests"]

LINT_SELECT = "E,F,W,B"
"""Ruff rules the lint runs, whatever the workspace configures: pycodestyle, pyflakes, bugbear."""
LINT_ERRORS = "F (pyflakes), E9 and syntax errors"
"""Which findings count as errors; every other selected rule is a warning."""

_COMPILE_ERROR = re.compile(r"^\*\*\* Error compiling '(?P<file>[^']+)'", re.MULTILINE)
_CANT_LIST = re.compile(r"^Can't list '(?P<file>[^']+)'", re.MULTILINE)
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def compile_check(
    workspace: Path, *, paths: Sequence[str] = ("backend",), timeout: float = 120
) -> dict[str, object]:
    """Byte-compile ``paths`` and import the app's ``app.main``: the BuildReport's ``compile``.

    Args:
        workspace: the workspace root.
        paths: folders (relative to ``workspace``) to compile; each holding ``app/main.py``
            is also import-checked with its folder as the working directory, because a module
            that compiles but fails to import does not run.
        timeout: seconds for each step.

    Returns:
        ``{"ok", "errors": [{"file", "message"}], "evidence"}``; ``ok`` is None when a step
        could not run or was cut by the time limit (nothing was judged).
    """
    # compileall writes bytecode: into a throwaway tree, so the workspace stays a clean git
    # tree. The import check runs without that prefix: under one, Python ignores the
    # installed packages' bytecode and compiles FastAPI, pydantic… from source (~1 s).
    with tempfile.TemporaryDirectory(prefix="ideamine-pyc-") as cache:
        env = {"PYTHONPYCACHEPREFIX": cache}
        compiled = run_module(
            "compileall", "compileall", ["-q", *paths], cwd=workspace, timeout=timeout, env=env
        )
    runs, errors = [compiled], _compile_errors(compiled)
    if compiled.executed and not compiled.timed_out:
        imports, import_errors = _import_checks(workspace, paths, timeout)
        runs += imports
        errors += import_errors
    judged = all(run.executed and not run.timed_out for run in runs)
    ok = (not errors and all(run.exit_code == 0 for run in runs)) if judged else None
    return {"ok": ok, "errors": errors, "evidence": _combined(runs)}


def _compile_errors(run: ToolRun) -> list[dict[str, str]]:
    """The files compileall could not compile or list, each with its last error line."""
    text = run.stdout + run.stderr
    errors = [
        {"file": match["file"], "message": "cannot list the folder (missing?)"}
        for match in _CANT_LIST.finditer(text)
    ]
    blocks = _COMPILE_ERROR.split(text)
    # split() with one group gives [before, file1, block1, file2, block2, …]
    for file, block in zip(blocks[1::2], blocks[2::2], strict=True):
        errors.append({"file": file, "message": _error_message(block)})
    if not errors and run.executed and not run.timed_out and run.exit_code != 0:
        errors.append({"file": "", "message": _last_line(text) or f"exit code {run.exit_code}"})
    return errors


def _error_message(block: str) -> str:
    """``SyntaxError: invalid syntax (line 3)`` from one compileall error block."""
    last = _last_line(block)
    frame = _FRAME.search(block)
    return f"{last} (line {frame['line']})" if frame else last


def _import_checks(
    workspace: Path, paths: Sequence[str], timeout: float
) -> tuple[list[ToolRun], list[dict[str, str]]]:
    """Import ``app.main`` in every path that has one; a missing entry module is an error.
    (``tool_env`` keeps Python from writing bytecode into the workspace.)"""
    runs: list[ToolRun] = []
    errors: list[dict[str, str]] = []
    for path in paths:
        project = workspace / path
        if not (project / "app" / "main.py").is_file():
            continue
        argv = (sys.executable, "-c", "import app.main")
        run = run_tool(
            "import-check",
            argv,
            cwd=project,
            timeout=timeout,
            env={"PYTHONPATH": str(project)},
            version=tool_version("python"),
        )
        runs.append(run)
        if run.executed and not run.timed_out and run.exit_code != 0:
            errors.append(_import_error(workspace, f"{path}/app/main.py", run))
    if not runs and paths:
        missing = f"{paths[0]}/app/main.py"
        errors.append({"file": missing, "message": "not found: the app's entry module is missing"})
    return runs, errors


def _import_error(workspace: Path, entry: str, run: ToolRun) -> dict[str, str]:
    """Name the deepest workspace file in the traceback, else the entry module."""
    file, line = entry, ""
    for frame in _FRAME.finditer(run.stderr):
        relative = _relative(workspace, frame["file"])
        if relative is not None:
            file, line = relative, frame["line"]
    where = f" (line {line})" if line else ""
    return {"file": file, "message": f"import app.main failed: {_last_line(run.stderr)}{where}"}


def run_tests(
    workspace: Path,
    *,
    project: str = "backend",
    tests: str = "tests",
    source: str = "app",
    target_percent: float = 70,
    timeout: float = 600,
    select: Sequence[str] = (),
) -> tuple[dict[str, object], dict[str, object]]:
    """Run the project's tests under coverage: the BuildReport's ``tests`` and a CoverageReport.

    Runs ``python -m coverage run --branch --source=<source> -m pytest`` in
    ``workspace/project`` with pytest's own plugins only (plus anyio's, for async tests), so
    IdeaMine's environment does not change how the generated tests behave.

    Args:
        workspace: the workspace root.
        project: the folder holding the code and its tests.
        tests: the tests folder (relative to ``project``), run when ``select`` is empty.
        source: the package whose coverage is measured.
        target_percent: recorded in the CoverageReport for the guard to judge.
        timeout: seconds for the test run.
        select: test node ids or files to run instead of ``tests`` (the story loop).

    Returns:
        ``(tests, coverage)``. ``tests`` is ``{"total", "passed", "failed", "errors",
        "skipped", "failures": [{"name", "message"}], "problem", "evidence"}``, where
        ``problem`` says why there are no (or partial) results; the counts are None when the
        run was cut by its time limit or could not start. ``coverage`` is ``{"measured",
        "percent", "lines_covered", "lines_total", "files", "target_percent", "evidence"}``,
        with ``files`` keyed by workspace-relative path.
    """
    root = (workspace / project).resolve()  # the tools run with it as their working folder
    with tempfile.TemporaryDirectory(prefix="ideamine-tests-") as tmp:
        out = Path(tmp)
        args = _coverage_run_args(root, out, source, [*select] or [tests])
        env = {"PYTHONPATH": str(root), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        run = run_module("pytest", "coverage", args, cwd=root, timeout=timeout, env=env)
        section = _tests_section(run, out / "junit.xml", timeout)
        coverage = _coverage_report(run, root, project, out, target_percent)
    return section, coverage


def run_selected_tests(
    workspace: Path, select: Sequence[str], *, project: str = "backend", timeout: float = 600
) -> dict[str, object]:
    """Run only the ``select`` tests (node ids or files), without coverage: the story loop's
    acceptance runs, which report test outcomes and nothing else.

    Returns:
        The tests section of ``run_tests``.
    """
    root = (workspace / project).resolve()  # the tools run with it as their working folder
    with tempfile.TemporaryDirectory(prefix="ideamine-tests-") as tmp:
        out = Path(tmp)
        env = {"PYTHONPATH": str(root), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        args = _pytest_args(root, out, list(select))
        run = run_module("pytest", "pytest", args, cwd=root, timeout=timeout, env=env)
        return _tests_section(run, out / "junit.xml", timeout)


def _coverage_run_args(root: Path, out: Path, source: str, targets: list[str]) -> list[str]:
    """``coverage run … -m pytest …`` arguments writing every report into ``out``."""
    return [
        "run",
        "--branch",
        f"--source={source}",
        f"--data-file={out / '.coverage'}",
        "-m",
        "pytest",
        *_pytest_args(root, out, targets),
    ]


def _pytest_args(root: Path, out: Path, targets: list[str]) -> list[str]:
    """pytest's arguments: quiet, pytest's own plugins (and anyio's), the project's config
    only, JUnit XML into ``out``."""
    plugins = ["-p", "anyio.pytest_plugin"] if _installed("anyio") else []
    return [
        "-q",
        "-p",
        "no:cacheprovider",
        *plugins,
        "-c",
        str(_pytest_config(root, out)),
        f"--rootdir={root}",
        "-o",
        "junit_family=xunit1",
        f"--junitxml={out / 'junit.xml'}",
        *targets,
    ]


def _pytest_config(root: Path, out: Path) -> Path:
    """The project's own pytest config, else an empty one: never a config found higher up."""
    for name in ("pytest.ini", ".pytest.ini"):
        if (root / name).is_file():
            return root / name
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and "[tool.pytest" in pyproject.read_text(errors="replace"):
        return pyproject
    empty = out / "pytest.ini"
    empty.write_text("[pytest]\n")
    return empty


def _tests_section(run: ToolRun, junit: Path, timeout: float) -> dict[str, object]:
    """Counts and failures from pytest's JUnit XML, or why there are none."""
    unknown = dict.fromkeys(("total", "passed", "failed", "errors", "skipped"))
    if not run.executed:
        return {**unknown, "failures": [], "problem": run.reason, "evidence": run.envelope()}
    if run.timed_out:
        problem = f"the test run was cut by its time limit ({timeout:g} s)"
        return {**unknown, "failures": [], "problem": problem, "evidence": run.envelope()}
    parsed = _parse_junit(junit) if junit.is_file() else None
    if parsed is None:
        zeros = dict.fromkeys(unknown, 0)
        crash = f"pytest wrote no report (exit {run.exit_code}): {_tail(run)}"
        return {**zeros, "failures": [], "problem": crash, "evidence": run.envelope()}
    counts, failures = parsed
    partial = _problem(run, counts["total"])
    return {**counts, "failures": failures, "problem": partial, "evidence": run.envelope()}


def _parse_junit(path: Path) -> tuple[dict[str, int], list[dict[str, str]]] | None:
    """Outcome counts and failed or erroring tests from pytest's XML (None if unreadable)."""
    try:
        root = ElementTree.parse(path).getroot()  # pytest wrote it, just now
    except ElementTree.ParseError:
        return None
    counts = dict.fromkeys(("total", "passed", "failed", "errors", "skipped"), 0)
    failures: list[dict[str, str]] = []
    for case in root.iter("testcase"):
        outcome, detail = _outcome(case)
        counts["total"] += 1
        counts[outcome] += 1
        if detail is not None and outcome != "skipped":
            failures.append({"name": _node_id(case), "message": _first_lines(detail)})
    return counts, failures


def _outcome(case: ElementTree.Element) -> tuple[str, ElementTree.Element | None]:
    """``failed``, ``errors``, ``skipped`` or ``passed``, with the element that says so."""
    for tag, outcome in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
        detail = case.find(tag)
        if detail is not None:
            return outcome, detail
    return "passed", None


def _node_id(case: ElementTree.Element) -> str:
    """``tests/test_x.py::TestY::test_z`` from a JUnit (xunit1) test case."""
    file, classname, name = case.get("file"), case.get("classname", ""), case.get("name", "")
    if not file:
        return ".".join(part for part in (classname, name) if part)
    module = file.removesuffix(".py").replace("/", ".")
    if not classname and name == module:  # a collection error names the module only
        return file
    inner = classname[len(module) + 1 :].split(".") if classname.startswith(module + ".") else []
    return "::".join([file, *inner, name])


def _first_lines(detail: ElementTree.Element, lines: int = 5, chars: int = 500) -> str:
    """The short message of a failure (its ``message``, else the first lines of its text)."""
    text = detail.text or ""
    message = detail.get("message") or ""
    if message in ("", "collection failure"):
        # pytest's own "E   …" lines say what went wrong; the last one names the exception
        raised = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
        message = raised[-1] if raised else text
    return "\n".join(message.strip().splitlines()[:lines])[:chars]


def _problem(run: ToolRun, total: int) -> str | None:
    """Why a finished run's results are empty or partial (None when they are complete)."""
    if total == 0:
        return f"pytest collected no tests (exit {run.exit_code}): {_tail(run)}"
    if run.exit_code not in (0, 1):
        return f"pytest exited {run.exit_code} (interrupted or errors): {_tail(run)}"
    return None


def _coverage_report(
    run: ToolRun, root: Path, project: str, out: Path, target_percent: float
) -> dict[str, object]:
    """Read ``coverage json`` after the run; a run that did not finish measured nothing."""
    report: dict[str, object] = {
        "measured": False,
        "percent": None,
        "lines_covered": None,
        "lines_total": None,
        "files": {},
        "target_percent": target_percent,
    }
    if not run.executed or run.timed_out:
        reason = run.reason or "the test run under coverage was cut by its time limit"
        evidence = ToolRun(
            tool="coverage",
            version=tool_version("coverage"),
            command=run.command,
            exit_code=None,
            timed_out=run.timed_out,
            duration_ms=0.0,  # the run's time is already counted in the tests evidence
            stdout="",
            stderr="",
            executed=run.executed,
            reason=run.reason,
        )
        return {**report, "reason": reason, "evidence": evidence.envelope()}
    output = out / "coverage.json"
    args = ["json", "--ignore-errors", f"--data-file={out / '.coverage'}", "-o", str(output)]
    exported = run_module("coverage", "coverage", args, cwd=root, timeout=120)
    if not exported.ok or not output.is_file():
        reason = f"no coverage data (exit {exported.exit_code}): {_tail(exported)}"
        return {**report, "reason": reason, "evidence": exported.envelope()}
    return {**report, **_coverage_numbers(output, project), "evidence": exported.envelope()}


def _coverage_numbers(output: Path, project: str) -> dict[str, object]:
    """Totals and per-file percentages from coverage.py's JSON report."""
    data = json.loads(output.read_text())
    totals = data["totals"]
    files = {
        f"{project}/{name}": round(float(entry["summary"]["percent_covered"]), 2)
        for name, entry in sorted(data["files"].items())
    }
    return {
        "measured": True,
        "percent": round(float(totals["percent_covered"]), 2),
        "lines_covered": int(totals["covered_lines"]),
        "lines_total": int(totals["num_statements"]),
        "files": files,
    }


def lint(
    workspace: Path, *, paths: Sequence[str] = ("backend",), timeout: float = 120
) -> dict[str, object]:
    """Lint ``paths`` with ruff's fixed ``LINT_SELECT`` rules: the BuildReport's ``lint``.

    The workspace's own ruff configuration is ignored (``--isolated``), so every run is
    judged by the same rules: errors are ``LINT_ERRORS``, everything else a warning. Lines
    may be 100 characters long.

    Returns:
        ``{"errors", "warnings", "findings": [{"file", "line", "code", "message",
        "severity"}], "select", "evidence"}``, files relative to the workspace; the counts are
        None when ruff could not run or was cut by its time limit.
    """
    present = [path for path in paths if (workspace / path).exists()]
    if not present:
        run = ToolRun.not_run("ruff", f"nothing to lint: {', '.join(paths)} not found")
        return _lint_section(None, run)
    with tempfile.TemporaryDirectory(prefix="ideamine-ruff-") as tmp:
        output = Path(tmp) / "ruff.json"
        args = ["check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "json"]
        args += ["--output-file", str(output), "--select", LINT_SELECT, "--line-length", "100"]
        run = run_module("ruff", "ruff", [*args, *present], cwd=workspace, timeout=timeout)
        findings = _ruff_findings(workspace, output) if run.ok and output.is_file() else None
    return _lint_section(findings, run)


def _lint_section(findings: list[dict[str, object]] | None, run: ToolRun) -> dict[str, object]:
    """Counts by severity (None when ruff gave no report) and the sorted findings."""
    errors = warnings = None
    if findings is not None:
        errors = sum(1 for finding in findings if finding["severity"] == "error")
        warnings = len(findings) - errors
    return {
        "errors": errors,
        "warnings": warnings,
        "findings": findings or [],
        "select": LINT_SELECT,
        "evidence": run.envelope(),
    }


def _ruff_findings(workspace: Path, output: Path) -> list[dict[str, object]]:
    """Ruff's JSON diagnostics as findings, each with its severity."""
    findings: list[dict[str, object]] = []
    for item in json.loads(output.read_text() or "[]"):
        code = item.get("code") or "invalid-syntax"
        error = code == "invalid-syntax" or code.startswith(("F", "E9"))
        location = item.get("location") or {}
        findings.append(
            {
                "file": _relative(workspace, item["filename"]) or item["filename"],
                "line": int(location.get("row") or 0),
                "code": code,
                "message": item["message"],
                "severity": "error" if error else "warning",
            }
        )
    return sorted(findings, key=lambda f: (str(f["file"]), int(str(f["line"])), str(f["code"])))


def _relative(workspace: Path, file: str) -> str | None:
    """``file`` relative to the workspace, or None when it lies outside."""
    try:
        return Path(file).resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return None


def _combined(runs: list[ToolRun]) -> dict[str, object]:
    """One envelope for several steps: the first step's, with the time of all and each step."""
    envelope = runs[0].envelope()
    if len(runs) > 1:
        failed = [run.exit_code for run in runs if run.exit_code != 0]
        envelope["exit_code"] = failed[0] if failed else 0
        envelope["timed_out"] = any(run.timed_out for run in runs)
        envelope["duration_ms"] = round(sum(run.duration_ms for run in runs), 1)
        envelope["steps"] = [run.envelope() for run in runs]
    return envelope


def _installed(module: str) -> bool:
    """True when ``module`` can be imported by the tools' interpreter (this one)."""
    return importlib.util.find_spec(module) is not None


def _tail(run: ToolRun, lines: int = 3) -> str:
    """The last few lines a tool printed, for a problem message."""
    text = (run.stdout.strip() or run.stderr.strip()).splitlines()
    return " | ".join(text[-lines:]) or "no output"


def _last_line(text: str) -> str:
    """The last non-blank line of ``text``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
