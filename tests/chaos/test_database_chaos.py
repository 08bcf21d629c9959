"""Chaos between workers and PostgreSQL: the workers reach the database only through a real
TCP proxy (``tests/support/tcp_proxy.py``) that breaks the network mid-run.

- The database refusing connections: the proxy stops listening (connection refused) and
  resets every open connection for a few seconds, twice.
- A network cut: the proxy stops passing bytes both ways for a few seconds, holding every
  connection open (new ones too), then resets them all; then a second cut into which the
  workers must connect afresh, ending with those connection attempts never answered.

Each test ends with the run complete, no worker given up, every task output recorded once, no
event recorded twice, the ledger chain verifying, and artifacts equal to an undisturbed run's.
The test itself reaches the store directly, not through the proxy. Fault lengths and gaps
come from a seeded ``random.Random``, so a failure reproduces.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.acceptance.conftest import artifact_hashes, cli_env, ideamine, only_run_id, wait_for
from tests.acceptance.test_workers import FAST_BEATS, Fleet, events, status, submit
from tests.support.configs import SPEC_DAG, write_callable_pipeline
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

SEED = 20261127
IDEA = "a tool lending library"
FAULT_SECONDS = (3.0, 5.0)  # how long each fault lasts (uniform)
GAP_SECONDS = (1.0, 3.0)  # healthy time between faults, once the workers are back
SLEEP = "0.3"  # seconds an agent works: a run outlasts every fault on a loaded machine


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The chaos tests' pipeline and the artifacts of an undisturbed run of it (SQLite)."""
    root = tmp_path_factory.mktemp("database-chaos")
    config = write_callable_pipeline(
        root / "cfg",
        SPEC_DAG,
        agents_per_phase=3,
        heartbeat=FAST_BEATS,
        parallelism={"story-loop": "iterative"},
    )
    folder = root / "calm"
    folder.mkdir()
    env = cli_env({"IDEAMINE_TEST_SLEEP": SLEEP})
    done = ideamine("run", IDEA, "--config", str(config), "-q", cwd=folder, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return config, artifact_hashes(folder, only_run_id(folder))


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(pg_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as running:
        yield running


@pytest.fixture
def crews(pg_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[tuple[Fleet, Fleet]]:
    """Workers that reach the database through the proxy, and a crew of the same store
    reached directly, for the test's own commands (submit, status, events, verify)."""
    env = cli_env({"IDEAMINE_TEST_SLEEP": SLEEP})
    workers = Fleet(proxy.url(pg_url), tmp_path, env)
    direct = Fleet(pg_url, tmp_path, env)
    yield workers, direct
    workers.stop_all()


def _start(workers: Fleet, direct: Fleet, config: Path) -> str:
    """Submit the run, start two workers, and wait until the run is a few phases in."""
    run_id = submit(direct, config, IDEA)
    for name in ("w1", "w2"):
        workers.add(name)
    wait_for(
        lambda: any(e["phase"] == "critique" for e in events(direct, run_id)),
        timeout=90,
        what="the run to reach critique",
    )
    return run_id


Fault = tuple[Callable[[], int], Callable[[], object]]  # begin (→ connections caught), end


def _faults(proxy: TcpProxy, direct: Fleet, run_id: str, rounds: list[Fault]) -> list[int]:
    """For each round: begin a fault, check that it holds the run mid-way, keep it for a
    seeded while, end it, wait for the workers to connect again, then a seeded healthy gap.
    Returns how many connections each fault caught."""
    chance = random.Random(SEED)
    caught = []
    for begin, end in rounds:
        until = time.monotonic() + chance.uniform(*FAULT_SECONDS)
        caught.append(begin())
        # the fault lands mid-run: the run cannot finish while its workers are cut off
        assert status(direct, run_id) != "completed"
        time.sleep(max(0.0, until - time.monotonic()))
        before = proxy.accepted
        end()
        _wait_for_reconnection(proxy, before)
        time.sleep(chance.uniform(*GAP_SECONDS))
    return caught


def _wait_for_reconnection(proxy: TcpProxy, before: int) -> None:
    wait_for(lambda: proxy.accepted > before, timeout=60, what="the workers to reconnect")


def _finish(workers: Fleet, direct: Fleet, run_id: str, expected: dict[str, str]) -> str:
    """Wait for completion, check the run is whole, stop the workers; returns their stderr."""
    wait_for(
        lambda: status(direct, run_id) == "completed",
        timeout=240,
        what="the run to complete after the faults",
    )
    gave_up = workers.exited()  # no worker gave up during the faults; if one did, say why
    assert gave_up == {}, "\n".join(f"--- {name}:\n{err[-3000:]}" for name, err in gave_up.items())
    ledger = events(direct, run_id)
    succeeded = Counter(e["task_id"] for e in ledger if e["type"] == "task.succeeded")
    assert succeeded and set(succeeded.values()) == {1}  # no task output recorded twice
    assert len({e["hash"] for e in ledger}) == len(ledger)  # no event recorded twice
    verified = ideamine("verify", run_id, "--store", direct.store, cwd=direct.cwd, env=direct.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert artifact_hashes(direct.cwd, run_id, store=direct.store) == expected  # nothing lost
    logs = []
    for process in workers.workers.values():
        process.send_signal(signal.SIGTERM)
        logs.append(process.communicate(timeout=60)[1])
        assert process.returncode == 0, logs[-1]
    return "\n".join(logs)


def test_database_refusing_connections_for_seconds(
    reference: tuple[Path, dict[str, str]], proxy: TcpProxy, crews: tuple[Fleet, Fleet]
) -> None:
    """The proxy refuses connections and resets the open ones for 3-5 s, twice; the workers
    retry with backoff and the run completes intact."""
    config, expected = reference
    workers, direct = crews
    run_id = _start(workers, direct, config)
    caught = _faults(proxy, direct, run_id, [(proxy.refuse, proxy.accept)] * 2)
    assert all(caught), caught  # each outage cut live connections
    logs = _finish(workers, direct, run_id, expected)
    assert "Connection refused" in logs  # the workers tried to connect during the outages


def test_network_cut_between_workers_and_database(
    reference: tuple[Path, dict[str, str]], proxy: TcpProxy, crews: tuple[Fleet, Fleet]
) -> None:
    """The proxy passes no bytes for 3-5 s (connections held open, new ones accepted and
    held), then resets every connection. Then a cut that resets the open connections as it
    begins, so the workers connect into it, and that ends leaving those connection attempts
    unanswered for good (a middlebox that accepted them and lost its upstream): connecting
    must give up and try again rather than wedge the worker. The run completes intact."""
    config, expected = reference
    workers, direct = crews
    run_id = _start(workers, direct, config)
    swallowed, spared = proxy.swallowed, []

    def cut_resetting_open() -> int:
        return proxy.blackhole(reset_open=True)

    def heal_sparing_held() -> None:
        spared.append(proxy.held)
        proxy.reset(spare_held=True)

    rounds: list[Fault] = [
        (proxy.blackhole, proxy.reset),
        (cut_resetting_open, heal_sparing_held),
    ]
    caught = _faults(proxy, direct, run_id, rounds)
    assert all(caught), caught  # each cut caught live connections
    assert proxy.swallowed > swallowed  # the workers kept talking into the void
    assert spared and all(spared), spared  # the workers connected into the second cut
    _finish(workers, direct, run_id, expected)
