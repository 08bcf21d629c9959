"""Run ``python -m pytest`` and ``python -m coverage`` as forks of a warm interpreter.

A fresh interpreter that runs the generated project's tests spends about half a second
importing pytest, FastAPI and httpx before the first test; the story loop does that once per
story, in sequence, on the run's critical path. So one helper process (the *warm* process,
``python -P -m ideamine.tools.warm``) imports that stack once and then, for each run asked of
it, forks. The child is set up as ``run_tool`` would start a fresh one (its own session and
process group, the clean tool environment, the working folder, ``sys.path`` as ``python -m``
builds it, stdin from /dev/null, stdout and stderr into files), runs the module as
``__main__`` and leaves as a fresh interpreter would (non-daemon threads joined, ``atexit``
functions run). The project's own modules are imported by the child only, after the fork, so
every run sees the project as it is then; nothing a run does reaches the next one.

What a fork cannot be told, it is not asked to do; such a run goes to a fresh interpreter
(``run_tool``), as does every run once the warm process cannot start, stalls or dies:

- a project with a top-level module named like one already imported (its own ``httpx.py``)
  would get the warm copy;
- ``PYTHON*`` start-up variables (``PYTHONHASHSEED``, ``PYTHONWARNINGS``…) are read when an
  interpreter starts; only ``PYTHONPATH`` (applied to ``sys.path``) and the two that
  ``tool_env`` sets are allowed;
- pytest rewrites the asserts of the plugins it loads, which it cannot do to a module already
  imported: a run must disable plugin autoloading (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``, as
  every IdeaMine test run does) and name its plugins with ``-p``.

The runs of one warm process share its hash seed (random per warm process, as each fresh
interpreter's is). Protocol, one JSON object per line: the warm process sends ``{"ready":
[top-level modules]}``, then for each request ``{"id", "cwd", "module", "args", "env", "out",
"err", "started"}`` sends ``{"id", "pid"}`` once forked and ``{"id", "code"}`` once reaped
(``-N`` for a child killed by signal N). The child creates the ``started`` file once set up;
a run that ends without it failed before its module ran, and goes fresh. The warm process
exits when its stdin closes (its client ended, killed or not), killing the process groups of
the runs still going.
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

PRELOAD = ("pytest", "coverage", "fastapi.testclient", "httpx")
"""What the warm process imports before its first fork (each only if installed)."""

START_TIMEOUT_S = 60.0
"""How long the warm process may take to start, and to fork a run (a loaded machine)."""

ALLOWED_PYTHON_VARIABLES = frozenset({"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING"})


class WarmPython:
    """A client of one warm process, started on first use; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # starting, writing requests, the message slots
        self._changed = threading.Condition(self._lock)
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._loaded: frozenset[str] = frozenset()
        self._broken = ""  # why the warm process cannot be used (then every run goes fresh)
        self._messages: dict[int, dict[str, Any]] = {}
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
        environment = tool_env(env)
        if module not in MODULES or not cwd.is_dir() or not _forkable(environment):
            return None
        cwd = cwd.resolve()  # the fork starts in the warm process's folder
        if not self._start() or _shadows(cwd, environment.get("PYTHONPATH", ""), self._loaded):
            return None
        with tempfile.TemporaryDirectory(prefix="ideamine-warm-") as folder:
            files = {name: Path(folder) / name for name in ("out", "err", "started")}
            files["out"].touch()
            files["err"].touch()
            request = {"cwd": str(cwd), "module": module, "args": list(args), "env": environment}
            started = time.perf_counter()
            ended = self._fork_and_wait(
                {**request, **{name: str(path) for name, path in files.items()}},
                deadline=time.monotonic() + timeout,
            )
            if ended is None or not (ended[1] or files["started"].exists()):
                return None  # not forked, outcome unknown, or failed before its module ran
            code, timed_out = ended
            with files["out"].open("rb") as out, files["err"].open("rb") as err:
                return ToolRun(
                    tool=tool,
                    version=version,
                    command=python_command(module, *args),
                    exit_code=code,
                    timed_out=timed_out,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    stdout=read_capped(out, stdout_limit),
                    stderr=read_capped(err, OUTPUT_LIMIT),
                )

    def start_soon(self) -> None:
        """Start the warm process on a thread of its own, if it is not running: for a caller
        whose test runs come after other work, which its start then overlaps."""
        if self._process is None and not self._broken:
            threading.Thread(target=self._start, name="warm python start", daemon=True).start()

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
        if reader is not None:
            reader.join()  # it reaps the process and closes its pipes

    # -- the warm process -----------------------------------------------------------------

    def _start(self) -> bool:
        with self._lock:
            if self._process is not None or self._broken:
                return self._process is not None
            try:
                process = subprocess.Popen(
                    # -P: nothing from the working folder on sys.path while it imports
                    [sys.executable, "-P", "-m", "ideamine.tools.warm"],
                    cwd=os.sep,
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
        """Hand each message of the warm process to the run waiting for it; at its end (or
        a failure here), mark it gone, wake every waiting run, reap it."""
        assert process.stdout is not None
        try:
            for line in process.stdout:
                try:
                    message = json.loads(line)
                    number = int(message["id"])
                except (ValueError, KeyError, TypeError):
                    continue  # not a message of ours (nothing else writes there)
                with self._lock:
                    self._messages.setdefault(number, {}).update(message)
                    self._changed.notify_all()
        finally:
            with self._lock:
                if self._process is process:
                    self._process = None
                    self._broken = self._broken or "the warm process ended"
                self._changed.notify_all()
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
            process.wait()

    def _give_up(self, process: subprocess.Popen[bytes], reason: str) -> None:
        """Stop using ``process`` (lock held); its reader thread reaps it."""
        if self._process is process:
            self._process, self._broken = None, reason
            kill_group(process.pid)
            self._changed.notify_all()

    def _fork_and_wait(
        self, request: Mapping[str, object], *, deadline: float
    ) -> tuple[int | None, bool] | None:
        """(exit code, timed out) of one forked run; None when it was not forked or its
        outcome is unknown (the warm process died under it)."""
        with self._lock:
            process = self._process
            if process is None:
                return None
            self._next_id += 1
            number = self._next_id
            pid = code = None
            timed_out = False
            try:
                try:
                    assert process.stdin is not None
                    process.stdin.write(json.dumps({**request, "id": number}).encode() + b"\n")
                    process.stdin.flush()
                except OSError:
                    self._give_up(process, "the warm process stopped reading")
                    return None
                forked_by = min(deadline, time.monotonic() + START_TIMEOUT_S)
                pid = self._wait_for(number, "pid", forked_by)
                if pid is None:
                    self._give_up(process, "the warm process did not fork a run in time")
                    return None
                self.runs += 1
                code = self._wait_for(number, "code", deadline)
                timed_out = code is None and self._process is process
                if timed_out:
                    kill_group(pid)
                    self._wait_for(number, "code", time.monotonic() + START_TIMEOUT_S)
            finally:  # even when interrupted: nothing of the run is left running
                self._messages.pop(number, None)
                if pid is not None:
                    kill_group(pid)
        if timed_out:
            return None, True
        return None if code is None else (int(code), False)

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


def _forkable(environment: Mapping[str, str]) -> bool:
    """Whether a fork can give a run with ``environment`` what a fresh interpreter would."""
    if not environment.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return not any(
        name.startswith("PYTHON") and name not in ALLOWED_PYTHON_VARIABLES for name in environment
    )


def _shadows(cwd: Path, pythonpath: str, loaded: frozenset[str]) -> bool:
    """Whether the run's import path holds a module or package of the same top-level name as
    one the warm process has imported (the run would get the warm copy, not its own): in its
    folder, on its ``PYTHONPATH``, or in a test folder of it that pytest puts on
    ``sys.path``."""
    folders = [cwd, *(Path(p) for p in pythonpath.split(os.pathsep) if p)]
    with contextlib.suppress(OSError):
        folders += [sub for sub in cwd.iterdir() if sub.is_dir() and _holds_tests(sub)]
    for folder in folders:
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                if _module_name(entry) in loaded:
                    return True
    return False


def _holds_tests(folder: Path) -> bool:
    return (folder / "conftest.py").is_file() or any(folder.glob("test_*.py"))


def _module_name(entry: Path) -> str | None:
    """The top-level name ``entry`` can be imported as, if it is a module or a regular
    package (a folder without ``__init__.py`` never hides a regular package found later)."""
    if entry.suffix in {".py", ".so"}:
        return entry.name.split(".", 1)[0]
    if entry.is_dir() and (entry / "__init__.py").is_file():
        return entry.name
    return None


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
    wake = os.pipe()  # SIGCHLD writes here, so select wakes when a run ends
    for fd in wake:
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake[1])
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    _send({"ready": sorted({name.partition(".")[0] for name in sys.modules})})
    children: dict[int, int] = {}  # pid → request id
    pending = b""
    try:
        while True:
            readable, _, _ = select.select([0, wake[0]], [], [])
            if wake[0] in readable:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake[0], 4096):
                        pass
            if 0 in readable:
                chunk = os.read(0, 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    _fork(json.loads(line), children, wake)
            _reap(children)
    finally:
        for pid in children:
            kill_group(pid)


def _send(message: Mapping[str, object]) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _fork(request: Mapping[str, Any], children: dict[int, int], wake: tuple[int, int]) -> None:
    pid = os.fork()
    if pid == 0:
        _child(request, wake)
    children[pid] = request["id"]
    _send({"id": request["id"], "pid": pid})


def _reap(children: dict[int, int]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        number = children.pop(pid, None)
        if number is not None:
            _send({"id": number, "code": os.waitstatus_to_exitcode(status)})


def _child(request: Mapping[str, Any], wake: tuple[int, int]) -> NoReturn:
    """Become the process ``python -m MODULE ARGS`` would start, run it, and leave as it
    would. A failure before the module runs exits without the ``started`` file."""
    try:
        signal.set_wakeup_fd(-1)
        for fd in wake:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        atexit._clear()  # the warm process's own; the run registers its own
        os.setsid()
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["out"], os.O_WRONLY),
            (2, request["err"], os.O_WRONLY),
        ):
            opened = os.open(path, flags)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[0:0] = [request["cwd"], *extra]  # as `python -m` in that folder builds it
        sys.argv = [request["module"], *request["args"]]
        Path(request["started"]).touch()
    except BaseException:  # no run yet: the client runs it fresh
        os._exit(1)
    os._exit(_run(request["module"]))


def _run(module: str) -> int:
    """Run ``module`` as ``__main__``, then what a fresh interpreter does on its way out;
    its exit code (an uncaught KeyboardInterrupt ends it by SIGINT, as it would end one)."""
    import runpy  # noqa: PLC0415  (only a child runs anything)
    import traceback  # noqa: PLC0415

    interrupted = False
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code, interrupted = 1, True
    except BaseException:  # the run's own failure, reported as a fresh run's would be
        traceback.print_exc()
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # joins the non-daemon threads
    with contextlib.suppress(BaseException):
        if shutdown is not None:
            shutdown()
    atexit._run_exitfuncs()
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


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
