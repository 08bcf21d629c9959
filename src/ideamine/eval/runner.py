"""Run the pipeline on each chosen idea (``jobs`` at a time), measure what it made, and keep
one result file per idea, so an interrupted evaluation resumes where it stopped.

Each idea gets a folder ``<out>/ideas/<key>/`` holding its own SQLite store (and the store's
data folder with the run's workspace), the run's log, the product's checkout and
``result.json``. An idea whose ``result.json`` exists is not run again; an idea whose run was
interrupted is resumed with ``ideamine resume`` (its finished tasks are not redone).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ideamine.engine.states import RunStatus
from ideamine.eval.embedding import Embedder
from ideamine.eval.ideas import Idea
from ideamine.eval.measure import measure_run
from ideamine.runtime.identity import owner_alive
from ideamine.stores.sqlite import SqliteStore

__all__ = [
    "RESULT",
    "STORE",
    "EvalOptions",
    "Outcome",
    "evaluate",
    "idea_folder",
    "measured_earlier",
]

RESULT = "result.json"
STORE = "ideamine.db"
_SETTLED = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.NEEDS_ATTENTION}
_LOG_TAIL = 4
_STOP_GRACE_S = 10.0
_POLL_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalOptions:
    """How to run each idea: output folder, ideas at once, model, config overlay, limit."""

    out: Path
    jobs: int = 2
    model: str | None = None
    config: Path | None = None
    idea_timeout_s: float = 1800.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One idea's end: its result (None when it did not finish, with the reason)."""

    idea: Idea
    result: dict[str, object] | None
    problem: str | None = None
    earlier: bool = False  # the result was found from an earlier invocation


def measured_earlier(out: Path, ideas: Sequence[Idea]) -> int:
    """How many of ``ideas`` already have a result in ``out`` (they are not run again)."""
    return sum(1 for i in ideas if _read_result(idea_folder(out, i) / RESULT, i) is not None)


def idea_folder(out: Path, idea: Idea) -> Path:
    """``<out>/ideas/<key>``: everything of one idea."""
    return out / "ideas" / idea.key


async def evaluate(
    ideas: Sequence[Idea],
    options: EvalOptions,
    embedder: Embedder,
    report: Callable[[Outcome], None],
) -> list[Outcome]:
    """Evaluate ``ideas``, at most ``options.jobs`` at once; ``report`` hears of each as it
    ends. Returns every outcome in the order of ``ideas``."""
    slots = asyncio.Semaphore(options.jobs)

    async def one(idea: Idea) -> Outcome:
        async with slots:
            outcome = await _evaluate_one(idea, options, embedder)
        report(outcome)
        return outcome

    return list(await asyncio.gather(*(one(idea) for idea in ideas)))


async def _evaluate_one(idea: Idea, options: EvalOptions, embedder: Embedder) -> Outcome:
    folder = idea_folder(options.out, idea)
    earlier = _read_result(folder / RESULT, idea)
    if earlier is not None:
        return Outcome(idea=idea, result=earlier, earlier=True)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run_id, problem = await _drive(idea, folder, options)
    if run_id is None:
        return Outcome(idea=idea, result=None, problem=problem)
    store = SqliteStore(folder / STORE)
    try:
        await store.migrate()
        measured = await measure_run(
            store, run_id, idea, data_dir=_data_dir(folder), folder=folder, embedder=embedder
        )
    finally:
        await store.close()
    result = {
        "idea": dataclasses.asdict(idea),
        **measured,
        "eval_s": round(time.monotonic() - started, 1),
    }
    _write_json(folder / RESULT, result)
    return Outcome(idea=idea, result=result)


async def _drive(idea: Idea, folder: Path, options: EvalOptions) -> tuple[str | None, str | None]:
    """Start (or resume) the idea's run and wait for it to settle: ``(run id, None)``, or
    ``(None, why not)``."""
    state = await _settled_or_orphaned(folder, options.idea_timeout_s)
    if state is None or state[1] not in _SETTLED:
        (folder / "idea.txt").write_text(idea.description + "\n", encoding="utf-8")
        command = _command(folder, options, None if state is None else state[0])
        code = await _execute(command, folder, options.idea_timeout_s)
        state = await _run_state(folder)
        if code is None:
            return None, f"cut after {options.idea_timeout_s:g} s; run eval again to resume it"
        if state is None or state[1] not in _SETTLED:
            status = "no run" if state is None else f"the run is {state[1].value}"
            return None, f"{status} (exit {code}): {_log_tail(folder)}"
    return state[0], None


async def _settled_or_orphaned(folder: Path, limit_s: float) -> tuple[str, RunStatus] | None:
    """The idea's run state once no live process drives it: a run still driven by an earlier
    evaluation's process (one killed with SIGKILL leaves its runs going) is waited for."""
    deadline = time.monotonic() + limit_s
    while True:
        state, driver = await _run_state_and_driver(folder)
        alive = driver is not None and owner_alive(driver)
        if state is None or state[1] is not RunStatus.RUNNING or not alive:
            return state
        if time.monotonic() > deadline:
            return state
        await asyncio.sleep(_POLL_S)


def _command(folder: Path, options: EvalOptions, run_id: str | None) -> list[str]:
    store = ["--store", str(folder / STORE), "-q"]
    if run_id is not None:
        return [sys.executable, "-m", "ideamine", "resume", run_id, *store]
    command = [sys.executable, "-m", "ideamine", "run", "--file", str(folder / "idea.txt"), *store]
    if options.model:
        command += ["--model", options.model]
    if options.config:
        command += ["--config", str(options.config)]
    return command


async def _execute(command: Sequence[str], folder: Path, limit_s: float) -> int | None:
    """Run ``command`` with its output appended to the idea's ``run.log``; its exit code, or
    None when it was cut at ``limit_s``. It runs in a session of its own, so a Ctrl-C reaches
    it through the evaluation, which stops it as Ctrl-C stops ``ideamine run``."""
    env = {k: v for k, v in os.environ.items() if k not in ("IDEAMINE_STORE", "IDEAMINE_DATA_DIR")}
    with (folder / "run.log").open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(proc.wait(), limit_s)
        except TimeoutError:
            await asyncio.to_thread(_stop, proc.pid, log)
            await proc.wait()
            return None
        finally:
            if proc.returncode is None:
                # Cancelled (Ctrl-C): stop it here and now, without awaiting, because the
                # event loop is shutting down and would cancel any task started for it.
                _stop(proc.pid, log)


def _stop(pid: int, log: IO[bytes]) -> None:
    """SIGINT the process group (the run stops as after Ctrl-C, resumable), SIGKILL after a
    grace period; returns once the process is gone."""
    log.write(f"eval: stopping pid {pid} (SIGINT)\n".encode())
    log.flush()
    _signal_group(pid, signal.SIGINT)
    deadline = time.monotonic() + _STOP_GRACE_S
    while _alive(pid):
        if time.monotonic() > deadline:
            log.write(f"eval: pid {pid} still runs after {_STOP_GRACE_S:g} s: SIGKILL\n".encode())
            _signal_group(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def _run_state(folder: Path) -> tuple[str, RunStatus] | None:
    """The id and status of the run in the idea's store (None before there is one)."""
    return (await _run_state_and_driver(folder))[0]


async def _run_state_and_driver(folder: Path) -> tuple[tuple[str, RunStatus] | None, str | None]:
    if not (folder / STORE).exists():
        return None, None
    store = SqliteStore(folder / STORE)
    try:
        await store.migrate()
        runs = await store.list_runs(1)
    finally:
        await store.close()
    return ((runs[0].id, runs[0].status), runs[0].driver) if runs else (None, None)


def _data_dir(folder: Path) -> Path:
    return folder / f"{STORE}.d"


def _log_tail(folder: Path) -> str:
    lines = (folder / "run.log").read_text(errors="replace").strip().splitlines()
    return " | ".join(line.strip() for line in lines[-_LOG_TAIL:]) or "no output"


def _read_result(path: Path, idea: Idea) -> dict[str, object] | None:
    """An earlier result for this very idea; None when absent, unreadable or for another
    description (it is then measured again)."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = loaded.get("idea") if isinstance(loaded, dict) else None
    if not isinstance(found, dict) or found.get("description") != idea.description:
        return None
    return dict(loaded)


def _write_json(path: Path, value: object) -> None:
    """Write atomically: a result file is whole or absent, even after a kill."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)
