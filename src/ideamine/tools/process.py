"""Run one tool as a subprocess and record what happened as evidence.

``run_tool`` is the only place IdeaMine starts a tool: in its own process group (so a time
limit kills the tool *and* everything it spawned), with a clean environment (no provider keys
or tokens), its output captured to temporary files (so a chatty tool never blocks on a full
pipe) and capped when read back. Its result, ``ToolRun``, turns into the evidence envelope of
docs/evidence.md. Python tools run as ``sys.executable -m <module>`` so this environment's
copies are used, never whatever happens to be first on ``PATH``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "OUTPUT_LIMIT",
    "ToolRun",
    "kill_group",
    "python_command",
    "read_capped",
    "run_module",
    "run_tool",
    "tool_env",
    "tool_version",
]

OUTPUT_LIMIT = 200_000
"""Bytes of stdout and of stderr kept from one tool run; the rest is cut, with a note."""

# Variables a tool may inherit; everything else (provider keys, cloud credentials) stays out.
_INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "COMSPEC",
    "PATHEXT",
    "WINDIR",
)
_SECRET_NAME = re.compile(r"API_KEY|TOKEN", re.IGNORECASE)
_VERSION = re.compile(r"\d+(?:\.\d+)+\S*")


@dataclass(frozen=True, slots=True)
class ToolRun:
    """What one tool run did: the command, how it ended, how long it took, what it printed.

    ``executed`` is false only when the tool could not start at all (then ``reason`` says
    why); ``timed_out`` is true when the time limit killed it (then ``exit_code`` is None).
    """

    tool: str
    version: str
    command: tuple[str, ...]
    exit_code: int | None
    timed_out: bool
    duration_ms: float
    stdout: str
    stderr: str
    executed: bool = True
    reason: str = ""

    @classmethod
    def not_run(
        cls, tool: str, reason: str, *, command: Sequence[str] = (), version: str = ""
    ) -> ToolRun:
        """A run that never started: the tool is missing, or there is nothing to run it on."""
        return cls(
            tool=tool,
            version=version,
            command=tuple(command),
            exit_code=None,
            timed_out=False,
            duration_ms=0.0,
            stdout="",
            stderr="",
            executed=False,
            reason=reason,
        )

    @property
    def ok(self) -> bool:
        """True when the tool ran to the end and exited 0."""
        return self.executed and not self.timed_out and self.exit_code == 0

    def envelope(self) -> dict[str, object]:
        """The evidence envelope of docs/evidence.md (plus ``reason`` when not executed).

        The interpreter path is shown as ``python`` so the envelope does not depend on where
        the virtual environment happens to live.
        """
        shown = ["python" if part == sys.executable else part for part in self.command]
        envelope: dict[str, object] = {
            "tool": self.tool,
            "version": self.version,
            "command": shown,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "duration_ms": round(self.duration_ms, 1),
            "executed": self.executed,
        }
        if not self.executed:
            envelope["reason"] = self.reason
        return envelope


def python_command(module: str, *args: str) -> tuple[str, ...]:
    """``sys.executable -m module args…``: the command that runs this environment's copy."""
    return (sys.executable, "-m", module, *args)


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a tool: a few inherited basics, ``extra`` on top, no secrets.

    This interpreter's folder goes first on ``PATH``; bytecode is not written (the workspace
    stays a clean git tree); any variable whose name contains ``API_KEY`` or ``TOKEN`` is
    dropped, even when ``extra`` names it.
    """
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", os.defpath)) if p)
    env.setdefault("LANG", "C.UTF-8")
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"})
    env.update(extra or {})
    return {name: value for name, value in env.items() if not _SECRET_NAME.search(name)}


def run_tool(
    tool: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
    version: str | None = None,
    stdout_limit: int | None = OUTPUT_LIMIT,
) -> ToolRun:
    """Run ``argv`` in ``cwd`` in its own process group and report how it went.

    Args:
        tool: the tool's name in the evidence (``"pytest"``); also how its version is found.
        argv: the full command; nothing goes through a shell.
        cwd: the folder it runs in; a missing folder gives a run that was not executed.
        timeout: seconds before the whole process group is killed (SIGKILL).
        env: variables added to the clean environment of ``tool_env``.
        version: the version to record; by default ``tool_version(tool)``.
        stdout_limit: bytes of stdout kept (None keeps all, for tools that only print their
            report there); stderr is always capped at ``OUTPUT_LIMIT``.

    Returns:
        The ``ToolRun``. A missing executable or folder never raises: it gives
        ``executed=False`` with the reason. Whatever the tool left running in its process
        group is killed when it ends, so no child outlives the run.
    """
    command = tuple(argv)
    shown_version = version if version is not None else tool_version(tool)
    if not cwd.is_dir():
        reason = f"no such folder: {cwd}"
        return ToolRun.not_run(tool, reason, command=command, version=shown_version)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(  # argv is a list, never a shell string
                command,
                cwd=cwd,
                env=tool_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            reason = f"{command[0] if command else tool} could not start: {exc.strerror or exc}"
            return ToolRun.not_run(tool, reason, command=command, version=shown_version)
        exit_code, timed_out = _wait(proc, timeout)
        duration_ms = (time.perf_counter() - started) * 1000
        return ToolRun(
            tool=tool,
            version=shown_version,
            command=command,
            exit_code=exit_code,
            timed_out=timed_out,
            duration_ms=duration_ms,
            stdout=read_capped(out, stdout_limit),
            stderr=read_capped(err, OUTPUT_LIMIT),
        )


def run_module(
    tool: str,
    module: str,
    args: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
    stdout_limit: int | None = OUTPUT_LIMIT,
) -> ToolRun:
    """Run ``python -m module args…`` with ``run_tool``; a module that is not installed is
    reported as not executed (instead of a run that fails with "No module named …").
    pytest and coverage runs are forked from a warm interpreter when they can be
    (``ideamine.tools.warm``): the same run, without importing pytest and FastAPI again."""
    command = python_command(module, *args)
    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed in {sys.prefix} (pip install ideamine's dependencies)"
        return ToolRun.not_run(tool, reason, command=command)
    # the module names the distribution where the tool's name does not (cyclonedx-py is the
    # cyclonedx_py module of cyclonedx-bom, and its script is not on PATH outside the venv)
    version = tool_version(tool)
    if version == "unknown":
        version = tool_version(module)
    from ideamine.tools.warm import MODULES, warm_python  # noqa: PLC0415  (imports this one)

    if module in MODULES:
        ran = warm_python().run(
            tool,
            module,
            args,
            cwd=cwd,
            timeout=timeout,
            version=version,
            env=env,
            stdout_limit=stdout_limit,
        )
        if ran is not None:
            return ran
    return run_tool(
        tool, command, cwd=cwd, timeout=timeout, env=env, version=version, stdout_limit=stdout_limit
    )


@functools.cache
def tool_version(module_or_exe: str) -> str:
    """The installed version of a Python tool (by distribution or module name), of the
    interpreter for standard-library modules, else of an executable on ``PATH`` (its
    ``--version``); ``"unknown"`` when none of those says."""
    if module_or_exe == "python" or module_or_exe in sys.stdlib_module_names:
        return platform.python_version()
    for dist in (module_or_exe, *_module_distributions().get(module_or_exe, ())):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    exe = shutil.which(module_or_exe)
    return _executable_version(exe) if exe else "unknown"


@functools.cache
def _module_distributions() -> Mapping[str, list[str]]:
    """Top-level module name → distributions providing it (``cyclonedx_py`` → cyclonedx-bom)."""
    return importlib.metadata.packages_distributions()


def _executable_version(exe: str) -> str:
    """The first version-looking word ``exe --version`` prints."""
    try:
        done = subprocess.run(
            [exe, "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
            env=tool_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    found = _VERSION.search(done.stdout or done.stderr)
    return found.group(0) if found else "unknown"


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int | None, bool]:
    """Wait for the tool; kill its whole group at the time limit, and any leftovers after."""
    try:
        exit_code: int | None = proc.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        exit_code, timed_out = None, True
    kill_group(proc.pid)
    if timed_out:
        proc.wait()
    return exit_code, timed_out


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in the group; an empty group is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def read_capped(stream: IO[bytes], limit: int | None) -> str:
    """Read back a captured stream, keeping at most ``limit`` bytes and saying so."""
    size = os.fstat(stream.fileno()).st_size
    stream.seek(0)
    data = stream.read() if limit is None else stream.read(limit)
    text = data.decode("utf-8", errors="replace")
    if limit is not None and size > limit:
        text += f"\n[output truncated: {size} bytes, the first {limit} kept]"
    return text
