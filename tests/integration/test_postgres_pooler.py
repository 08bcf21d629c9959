"""The PostgreSQL store behind PgBouncer in transaction mode, with its default settings (a
real ``pgbouncer`` process, from Debian's package; ``.ci/run`` installs it): each transaction
may run on another server session, so the store sends no startup parameter the pooler
refuses, prepares no server-side statement, and notes no session to end after a lost
connection (``stores.lostcommit``), which could be another client's by then."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.records import new_run

from ideamine.stores.postgres import PostgresStore
from ideamine.stores.records import EventDraft

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
CONFIG = """[databases]
* = host={host} port={port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 2
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
unix_socket_dir =
"""


@pytest.fixture
def pooled_url(pg_url: str) -> Iterator[str]:
    """``pg_url``'s database reached through a PgBouncer of its own (transaction mode)."""
    if not Path(PGBOUNCER).exists():
        reason = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    target = urlsplit(pg_url)
    # under /tmp, not pytest's private folder: run as root, pgbouncer becomes `postgres`
    folder = Path(tempfile.mkdtemp(prefix="ideamine-pgbouncer-"))
    folder.chmod(0o755)
    listen = _free_port()
    (folder / "pgbouncer.ini").write_text(
        CONFIG.format(host=target.hostname, port=target.port or 5432, listen=listen, folder=folder)
    )
    (folder / "users.txt").write_text(f'"{target.username or "postgres"}" ""\n')
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # it will not run as root
        command[1:1] = ["-u", "postgres"]
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, "postgres")
    with (folder / "stderr.txt").open("wb") as errors:
        bouncer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        _wait_for(listen, bouncer, folder)
        yield pg_url.replace(target.netloc, f"{target.username or 'postgres'}@127.0.0.1:{listen}")
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, bouncer: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if bouncer.poll() is not None:
            said = [
                (folder / name).read_text()
                for name in ("stderr.txt", "pgbouncer.log")
                if (folder / name).exists()
            ]
            raise RuntimeError(f"pgbouncer exited: {' '.join(said)}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen within 10 s")


def test_the_store_works_through_pgbouncer_in_transaction_mode(pooled_url: str) -> None:
    """Queries repeated past psycopg's prepare threshold (five runs) on connections whose
    transactions land on different server sessions; no session is noted, so none can be
    ended for the wrong client."""

    async def body() -> tuple[int, int]:
        store = PostgresStore(pooled_url, retry_seconds=10)
        try:
            await store.migrate()
            await store.create_run(new_run())
            for n in range(12):
                await store.append_event("run-1", EventDraft(type="run.progress", payload={"n": n}))
                assert (await store.get_run("run-1")).id == "run-1"
            events = await store.events("run-1")
            return len([e for e in events if e.type == "run.progress"]), len(store._sessions)
        finally:
            await store.close()

    appended, noted = asyncio.run(body())
    assert appended == 12
    assert noted == 0


def test_a_direct_connection_notes_its_session(pg_url: str) -> None:
    """The other side: connected straight to the server, each pooled connection's session
    is noted (to be ended should that connection be lost inside a transaction)."""

    async def body() -> int:
        store = PostgresStore(pg_url)
        try:
            await store.create_run(new_run())
            return len(store._sessions)
        finally:
            await store.close()

    assert asyncio.run(body()) >= 1
