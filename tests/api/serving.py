"""Start the real ``ideamine serve`` (uvicorn) in a subprocess on a free loopback port, and
run the real CLI beside it against the same store."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDEAMINE_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    store: Path | str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextlib.contextmanager
def serving(
    cwd: Path,
    *args: str,
    store: Path | str | None = None,
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    healthy: bool = True,
) -> Iterator[Server]:
    """``ideamine serve --port FREE ARGS`` until the block ends (then SIGTERM, reaped)."""
    port = free_port()
    store = store if store is not None else cwd / "ideamine.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ideamine",
            "serve",
            "--store",
            str(store),
            "--host",
            host,
            "--port",
            str(port),
            *args,
        ],
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "127.0.0.1") else host
    server = Server(url=f"http://{shown}:{port}", process=process, store=store)
    try:
        _wait_listening(server, healthy=healthy)
        yield server
    finally:
        stop(process)


def _wait_listening(server: Server, *, healthy: bool) -> None:
    deadline = time.monotonic() + 90  # a busy 2-core machine starts it slowly
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            out, err = server.process.communicate()
            pytest.fail(f"ideamine serve exited {server.process.returncode}: {err}{out}")
        with contextlib.suppress(httpx.HTTPError):
            status = httpx.get(f"{server.url}/health", timeout=2).status_code
            if status == 200 or not healthy:
                return
        time.sleep(0.1)
    pytest.fail("ideamine serve did not answer /health within 90 s")


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the process group (SIGKILL after 20 s), reap it; returns its stderr."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate(timeout=10)
    return err or ""


def ideamine(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ideamine", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=600,  # the shipped pipeline runs real tools: minutes on a loaded machine
        check=False,
    )


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m ideamine ARGS`` in the background (its own process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ideamine", *args],
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(condition: object, *, timeout: float, what: str, every: float = 0.05) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
