"""Use cases shared by the CLI (and later the API and dashboard): open a store, check an
idea, start, resume and verify runs. No printing here; errors are raised, not reported."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ideamine.canonical import canonical_json
from ideamine.config import CONFIG_ENV, compiled
from ideamine.engine.budget import Resource
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.errors import InvalidIdeaError, ManifestChangedError, RunStateError, UsageError
from ideamine.runtime.identity import owner_alive, process_owner
from ideamine.stores.base import Store
from ideamine.stores.callcache import call_cache_for
from ideamine.stores.ledger import ChainReport, verify_chain
from ideamine.stores.options import RunOptions
from ideamine.stores.records import ArtifactRecord, EventDraft, EventRecord, NewRun, RunRecord
from ideamine.stores.sqlite import SYNC_ENV, SqliteStore, sync_level
from ideamine.stores.sqlstore import SqlStore
from ideamine.stores.usage import THROTTLED_OPTION

if TYPE_CHECKING:
    from ideamine.config.model import PipelineSpec
    from ideamine.runtime.budget import BudgetReport

# The configuration and agent stack (pydantic, jsonschema, Jinja, the model providers) is
# imported by the functions that use it, so the commands that only read a store start
# without it (docs/cli.md).

__all__ = [
    "BUDGET_FORM",
    "DEFAULT_STORE",
    "MAX_IDEA_CHARS",
    "STORE_ENV",
    "Cleaned",
    "Prepared",
    "add_budget",
    "all_events",
    "budget_status",
    "check_agents",
    "check_idea",
    "check_store",
    "cleanup",
    "config_folder",
    "configured_advisories",
    "create_run",
    "export_artifacts",
    "open_store",
    "parse_budget_addition",
    "prepare_resume",
    "read_idea_file",
    "store_path",
    "store_reference",
    "verify_run",
]

STORE_ENV = "IDEAMINE_STORE"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_STORE = "ideamine.db"
MAX_IDEA_CHARS = 20_000
MIN_IDEA_CHARS = 3


def store_reference(reference: str | None) -> str:
    """The store to open: ``reference``, else ``$IDEAMINE_STORE``, else the default file."""
    return reference or os.environ.get(STORE_ENV) or DEFAULT_STORE


async def open_store(reference: str | None, *, create: bool = True) -> Store:
    """Open (and migrate) the store named by ``reference``, ``$IDEAMINE_STORE`` or the default.

    Args:
        reference: a SQLite path or a ``postgresql://`` URL.
        create: whether a missing SQLite file may be created (False for commands that only
            read, so a mistyped path is reported instead of silently creating a file).

    Raises:
        UsageError: the reference is not a store this build can open, or does not exist.
        StoreError: the store cannot be opened or migrated.
    """
    reference = store_reference(reference)
    store: Store
    if reference.startswith(POSTGRES_SCHEMES):
        # imported here: the driver costs every command on SQLite a tenth of a second
        from ideamine.stores.postgres import PostgresStore  # noqa: PLC0415

        store = PostgresStore(reference)
    else:
        path = store_path(reference)
        if not create and not path.exists():
            raise UsageError(
                f"no IdeaMine store at {path}",
                hint="start a run first, or pass --store (or $IDEAMINE_STORE)",
            )
        store = SqliteStore(path)
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


def store_path(reference: str | None) -> Path:
    """The SQLite file a ``--store`` reference names (``$IDEAMINE_STORE``, else the default).

    Raises:
        UsageError: the reference is a URL of another kind, or a folder.
    """
    reference = store_reference(reference)
    if "://" in reference and not reference.startswith("sqlite://"):
        scheme = reference.split("://", 1)[0]
        raise UsageError(
            f"unsupported store {scheme}://…",
            hint="pass a SQLite file path such as ./ideamine.db, or postgresql://user@host/db",
        )
    path = Path(reference.removeprefix("sqlite://")).expanduser()
    if path.is_dir():
        raise UsageError(
            f"--store {path} is a folder", hint=f"name a file, e.g. {path / DEFAULT_STORE}"
        )
    return path


def check_store(reference: str | None) -> None:
    """Refuse a store that no retry can make usable (a folder, a URL of another kind, an
    unknown ``$IDEAMINE_SQLITE_SYNC``) before a long-lived process starts; opens nothing.

    Raises:
        UsageError: as ``open_store`` would for it.
    """
    reference = store_reference(reference)
    if not reference.startswith(POSTGRES_SCHEMES):
        store_path(reference)
        sync_level(os.environ.get(SYNC_ENV))


def check_idea(text: str) -> str:
    """The idea, stripped, if usable.

    Raises:
        InvalidIdeaError: empty, too short, too long, or holding NUL or undecodable bytes.
    """
    idea = text.strip()
    if not idea:
        raise InvalidIdeaError(
            "the idea is empty",
            hint='describe it in a sentence: ideamine run "a marketplace for local farmers"',
        )
    if len(idea) < MIN_IDEA_CHARS:
        raise InvalidIdeaError(
            f"the idea is too short ({len(idea)} characters)",
            hint="describe it in a sentence or more",
        )
    if len(idea) > MAX_IDEA_CHARS:
        raise InvalidIdeaError(
            f"the idea is {len(idea):,} characters; the limit is {MAX_IDEA_CHARS:,}",
            hint="summarise it; put long material into later phases' inputs",
        )
    if "\x00" in idea or any("\udc80" <= ch <= "\udcff" for ch in idea):
        raise InvalidIdeaError(
            "the idea holds NUL or bytes that are not UTF-8",
            hint="save the text as UTF-8 (e.g. iconv -t UTF-8)",
        )
    return idea


def read_idea_file(path: Path) -> str:
    """The text of an idea file; raises ``InvalidIdeaError`` if unreadable or not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidIdeaError(
            f"cannot read {path}: {exc.strerror}", hint="check the path"
        ) from exc
    if len(raw) > MAX_IDEA_CHARS * 4:
        raise InvalidIdeaError(
            f"{path} is {len(raw):,} bytes; ideas are limited to {MAX_IDEA_CHARS:,} characters",
            hint="summarise it",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidIdeaError(
            f"{path} is not UTF-8 text (byte {exc.start})", hint="convert it, e.g. iconv -t UTF-8"
        ) from exc


async def create_run(
    store: Store,
    pipeline: PipelineSpec,
    idea: str,
    *,
    constraints: Mapping[str, object],
    source: str,
    config_dir: Path | None,
    project: str | None = None,
    options: Mapping[str, object] | None = None,
) -> RunRecord:
    """Pin a new run to ``pipeline``'s manifest and store it (status ``created``), with its
    options (``ask``, ``strict_evidence``, ``advisories``)."""
    record = await store.create_run(
        NewRun(
            id=uuid.uuid4().hex[:12],
            idea=check_idea(idea),
            constraints=dict(constraints),
            source=source,
            config_dir=_absolute(config_dir),
            manifest=dict(pipeline.manifest),
            manifest_hash=pipeline.manifest_hash,
            config_files=dict(pipeline.files),
            config_compiled=compiled.encode(pipeline),
            project=project,
        )
    )
    if pipeline.model_override:
        # Pinned now, so a worker elsewhere that claims the first task uses the same model.
        await call_cache_for(store).pin_run_model(record.id, pipeline.model_override)
    if options:
        await RunOptions(store).update(
            record.id, options, EventDraft(type="run.options", payload=dict(options))
        )
    return record


def configured_advisories(pipeline: PipelineSpec, config_dir: Path | None) -> Path | None:
    """The OSV advisory folder ``pipeline.yaml`` names (relative to the config folder), if any.

    Raises:
        UsageError: it names a folder that does not exist.
    """
    if not pipeline.advisories:
        return None
    folder = Path(pipeline.advisories).expanduser()
    if not folder.is_absolute() and config_dir is not None:
        folder = config_dir / folder
    if not folder.is_dir():
        raise UsageError(
            f"pipeline.yaml: advisories: no folder {folder}",
            hint="name a folder of OSV advisories (JSON), relative to the config folder",
        )
    return folder.resolve()


def config_folder(flag: Path | None) -> Path | None:
    """The overlay folder: the ``--config`` flag, else ``$IDEAMINE_CONFIG``, else none."""
    if flag is not None:
        return flag
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def check_agents(pipeline: PipelineSpec) -> None:
    """Build every agent once: imports callables and resolves model providers, so a bad
    reference fails before a run is stored.

    Raises:
        UsageError: a callable cannot be imported or a provider is unknown.
    """
    from ideamine.agents.builtin import build_agent  # noqa: PLC0415
    from ideamine.llm.registry import Providers  # noqa: PLC0415

    providers = Providers()
    for spec in pipeline.agents.values():
        build_agent(spec, pipeline, providers)


def _absolute(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """A run reopened for this process to drive, with the pipeline it is pinned to."""

    run: RunRecord
    pipeline: PipelineSpec
    reclaimed: int


async def prepare_resume(store: Store, run_id: str, *, migrate: bool) -> Prepared:
    """Reopen ``run_id`` for this process: check its manifest and that nobody else drives it.

    Raises:
        RunNotFoundError, RunStateError, ManifestChangedError, ConfigError.
    """
    run = await store.get_run(run_id)
    if run.status in (RunStatus.COMPLETED, RunStatus.CANCELLED):
        raise RunStateError(
            run_id,
            f"run {run_id} is {run.status}; there is nothing to resume",
            hint="start a new run with `ideamine run`",
        )
    if run.driver and run.status is RunStatus.RUNNING and owner_alive(run.driver):
        raise RunStateError(
            run_id,
            f"run {run_id} is being driven by {run.driver}",
            hint="wait for it, or stop that process first",
        )
    pinned, packed = await store.compiled_config(run_id)
    overlay = Path(run.config_dir) if run.config_dir else None
    pipeline = compiled.unchanged_pipeline(packed, pinned, overlay, run_id=run_id)
    if pipeline is None or pipeline.manifest_hash != run.manifest_hash:
        pipeline = await _load_again(store, run, pinned, overlay, migrate=migrate)
    _, _, tasks = await store.run_rows(run_id)
    owners = sorted(
        {
            t.lease_owner
            for t in tasks
            if t.status is TaskStatus.RUNNING
            and t.lease_owner
            and owner_alive(t.lease_owner) is False
        }
        | ({run.driver} if run.driver and owner_alive(run.driver) is False else set())
    )
    reclaimed = await store.reopen_run(
        run_id, driver=process_owner(), dead_owners=owners, now=time.time()
    )
    return Prepared(run=await store.get_run(run_id), pipeline=pipeline, reclaimed=len(reclaimed))


async def _load_again(
    store: Store, run: RunRecord, pinned: Mapping[str, str], overlay: Path | None, *, migrate: bool
) -> PipelineSpec:
    """The pipeline to resume ``run`` on, from its configuration folder loaded again: the
    pinned texts if its manifest is unchanged, else (``migrate``) the folder's, re-pinned.

    Raises:
        ManifestChangedError, ConfigError.
    """
    from ideamine.config.loader import load_pinned, load_pipeline  # noqa: PLC0415

    # The files the folder shares with the run's pinned configuration, text for text, passed
    # every check when the run was pinned.
    current = load_pipeline(overlay, vetted=pinned)
    if current.manifest_hash == run.manifest_hash:
        # Unchanged. Where a text changed and its hash did not (a comment, a date quoted or
        # not), drive the pinned texts, as the run's workers do.
        return current if current.files == pinned else load_pinned(pinned)
    if not migrate:
        raise ManifestChangedError(run.id, _manifest_diff(run.manifest, current.manifest))
    await store.repin_run(
        run.id,
        manifest=current.manifest,
        manifest_hash=current.manifest_hash,
        files=current.files,
        changes=_manifest_diff(run.manifest, current.manifest),
        compiled=compiled.encode(current),
    )
    return current


def _manifest_diff(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    changes = [
        f"{name} changed" for name in sorted(old.keys() & new.keys()) if old[name] != new[name]
    ]
    changes += [f"{name} removed" for name in sorted(old.keys() - new.keys())]
    changes += [f"{name} added" for name in sorted(new.keys() - old.keys())]
    return changes or ["the manifest hash differs"]


async def export_artifacts(store: Store, run_id: str, folder: Path) -> list[Path]:
    """Write the latest version of each artifact to ``folder/<Type>.json`` (canonical order,
    indented) plus ``provenance.json``; returns the files written.

    Raises:
        UsageError: ``folder`` exists and is not a folder, or cannot be written.
    """
    latest: dict[str, ArtifactRecord] = {}
    for record in await store.artifacts(run_id):
        if record.type not in latest or record.version > latest[record.type].version:
            latest[record.type] = record
    files = {f"{t}.json": await store.blob(r.content_hash) for t, r in sorted(latest.items())}
    files["provenance.json"] = {
        t: {"artifact_id": r.id, "version": r.version, "sha256": r.content_hash, **r.provenance}
        for t, r in sorted(latest.items())
    }
    return await asyncio.to_thread(_write_json_files, folder, files)


def _write_json_files(folder: Path, files: Mapping[str, object]) -> list[Path]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, value in files.items():
            path = folder / name
            path.write_text(
                json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                encoding="utf-8",
            )
            written.append(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write to {folder}: {exc.strerror}",
            hint="choose a writable folder for --export",
        ) from exc
    return written


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What ``cleanup`` did."""

    deleted: list[str]  # run ids
    changed: list[str]  # chosen, then resumed or written to before the delete: kept
    metrics: int  # phase_metrics rows deleted


async def cleanup(
    store: Store, *, days: float, archive_dir: Path | None, metric_days: float | None
) -> Cleaned:
    """Retention: archive (optionally) and delete whole finished runs older than ``days``,
    and phase metrics older than ``metric_days``. A run that changes between being chosen
    (and archived) and the delete is kept whole.

    Raises:
        UsageError: the store cannot do retention, or the archive folder is not writable.
    """
    # imported here: the commands that run work never need it (start-up time)
    from ideamine.stores import observability  # noqa: PLC0415

    if not isinstance(store, SqlStore):
        raise UsageError("this store does not support retention", hint="use SQLite or PostgreSQL")
    now = time.time()
    doomed = await observability.old_finished_runs(store, days=days, now=now)
    if archive_dir is not None:
        for run_id in doomed:
            events = await all_events(store, run_id)
            lines = [canonical_json(asdict(e)) for e in events]
            await asyncio.to_thread(
                _write_text, archive_dir / f"{run_id}.events.jsonl", "\n".join(lines) + "\n"
            )
            doomed[run_id] = events[-1].id if events else 0  # what the archive holds
    deleted = await observability.delete_runs(store, doomed, days=days, now=now)
    metrics = 0
    if metric_days is not None:
        metrics = await observability.cleanup_old_phase_metrics(store, days=metric_days, now=now)
    return Cleaned(deleted=deleted, changed=sorted(set(doomed) - set(deleted)), metrics=metrics)


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror}", hint="choose a writable folder for --archive"
        ) from exc


async def all_events(store: Store, run_id: str) -> list[EventRecord]:
    """Every event of a run, in id order."""
    await store.get_run(run_id)
    events: list[EventRecord] = []
    while True:
        page = await store.events(run_id, after_id=events[-1].id if events else 0, limit=5000)
        events.extend(page)
        if len(page) < 5000:
            return events


async def verify_run(store: Store, run_id: str) -> ChainReport:
    """Check the run's ledger hash chain."""
    return verify_chain(await all_events(store, run_id))


# -- budgets ------------------------------------------------------------------------------

BUDGET_FORM = "tokens=N,usd=X,tool_minutes=M,wallclock_minutes=W"


def parse_budget_addition(text: str) -> dict[str, float]:
    """The amounts of ``--add-budget tokens=N,usd=X,…``: any of the four resources, each at
    most once, each more than 0 (tokens a whole number).

    Raises:
        UsageError: naming the flag and showing the expected form.
    """
    amounts: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = (piece.strip() for piece in part.partition("="))
        problem = _addition_problem(part, key, sep, value, amounts)
        if problem:
            raise UsageError(
                f"--add-budget {text!r}: {problem}",
                hint=f"expected {BUDGET_FORM} (any of them, comma-separated), "
                "e.g. --add-budget tokens=100000,usd=5",
            )
        amounts[key] = int(value) if key == Resource.TOKENS else float(value)
    return amounts


def _addition_problem(part: str, key: str, sep: str, value: str, seen: Mapping[str, float]) -> str:
    """What is wrong with one ``NAME=AMOUNT`` of ``--add-budget`` (``""``: nothing)."""
    names = [resource.value for resource in Resource]
    if not sep:
        return f"{part.strip()!r} is not NAME=AMOUNT"
    if key not in names:
        return f"unknown budget {key!r} (known: {', '.join(names)})"
    if key in seen:
        return f"{key} is given twice"
    try:
        number = int(value) if key == Resource.TOKENS else float(value)
    except ValueError:
        kind = "a whole number" if key == Resource.TOKENS else "a number"
        return f"{key}={value!r} is not {kind}"
    if not math.isfinite(number) or number <= 0:
        return f"{key} must be more than 0"
    return ""


async def add_budget(store: Store, run_id: str, amounts: Mapping[str, float]) -> dict[str, float]:
    """Add ``amounts`` to the run's budgets (summed with earlier additions; kept in its
    options as ``added_budget``) with a ``budget.added`` event, which also lifts the
    throttle. Returns everything added so far.

    Raises:
        RunNotFoundError: no such run. RunStateError: the run completed or was cancelled.
    """
    run = await store.get_run(run_id)
    if run.status in (RunStatus.COMPLETED, RunStatus.CANCELLED):
        raise RunStateError(
            run_id,
            f"run {run_id} is {run.status}; its budget can no longer change",
            hint="start a new run with `ideamine run`",
        )
    options = RunOptions(store)
    earlier = (await options.get(run_id)).get("added_budget")
    total = dict(earlier) if isinstance(earlier, dict) else {}
    for key, amount in amounts.items():
        total[key] = total.get(key, 0) + amount
    event = EventDraft(type="budget.added", payload={"added": dict(amounts), "total": total})
    await options.update(run_id, {"added_budget": total, THROTTLED_OPTION: False}, event)
    return total


async def budget_status(store: Store, run: RunRecord) -> BudgetReport | None:
    """The run's budgets, used and allocated per resource; ``None`` when the config it is
    pinned to no longer loads."""
    from ideamine.runtime.budget import budget_report  # noqa: PLC0415

    try:
        pipeline = await compiled.run_pipeline(store, run.id)
    except UsageError:
        return None
    return await budget_report(store, pipeline, run.id)
