"""The API while runs progress: server-sent events of a run that another process drives, and
pause, resume and phase retries of runs the server drives. (Metrics and ``phase_metrics``
rows that change as phases run, SPEC §10 criterion 7, are an acceptance test:
``tests/acceptance/test_live_metrics.py``.)"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.api.serving import cli_env, serving, start_cli, stop, wait_until
from tests.support.configs import SPEC_DAG, write_callable_pipeline

from ideamine.cli.serve import STOP_SECONDS

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
SLOW = cli_env({"IDEAMINE_TEST_SLEEP": "0.15"})


@pytest.fixture
def slow_config(tmp_path: Path) -> Path:
    """The SPEC's 13-phase DAG with two sleeping agents a phase (about 6 s a run)."""
    return write_callable_pipeline(tmp_path / "config", SPEC_DAG, agents_per_phase=2)


def _first_run(client: httpx.Client) -> str | None:
    runs = client.get("/runs").json()
    return str(runs[0]["id"]) if runs else None


def test_sse_streams_live_events_of_a_run_another_process_drives(
    tmp_path: Path, slow_config: Path
) -> None:
    with serving(tmp_path) as server, server.client() as client:
        cli = start_cli("run", "-q", "--config", str(slow_config), IDEA, cwd=tmp_path, env=SLOW)
        try:
            wait_until(lambda: _first_run(client) is not None, timeout=30, what="the CLI's run")
            run_id = _first_run(client)
            received: list[tuple[str, bool]] = []  # (type, CLI still running)
            with client.stream("GET", f"/runs/{run_id}/events/stream") as reply:
                event = None
                for line in reply.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event:
                        received.append((event, cli.poll() is None))
                        if event == "end":
                            break
            assert cli.wait(timeout=60) == 0
        finally:
            stop(cli)
    types = [t for t, _ in received]
    assert types[0] == "run.created" and types[-2:] == ["run.completed", "end"]
    assert types.count("phase.completed") == 13
    live = [t for t, running in received if running and t == "phase.completed"]
    assert len(live) >= 5, "most phases were streamed while the other process still ran"
    assert types.index("phase.started") < types.index("phase.completed")


def test_sigterm_stops_the_server_while_an_event_stream_of_a_live_run_is_open(
    tmp_path: Path, slow_config: Path
) -> None:
    """A dashboard tab streaming a live run keeps its connection open for as long as the run
    lives; the server must still stop soon after SIGTERM (it waited for the run to end), end
    the stream itself rather than cut it (which printed a traceback), and say it stopped."""
    crawl = cli_env({"IDEAMINE_TEST_SLEEP": "3"})  # a phase takes 3–6 s: the run lives ~1 min
    with serving(tmp_path) as server, server.client() as client:
        cli = start_cli("run", "-q", "--config", str(slow_config), IDEA, cwd=tmp_path, env=crawl)
        try:
            wait_until(lambda: _first_run(client) is not None, timeout=30, what="the CLI's run")
            lines: list[str] = []

            def read() -> None:  # as a browser tab does, until the server goes away
                path = f"/runs/{_first_run(client)}/events/stream"
                with contextlib.suppress(httpx.HTTPError), client.stream("GET", path) as reply:
                    lines.extend(reply.iter_lines())

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            wait_until(
                lambda: any(line.startswith("event: ") for line in lines),
                timeout=30,
                what="an event",
            )
            signalled = time.monotonic()
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=120)
            stopped = time.monotonic() - signalled
            assert cli.poll() is None, "the run ended before the server was stopped"
        finally:
            stop(cli)
        err = stop(server.process)
    # uvicorn raises the signal again once it has shut down, so a supervisor sees it
    assert server.process.returncode == -signal.SIGTERM, err
    assert stopped < STOP_SECONDS, f"the server took {stopped:.1f} s to stop"
    assert "Traceback" not in err and "ERROR" not in err, err
    assert f"server on 127.0.0.1:{server.url.rsplit(':', 1)[1]} stopped" in err
    assert not reader.is_alive(), "the event stream was still open"


def test_pause_and_resume_a_run_the_server_drives(tmp_path: Path, slow_config: Path) -> None:
    args = ("--config", str(slow_config))
    with serving(tmp_path, *args, env=SLOW) as server, server.client() as client:
        run_id = client.post("/runs", json={"idea": IDEA}).json()["id"]
        passed = lambda: sum(p["status"] == "passed" for p in _phases(client, run_id))  # noqa: E731
        wait_until(lambda: passed() >= 2, timeout=30, what="two phases to pass")
        paused = client.post(f"/runs/{run_id}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert client.post(f"/runs/{run_id}/pause").status_code == 409
        time.sleep(1.5)  # in-flight tasks finish; nothing new starts
        held = passed()
        time.sleep(1.0)
        assert passed() == held < 13
        resumed = client.post(f"/runs/{run_id}/resume")
        assert resumed.status_code == 202 and resumed.json()["status"] == "running"
        wait_until(
            lambda: client.get(f"/runs/{run_id}").json()["status"] == "completed",
            timeout=60,
            what="the resumed run to complete",
            every=0.2,
        )
        types = [
            e["type"] for e in client.get(f"/runs/{run_id}/events?limit=5000").json()["events"]
        ]
        assert "run.paused" in types and "run.resumed" in types


def test_retry_a_failed_phase(tmp_path: Path) -> None:
    config = write_callable_pipeline(
        tmp_path / "config",
        {"intake": []},
        agents_per_phase=1,
        function="tests.support.agents:wrong_shape",
    )
    with serving(tmp_path, "--config", str(config)) as server, server.client() as client:
        run_id = client.post("/runs", json={"idea": IDEA}).json()["id"]
        status = lambda: client.get(f"/runs/{run_id}").json()["status"]  # noqa: E731
        wait_until(lambda: status() == "failed", timeout=60, what="the run to fail")
        retried = client.post(f"/runs/{run_id}/phases/intake/retry")
        assert retried.status_code == 202 and retried.json()["attempt"] == 2
        wait_until(lambda: status() == "failed", timeout=60, what="the retry to fail again")
        events = client.get(f"/runs/{run_id}/events?limit=5000").json()["events"]
        starts = [e["payload"]["attempt"] for e in events if e["type"] == "phase.started"]
        assert starts == [1, 2]
        assert any(e["type"] == "task.failed" for e in events)


def _phases(client: httpx.Client, run_id: str) -> list[dict[str, object]]:
    phases = client.get(f"/runs/{run_id}").json()["phases"]
    assert isinstance(phases, list)
    return phases
