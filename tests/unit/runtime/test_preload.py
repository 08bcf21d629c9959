"""Preloading: jsonschema, which checks agents' outputs, and the gate judge and verdict
modules are imported on a thread once a run's first agents are running, not before they
start."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.runtime.preload import preload

ROOT = Path(__file__).resolve().parents[3]

# A worker or `ideamine resume`: the pinned configuration, then the runner, in a fresh
# process that notes which thread imports each module preloaded.
DRIVE = """
import asyncio, importlib.abc, json, sys, threading
from ideamine import service
from ideamine.config.loader import load_pinned
from ideamine.engine.states import RunStatus
from ideamine.runtime.runner import Runner

importers = {}
WATCHED = ("jsonschema", "ideamine.runtime.judge", "ideamine.runtime.verdict")

class Witness(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in WATCHED:
            importers[name] = threading.current_thread().name
        return None  # the usual finders import it

sys.meta_path.insert(0, Witness())

async def main(store_path, run_id):
    store = await service.open_store(store_path, create=False)
    try:
        pipeline = load_pinned(await store.run_config(run_id))
        done = await Runner(store, pipeline, concurrency=8).drive(run_id)
        assert done.status is RunStatus.COMPLETED, (done.status, done.error)
    finally:
        await store.close()
    assert "rfc3987_syntax" not in sys.modules, "jsonschema was imported with its slow plug-in"
    print(json.dumps(importers))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _created_run(tmp_path: Path) -> tuple[str, str]:
    """A created run of two phases of two agents: (store path, run id)."""
    config = write_callable_pipeline(
        tmp_path / "config", {"first": [], "second": ["first"]}, agents_per_phase=2
    )
    pipeline = load_pipeline(config)
    store_path = str(tmp_path / "ideamine.db")

    async def create() -> str:
        store = await service.open_store(store_path)
        try:
            run = await service.create_run(
                store,
                pipeline,
                "a tool that tracks preloaded modules",
                constraints={},
                source="test",
                config_dir=config,
            )
        finally:
            await store.close()
        return run.id

    return store_path, asyncio.run(create())


def test_later_modules_are_imported_on_the_preload_thread_once_agents_run(
    tmp_path: Path,
) -> None:
    """Nothing a worker or `resume` does before its first agents start imports jsonschema
    (their outputs are checked with it), the gate judge or the verdict (the first gate
    needs them), so the first agents start without them."""
    store_path, run_id = _created_run(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", DRIVE, store_path, run_id],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "IDEAMINE_TEST_SLEEP": "0.3"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "jsonschema": "ideamine-preload",
        "ideamine.runtime.judge": "ideamine-preload",
        "ideamine.runtime.verdict": "ideamine-preload",
    }


def test_preload_imports_once_on_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert preload(["json"]) is None  # imported already: nothing to do
    name = f"preload_probe_{uuid.uuid4().hex}"  # new to this process, however often it runs
    (tmp_path / f"{name}.py").write_text('"""Imported by the preload test."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    thread = preload([name])
    assert thread is not None and thread.name == "ideamine-preload"
    thread.join(timeout=30)
    assert name in sys.modules
    assert preload([name]) is None


def test_a_module_that_fails_to_preload_fails_where_it_is_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"no_such_module_to_preload_{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG, logger="ideamine.runtime.preload"):
        thread = preload([name])
        assert thread is not None
        thread.join(timeout=30)
    assert f"preloading {name} failed" in caplog.text
    assert preload([name]) is None  # tried once per process
    with pytest.raises(ModuleNotFoundError):
        __import__(name)
