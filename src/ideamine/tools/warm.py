"""Run ``python -m pytest`` and ``python -m coverage`` as forks of a warm interpreter.

A fresh interpreter that runs the generated project's tests spends most of a second importing
pytest, FastAPI and httpx before the first test; the story loop does that once per story, in
sequence, on the run's critical path. So one helper process (the *warm* process, ``python -m
ideamine.tools.warm``) imports that stack once and then, for each run asked of it, forks: the
child is set up as ``run_tool`` would start a fresh one (its own session and process group,
the clean tool environment, the working folder, ``sys.path`` as ``python -m`` builds it,
stdout and stderr into files) and runs the module as ``__main__``. The project's own modules
are imported by the child only, after the fork, so every run sees the project as it is then;
nothing a run does reaches the next one.

A project that has a top-level module of the same name as one already imported (its own
``httpx.py``) would get the warm process's copy instead of its own: such a run, and every
run when the warm process cannot start or dies, goes back to a fresh interpreter
(``run_tool``). Protocol (one JSON object per line): the warm process sends ``{"ready":
[top-level modules]}``, then for each request ``{"id", "cwd", "module", "args", "env",
"out", "err"}`` sends ``{"id", "pid"}`` once forked and ``{"id", "code"}`` once reaped
(``-N`` for a child killed by signal N). It exits when its stdin closes, killing the process
groups of the runs still going.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ideamine.tools.process import (
    OUTPUT_LIMIT,
    ToolRun,
    kill_group,
    python_command,
    read_capped,
    tool_env,
)

__all__ = ["MODULES", "WarmPython", "warm_python"]

MODULES = frozenset({"pytest", "coverage"})
"""The modules run warm: the test runs of the generated project."""

PRELOAD = ("pytest", "coverage", "anyio", "fastapi.testclient", "httpx")
"""What the warm process imports before its first fork (each only if installed). Never a
pytest plugin: pytest rewrites the asserts of the plugins it loads, which it cannot do to a
module already imported (it warns, and the run would differ from a fresh one)."""

START_TIMEOUT_S = 60.0
REAP_EVERY_S = 0.005


class WarmPython:
    """A client of one warm process, started on first use; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # starting, writing requests, the message slots
        self._changed = threading.Condition(self._lock)
        self._process: subprocess.Popen[bytes] | None = None
        self._loaded: frozenset[str] = frozenset()
        self._broken = ""  # why the warm process cannot be used (then every run goes cold)
        self._messages: dict[int, dict[str, Any]] = {}
        self._reader: threading.Thread | None = None
        self._next_id = 0
        self.runs = 0  # how many runs forked (for tests and the curious)

    @property
    def pid(self) -> int | None:
        """The warm process's id while it runs."""
        process = self._process
        return None if process is None else process.pid

    @property
    def broken(self) -> str:
        """Why runs go to a fresh interpreter, or ``""`` while the warm process works."""
        return self._broken

    def run(
        self,
        tool: str,
        module: str,
        args: Sequence[str],
        *,
        cwd: Path,
        timeout: float,
        version: str,
        env: Mapping[str, str] | None = None,
        stdout_limit: int | None = OUTPUT_LIMIT,
    ) -> ToolRun | None:
        """``python -m module args…`` forked from the warm process, as ``run_tool`` reports
        it; None when this run must go to a fresh interpreter (see the module docstring)."""
        if module not in MODULES or not cwd.is_dir() or not self._start():
            return None
        environment = tool_env(env)
        if _shadows(cwd, environment.get("PYTHONPATH", ""), self._loaded):
            return None
        with tempfile.TemporaryDirectory(prefix="ideamine-warm-") as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            out.touch()
            err.touch()
            started = time.perf_counter()
            ended = self._fork_and_wait(
                {"cwd": str(cwd), "module": module, "args": list(args), "env": environment},
                out,
                err,
                timeout,
            )
            if ended is None:
                return None
            code, timed_out = ended
            with out.open("rb") as out_file, err.open("rb") as err_file:
                return ToolRun(
                    tool=tool,
                    version=version,
                    command=python_command(module, *args),
                    exit_code=code,
                    timed_out=timed_out,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    stdout=read_capped(out_file, stdout_limit),
                    stderr=read_capped(err_file, OUTPUT_LIMIT),
                )

    def close(self) -> None:
        """Stop the warm process (it kills the runs still going)."""
        with self._lock:
            process, self._process = self._process, None
            self._broken = self._broken or "closed"
            self._changed.notify_all()
            reader = self._reader
        if process is not None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(process.pid)
                process.wait()
        if reader is not None:
            reader.join()  # it closes the process's pipes once it has read them out

    # -- the warm process -----------------------------------------------------------------

    def _start(self) -> bool:
        with self._lock:
            if self._process is not None or self._broken:
                return self._process is not None
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "ideamine.tools.warm"],
                    cwd=tempfile.gettempdir(),
                    env=tool_env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C in the terminal is the runner's to handle
                )
            except OSError as exc:
                self._broken = f"the warm process could not start: {exc}"
                return False
            ready = _read_message(process, START_TIMEOUT_S)
            if ready is None or not isinstance(ready.get("ready"), list):
                kill_group(process.pid)
                process.communicate()  # reaps it and closes its pipes
                self._broken = "the warm process did not report ready"
                return False
            self._process, self._loaded = process, frozenset(ready["ready"])
            self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
            self._reader.start()
        return True

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        """Hand each message of the warm process to the run waiting for it, until EOF."""
        assert process.stdout is not None
        for line in process.stdout:
            message = json.loads(line)
            with self._lock:
                self._messages.setdefault(message["id"], {}).update(message)
                self._changed.notify_all()
        with self._lock:
            if self._process is process:
                self._process, self._broken = None, "the warm process ended"
            self._changed.notify_all()
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        process.wait()

    def _fork_and_wait(
        self, request: dict[str, object], out: Path, err: Path, timeout: float
    ) -> tuple[int | None, bool] | None:
        """(exit code, timed out) of one forked run; None when the warm process went away
        before the run was forked (the caller runs it fresh)."""
        with self._lock:
            if self._process is None:
                return None
            self._next_id += 1
            number = self._next_id
            line = json.dumps({**request, "id": number, "out": str(out), "err": str(err)})
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(line.encode() + b"\n")
                self._process.stdin.flush()
            except OSError:
                return None
            pid = self._wait_for(number, "pid", time.monotonic() + START_TIMEOUT_S)
            if pid is None:
                self._messages.pop(number, None)
                return None
            self.runs += 1
            code = self._wait_for(number, "code", time.monotonic() + timeout)
            timed_out = code is None and self._process is not None
            if timed_out:
                kill_group(pid)
                self._wait_for(number, "code", time.monotonic() + START_TIMEOUT_S)
            self._messages.pop(number, None)
        kill_group(pid)  # whatever the run left running in its group
        if timed_out:
            return None, True
        if code is None:  # the warm process died under the run: its outcome is unknown
            return None
        return int(code), False

    def _wait_for(self, number: int, key: str, deadline: float) -> Any:
        """The ``key`` of message ``number`` once it came (lock held), or None at the
        deadline or when the warm process is gone."""
        while True:
            value = self._messages.get(number, {}).get(key)
            left = deadline - time.monotonic()
            if value is not None or left <= 0 or self._process is None:
                return value
            self._changed.wait(left)


_warm: list[WarmPython] = []  # this process's client, once made
_warm_lock = threading.Lock()


def warm_python() -> WarmPython:
    """This process's warm-process client (closed at exit)."""
    with _warm_lock:
        if not _warm:
            _warm.append(WarmPython())
            atexit.register(_warm[0].close)
        return _warm[0]


def _shadows(cwd: Path, pythonpath: str, loaded: frozenset[str]) -> bool:
    """Whether the run's own import path holds a top-level module the warm process has
    already imported (the run would get the warm copy, not its own)."""
    for folder in [cwd, *(Path(p) for p in pythonpath.split(os.pathsep) if p)]:
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                name = entry.stem if entry.suffix == ".py" else entry.name
                if name in loaded and (entry.suffix == ".py" or entry.is_dir()):
                    return True
    return False


def _read_message(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    """One line from the warm process within ``timeout`` seconds, parsed; None otherwise."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        return None
    line = process.stdout.readline()
    try:
        message = json.loads(line) if line else None
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


# -- the warm process itself --------------------------------------------------------------


def serve() -> None:
    """Import ``PRELOAD``, say ready, then fork a run per request until stdin closes."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _send({"ready": sorted({name.partition(".")[0] for name in sys.modules})})
    children: dict[int, int] = {}  # pid → request id
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], REAP_EVERY_S if children else None)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children[pid] = request["id"]
                _send({"id": request["id"], "pid": pid})
        _reap(children)
    for pid in children:
        kill_group(pid)


def _send(message: Mapping[str, object]) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _reap(children: dict[int, int]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        number = children.pop(pid, None)
        if number is not None:
            _send({"id": number, "code": os.waitstatus_to_exitcode(status)})


def _child(request: Mapping[str, Any]) -> NoReturn:
    """Become the run ``python -m MODULE ARGS`` would start, run it, and exit with its code."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["out"], os.O_WRONLY)):
            os.dup2(os.open(path, flags), fd)
        os.dup2(os.open(request["err"], os.O_WRONLY), 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[0:1] = [request["cwd"], *extra]  # as `python -m` in that folder would
        sys.argv = [request["module"], *request["args"]]
        import runpy  # noqa: PLC0415  (only a child runs anything)

        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:  # the run's own failure, reported as a fresh interpreter would
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _exit_code(value: object) -> int:
    """The exit code ``SystemExit(value)`` gives a fresh interpreter."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    serve()
