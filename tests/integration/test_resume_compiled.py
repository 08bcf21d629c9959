"""``ideamine resume`` drives a run whose configuration folder still reads as pinned from the
compiled form stored with it, without parsing YAML or importing the validation models; a
folder that changed (a text, or an optional file now present) or a run pinned without a
compiled form goes through the full load, as before. Real SQLite stores and real
``ideamine`` processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.configs import write_callable_pipeline

from ideamine import service
from ideamine.config.compiled import decode
from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.engine.states import RunStatus

ROOT = Path(__file__).resolve().parents[2]
IDEA = "a shop for the farmers of one valley"

# `ideamine resume` in this process, then which of the YAML and validation modules it loaded
PROBE = """
import runpy, sys
sys.argv = ["ideamine", *sys.argv[1:]]
try:
    runpy.run_module("ideamine", run_name="__main__")
finally:
    loaded = sorted(m for m in ("pydantic", "yaml", "ideamine.config.loader") if m in sys.modules)
    print("loaded:", ",".join(loaded) or "none", file=sys.stderr)
"""


@pytest.fixture
def pinned(tmp_path: Path) -> tuple[Path, Path, str]:
    """A run created on a two-phase folder (an agent each) without the second phase's
    schema file: (folder, store file, run id)."""
    folder = write_callable_pipeline(
        tmp_path / "config", {"intake": [], "ideation": ["intake"]}, agents_per_phase=1
    )
    (folder / "schemas" / "IdeationResult.yaml").unlink()
    db = tmp_path / "ideamine.db"

    async def create() -> str:
        store = await service.open_store(str(db))
        try:
            run = await service.create_run(
                store,
                load_pipeline(folder),
                IDEA,
                constraints={},
                source="test",
                config_dir=folder,
            )
        finally:
            await store.close()
        return run.id

    return folder, db, asyncio.run(create())


def _resume(db: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _ideamine("resume", run_id, "--store", str(db), "-q", *extra)


def _ideamine(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDEAMINE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _status(db: Path, run_id: str) -> str:
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return str(row[0])


def test_an_unchanged_run_resumes_from_its_compiled_form(pinned: tuple[Path, Path, str]) -> None:
    _, db, run_id = pinned
    done = _resume(db, run_id)

    assert done.returncode == 0, done.stderr
    assert "loaded: none" in done.stderr
    assert _status(db, run_id) == RunStatus.COMPLETED


def test_reading_a_run_builds_its_pipeline_from_the_compiled_form(
    pinned: tuple[Path, Path, str],
) -> None:
    """``ideamine status`` orders the phases by the run's pipeline, the same way."""
    _, db, run_id = pinned
    shown = _ideamine("status", run_id, "--store", str(db))

    assert shown.returncode == 0, shown.stderr
    assert "loaded: none" in shown.stderr
    assert shown.stdout.index("intake") < shown.stdout.index("ideation")


def test_a_run_pinned_without_a_compiled_form_resumes_from_its_texts(
    pinned: tuple[Path, Path, str],
) -> None:
    """A run pinned before the compiled form existed (the column is NULL)."""
    _, db, run_id = pinned
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE run_configs SET compiled = NULL")
    done = _resume(db, run_id)

    assert done.returncode == 0, done.stderr
    assert "loaded: ideamine.config.loader,pydantic,yaml" in done.stderr
    assert _status(db, run_id) == RunStatus.COMPLETED


@pytest.mark.parametrize("damage", ["X'00010203'", "'text written by hand'"])
def test_a_damaged_compiled_form_is_reported_and_the_texts_are_loaded(
    pinned: tuple[Path, Path, str], damage: str
) -> None:
    _, db, run_id = pinned
    with sqlite3.connect(db) as connection:
        connection.execute(f"UPDATE run_configs SET compiled = {damage}")
    done = _resume(db, run_id)

    assert done.returncode == 0, done.stderr
    assert f"run {run_id}: the compiled form of its configuration is damaged" in done.stderr
    assert _status(db, run_id) == RunStatus.COMPLETED


def test_an_optional_file_added_since_is_a_change_of_configuration(
    pinned: tuple[Path, Path, str],
) -> None:
    """The schema file the run was pinned without now exists: the manifest changed, so
    resume refuses as for any edit, and ``--migrate`` adopts it."""
    folder, db, run_id = pinned
    (folder / "schemas" / "IdeationResult.yaml").write_text("type: object\n")

    refused = _resume(db, run_id)
    assert refused.returncode == 2, refused.stderr
    assert "schemas/IdeationResult.yaml added" in refused.stderr
    assert "Traceback" not in refused.stderr

    migrated = _resume(db, run_id, "--migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert _status(db, run_id) == RunStatus.COMPLETED
    # the re-pin stored the new configuration's compiled form with its texts
    current = load_pipeline(folder)
    with sqlite3.connect(db) as connection:
        (packed,) = connection.execute("SELECT compiled FROM run_configs").fetchone()
    assert decode(packed, current.files) == current


def test_resume_drives_the_pipeline_a_full_load_of_the_folder_gives(
    pinned: tuple[Path, Path, str],
) -> None:
    folder, db, run_id = pinned

    async def prepared() -> PipelineSpec:
        store = await service.open_store(str(db))
        try:
            return (await service.prepare_resume(store, run_id, migrate=False)).pipeline
        finally:
            await store.close()

    pipeline = asyncio.run(prepared())
    assert pipeline == load_pipeline(folder, vetted=pipeline.files)
    assert pipeline.files and pipeline.absent == {"schemas/IdeationResult.yaml"}
