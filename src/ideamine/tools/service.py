"""Run a workspace's service and measure it over real HTTP: end-to-end tests, latency, load.

``running_service`` starts ``python -m uvicorn app.main:app`` in the workspace's ``backend/``
on a loopback socket of its own (bound here, handed over with ``--fd``) in its own process
group, waits until it answers and always kills the group on the way out, whatever the body
did. The checks talk to it with httpx:

- ``e2e_tests``: create, get, list, delete, unknown id (404) and invalid body (422) for every
  collection of the run's OpenAPI contract → TestReport;
- ``latency`` and ``load_test``: per-endpoint latency, then a short bounded load at a fixed
  concurrency → PerfReport.

The DAST probes live in :mod:`ideamine.tools.dast`, the static accessibility checks of the
served pages in :mod:`ideamine.tools.a11y`. Every report carries the evidence envelope of
docs/evidence.md; a check cut by its time limit says so and reports no numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from ideamine.errors import IdeaMineError
from ideamine.tools.openapi import Collection, collections, sample_body
from ideamine.tools.process import python_command, tool_env, tool_version

__all__ = [
    "PERF_BUDGET",
    "Service",
    "ServiceError",
    "e2e_tests",
    "http_client",
    "latency",
    "load_test",
    "running_service",
    "seed",
    "timed_check",
]

PERF_BUDGET = {"p95_ms": 1000, "rps": 100}
"""SPEC §1's performance budget, recorded in every PerfReport for the guard to judge."""
STARTUP_TIMEOUT = 30.0
STOP_GRACE = 5.0


class ServiceError(IdeaMineError):
    """The workspace's service did not start (``log`` holds the tail of what it printed)."""

    def __init__(self, project: Path, message: str, *, log: str = "") -> None:
        self.project, self.log = project, log
        shown = f"{message}; it printed: {log}" if log else message
        super().__init__(
            f"service in {project}: {shown}",
            hint="run `python -m uvicorn app.main:app` in that folder to see why",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A running service: where it answers and the command that started it."""

    base_url: str
    pid: int
    command: tuple[str, ...]


@contextlib.asynccontextmanager
async def running_service(
    project: Path, *, startup_s: float = STARTUP_TIMEOUT
) -> AsyncIterator[Service]:
    """Start the app in ``project`` (the workspace's ``backend/``) and stop it on exit.

    The app's SQLite file goes to a temporary folder (``APP_DATABASE``), so the workspace's
    tree stays clean and every start begins with an empty database.

    Raises:
        ServiceError: the process exited or did not answer within ``startup_s``.
    """
    with tempfile.TemporaryDirectory(prefix="ideamine-service-") as tmp:
        env = tool_env({"APP_DATABASE": str(Path(tmp) / "app.db"), "PYTHONPATH": str(project)})
        log_path = Path(tmp) / "service.log"
        with log_path.open("wb") as log:
            proc, port, command = await asyncio.to_thread(_spawn, project, env, log)
            try:
                base_url = f"http://127.0.0.1:{port}"
                await _wait_until_up(proc, base_url, startup_s, project, log_path)
                yield Service(base_url=base_url, pid=proc.pid, command=command)
            finally:
                await asyncio.to_thread(_stop, proc)


def _spawn(
    project: Path, env: dict[str, str], log: IO[bytes]
) -> tuple[subprocess.Popen[bytes], int, tuple[str, ...]]:
    """Start uvicorn on a loopback socket bound here and handed over (``--fd``).

    Binding before the start means no other process can take the port in between, and the
    first requests wait in the socket's backlog until the app is ready. uvicorn takes an
    inherited socket for a Unix one and so never sets TCP_NODELAY on the connections it
    accepts; set here, every accepted connection inherits it (Linux), else each response's
    body waits ~40 ms behind its headers (Nagle's algorithm against the client's delayed ACK).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = int(sock.getsockname()[1])
        command = python_command(
            "uvicorn", "app.main:app", "--fd", str(sock.fileno()), "--no-server-header",
            "--no-access-log", "--log-level", "warning",
        )  # fmt: skip
        proc = subprocess.Popen(  # argv list, no shell
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(sock.fileno(),),
        )
    return proc, port, command


async def _wait_until_up(
    proc: subprocess.Popen[bytes], base_url: str, limit: float, project: Path, log: Path
) -> None:
    """Poll until any HTTP answer comes back; fail when the process dies or time runs out."""
    deadline = time.monotonic() + limit
    async with http_client(base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceError(project, f"exited with {proc.returncode}", log=_tail(log))
            with contextlib.suppress(httpx.TransportError):
                await client.get("/")
                return
            await asyncio.sleep(0.1)
    raise ServiceError(project, f"did not answer within {limit:g} s", log=_tail(log))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(log: Path, lines: int = 8) -> str:
    text = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])


# ---------------------------------------------------------------- evidence of in-process checks


async def timed_check(
    check: Callable[[], Awaitable[dict[str, Any]]], service: Service, *, tool: str, limit: float
) -> tuple[dict[str, Any] | None, dict[str, object]]:
    """Run one HTTP check under a time limit: its result (None when cut) and its envelope.

    A check's result may say ``"_failed": True`` (a case failed, a finding was made): the
    envelope's ``exit_code`` is then 1, as a test runner's would be.
    """
    started = time.perf_counter()
    result: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(limit):
            result = await check()
    except TimeoutError:
        result = None
    envelope: dict[str, object] = {
        "tool": tool,
        "version": f"httpx {tool_version('httpx')}",
        "command": ["python" if part == sys.executable else part for part in service.command],
        "exit_code": None if result is None else int(bool(result.pop("_failed", False))),
        "timed_out": result is None,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "executed": True,
        "target": service.base_url,
    }
    return result, envelope


# ---------------------------------------------------------------- end-to-end tests


async def e2e_tests(
    service: Service, openapi: Mapping[str, Any], *, limit_s: float = 120
) -> dict[str, object]:
    """Create, get, list, delete, 404 and 422 cases for every collection of ``openapi``.

    Returns:
        The TestReport ``{"total", "passed", "failed", "pass_rate", "cases": [{"name",
        "method", "path", "status", "expected", "passed"}], "base_url", "evidence"}``; the
        counts are None when the time limit cut the run.
    """
    found = collections(openapi)

    async def run() -> dict[str, Any]:
        cases: list[dict[str, object]] = []
        async with http_client(service.base_url) as client:
            for collection in found:
                cases += await _collection_cases(client, collection, found)
        passed = sum(1 for case in cases if case["passed"])
        failed = len(cases) - passed
        rate = round(passed / len(cases), 4) if cases else None
        report = {"total": len(cases), "passed": passed, "failed": failed, "pass_rate": rate}
        return {**report, "cases": cases, "_failed": failed > 0 or not cases}

    result, envelope = await timed_check(run, service, tool="e2e-http", limit=limit_s)
    empty: dict[str, object] = {
        "total": None,
        "passed": None,
        "failed": None,
        "pass_rate": None,
        "cases": [],
    }
    return {**(result or empty), "base_url": service.base_url, "evidence": envelope}


async def _collection_cases(
    client: httpx.AsyncClient, collection: Collection, found: Sequence[Collection]
) -> list[dict[str, object]]:
    """The cases of one collection, each request made for real."""
    cases: list[dict[str, object]] = []
    noun = collection.noun

    async def case(name: str, method: str, path: str, expected: int, **kw: Any) -> Any:
        try:
            response = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            cases.append(_case(name, method, path, None, expected, f"{type(exc).__name__}"))
            return None
        cases.append(_case(name, method, path, response.status_code, expected))
        return response

    created_id: object = None
    if collection.create_schema is not None:
        body = await _body_with_parents(client, collection, found)
        response = await case(
            f"create {noun}", "POST", collection.path, collection.created, json=body
        )
        if response is not None and response.status_code == collection.created:
            created_id = response.json().get("id")
        if collection.create_schema.get("required"):
            await case(f"create {noun} with an empty body", "POST", collection.path, 422, json={})
    if collection.listable:
        response = await case(f"list {collection.plural}", "GET", collection.path, 200)
        if response is not None and created_id is not None and response.status_code == 200:
            ids = [item.get("id") for item in response.json() if isinstance(item, dict)]
            if created_id not in ids:
                cases[-1].update(passed=False, detail=f"created id {created_id} not listed")
    if collection.item_path is not None:
        unknown = collection.item(999_999_999)
        await case(f"get an unknown {noun}", "GET", unknown, 404)
        if created_id is not None:
            item = collection.item(created_id)
            if collection.gettable:
                await case(f"get {noun} by id", "GET", item, 200)
            if collection.deletable:
                await case(f"delete {noun}", "DELETE", item, collection.deleted)
                await case(f"get {noun} after delete", "GET", item, 404)
    return cases


def _case(
    name: str, method: str, path: str, status: int | None, expected: int, detail: str = ""
) -> dict[str, object]:
    case: dict[str, object] = {
        "name": name,
        "method": method,
        "path": path,
        "status": status,
        "expected": expected,
        "passed": status == expected,
    }
    if detail:
        case["detail"] = detail
    return case


async def _body_with_parents(
    client: httpx.AsyncClient, collection: Collection, found: Sequence[Collection], depth: int = 0
) -> dict[str, object]:
    """A valid body for ``collection``, creating the records its ``*_id`` fields point to."""
    parents: dict[str, object] = {}
    for field_name, parent in collection.parents(found).items():
        if depth > 5 or parent.create_schema is None:
            continue
        body = await _body_with_parents(client, parent, found, depth + 1)
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await client.post(parent.path, json=body)
            parents[field_name] = response.json().get("id")
    return sample_body(collection.create_schema or {}, parents)


# ---------------------------------------------------------------- latency and load


async def seed(service: Service, openapi: Mapping[str, Any]) -> list[str]:
    """Create one record per collection and return the GET paths worth measuring."""
    found = collections(openapi)
    paths = ["/"]
    async with http_client(service.base_url) as client:
        for collection in found:
            if collection.listable:
                paths.append(collection.path)
            if collection.create_schema is None:
                continue
            body = await _body_with_parents(client, collection, found)
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = await client.post(collection.path, json=body)
                created = response.json().get("id") if response.status_code < 300 else None
                if created is not None and collection.gettable:
                    paths.append(collection.item(created))
    return paths


async def latency(
    service: Service, paths: Sequence[str], *, samples: int = 30, limit_s: float = 60
) -> dict[str, object]:
    """p50 and p95 of each GET path, one request at a time (no contention).

    Returns:
        ``{"endpoints": [{"path", "requests", "errors", "p50_ms", "p95_ms"}], "samples",
        "evidence"}``; ``endpoints`` is empty when the time limit cut the run.
    """

    async def run() -> dict[str, Any]:
        endpoints = []
        async with http_client(service.base_url) as client:
            for path in paths:
                times, errors = await _sample(client, path, samples)
                endpoints.append(
                    {"path": path, "requests": samples, "errors": errors, **_percentiles(times)}
                )
        return {"endpoints": endpoints, "_failed": any(e["errors"] for e in endpoints)}

    result, envelope = await timed_check(run, service, tool="latency-http", limit=limit_s)
    return {**(result or {"endpoints": []}), "samples": samples, "evidence": envelope}


async def _sample(client: httpx.AsyncClient, path: str, count: int) -> tuple[list[float], int]:
    times: list[float] = []
    errors = 0
    for _ in range(count):
        ok, elapsed = await _timed_get(client, path)
        times.append(elapsed)
        errors += not ok
    return times, errors


async def _timed_get(client: httpx.AsyncClient, path: str) -> tuple[bool, float]:
    """(answered below 400, milliseconds) for one GET."""
    started = time.perf_counter()
    try:
        response = await client.get(path)
        ok = response.status_code < 400
    except httpx.HTTPError:
        ok = False
    return ok, (time.perf_counter() - started) * 1000


def http_client(base_url: str, timeout: float = 10.0) -> httpx.AsyncClient:
    """An HTTP client of a generated service. Every client shares one TLS context (never used
    on the services' plain HTTP): building one per client loads the CA bundle again, which
    blocks the event loop for tens of milliseconds.

    The load test gives each of its workers a client of its own (one keep-alive connection):
    a pool shared by all of them costs the load generator more CPU than the service spends
    answering.
    """
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=_tls_context())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _percentiles(times: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50 and p95 in milliseconds (None for no samples)."""
    ordered = sorted(times)

    def rank(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(math.ceil(p * len(ordered)) - 1, 0)], 2)

    return {"p50_ms": rank(0.50), "p95_ms": rank(0.95)}


async def load_test(
    service: Service,
    paths: Sequence[str],
    *,
    duration_s: float = 2.5,
    concurrency: int = 16,
    max_requests: int = 50_000,
    limit_s: float = 60,
) -> dict[str, object]:
    """``concurrency`` clients GET ``paths`` round-robin for ``duration_s`` (bounded count).

    Returns:
        The PerfReport's load fields ``{"requests", "errors", "duration_s", "rps", "p50_ms",
        "p95_ms", "concurrency", "paths", "budget", "evidence"}``: numbers are None when the
        time limit cut the run.
    """

    async def run() -> dict[str, Any]:
        times: list[float] = []
        errors = 0
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(http_client(service.base_url))
                for _ in range(concurrency)
            ]
            # Warm-up, untimed: every client opens its keep-alive connection first.
            await asyncio.gather(*(_timed_get(client, paths[0]) for client in clients))
            started = time.perf_counter()
            deadline = started + duration_s

            async def worker(offset: int) -> None:
                nonlocal errors
                client, turn = clients[offset], offset
                while time.perf_counter() < deadline and len(times) < max_requests:
                    ok, elapsed = await _timed_get(client, paths[turn % len(paths)])
                    times.append(elapsed)
                    errors += not ok
                    turn += 1

            async with asyncio.TaskGroup() as group:
                for offset in range(concurrency):
                    group.create_task(worker(offset))
            elapsed = time.perf_counter() - started
        rps = round(len(times) / elapsed, 1) if elapsed > 0 else None
        measured = {"requests": len(times), "errors": errors, "rps": rps}
        return {**measured, "duration_s": round(elapsed, 3), **_percentiles(times)}

    result, envelope = await timed_check(run, service, tool="load-http", limit=limit_s)
    empty = dict.fromkeys(("requests", "errors", "rps", "duration_s", "p50_ms", "p95_ms"))
    fixed = {"concurrency": concurrency, "paths": list(paths), "budget": dict(PERF_BUDGET)}
    return {**(result or empty), **fixed, "evidence": envelope}
