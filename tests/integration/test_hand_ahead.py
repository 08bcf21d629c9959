"""Tasks handed out ahead of the commit that claims them (``stores.ahead``), driving real
runs on SQLite: their agents start before that commit, see what it wrote, and a commit that
claims none of them (the run paused meanwhile) leaves no trace of them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from tests.support.configs import write_callable_pipeline
from tests.support.runs import Recording, around_fan_ins

from ideamine import service
from ideamine.agents.base import AgentContext
from ideamine.agents.builtin import CallableAgent
from ideamine.config.loader import load_pipeline
from ideamine.config.model import AgentSpec
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.runtime.context import BlobCache
from ideamine.runtime.runner import Runner
from ideamine.stores.ahead import Ahead
from ideamine.stores.ledger import verify_chain
from ideamine.stores.records import ClaimedTask, EventDraft, EventRecord
from ideamine.stores.sqlite import SqliteStore
from ideamine.stores.verdicts import Verdict, VerdictStore

# two phases fed by one, a join (its upstream merged from what both sides left), and one
# after it: every phase after the first starts its tasks ahead, without a read
DAG = {
    "intake": [],
    "ideation": ["intake"],
    "critique": ["intake"],
    "review": ["ideation", "critique"],
    "plan": ["review"],
}


async def _drive(store: SqliteStore, config: Path) -> tuple[RunStatus, list[object], str]:
    """A run of ``config`` driven here to its end: its status, its artifacts' contents by
    type, and its id."""
    pipeline = load_pipeline(config)
    run = await service.create_run(
        store, pipeline, "a farm", constraints={}, source="cli", config_dir=config
    )
    final = await Runner(store, pipeline, concurrency=16).drive(run.id)
    artifacts = sorted(await store.artifacts(run.id), key=lambda a: (a.type, a.version))
    return final.status, [await store.blob(a.content_hash) for a in artifacts], run.id


def test_tasks_handed_out_ahead_see_what_the_commit_wrote_as_a_read_after_it_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agents echo every upstream content they got: a run whose tasks start ahead of
    their commit (with their upstream foreseen) writes what a run whose tasks start after
    it (reading their upstream) writes."""
    config = write_callable_pipeline(
        tmp_path / "config", DAG, agents_per_phase=3, function="tests.support.agents:upstream_text"
    )
    foreseen: list[str] = []
    foresee = BlobCache.foresee

    def counted(self: BlobCache, *args: object) -> list[str]:
        filled = foresee(self, *args)  # type: ignore[arg-type]
        foreseen.extend(filled)
        return filled

    monkeypatch.setattr(BlobCache, "foresee", counted)

    async def go(folder: Path) -> tuple[RunStatus, list[object]]:
        store = SqliteStore(folder / "ideamine.db")
        await store.migrate()
        try:
            status, contents, run_id = await _drive(store, config)
            assert verify_chain(await store.events(run_id, limit=100_000)).ok
            return status, contents
        finally:
            await store.close()

    (tmp_path / "ahead").mkdir()
    (tmp_path / "after").mkdir()
    ahead = asyncio.run(go(tmp_path / "ahead"))
    assert sorted(foreseen) == ["critique", "ideation", "plan", "review"]
    monkeypatch.setattr(SqliteStore, "lease_ahead", lambda *_: None)  # start after commits
    after = asyncio.run(go(tmp_path / "after"))
    assert ahead[0] is after[0] is RunStatus.COMPLETED
    assert ahead[1] == after[1]


def test_agents_handed_out_ahead_start_before_the_commit_that_claims_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each phase after the first (the join's too) starts its agents before the commit of
    the fan-in that started it has returned, and every output is recorded once."""
    log = tmp_path / "exec.log"
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(log))
    config = write_callable_pipeline(tmp_path / "config", DAG, agents_per_phase=3)
    committed: dict[str, float] = {}  # phase started → when its fan-in's commit returned

    async def timed(
        _: VerdictStore, verdict: Verdict, __: object, record: Recording
    ) -> list[ClaimedTask]:
        claimed = await record()
        if verdict.ahead is not None:
            for start in verdict.starts:
                committed[start.phase] = time.time()
        return claimed

    around_fan_ins(monkeypatch, timed)

    async def go() -> tuple[RunStatus, Counter[str]]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            status, _, run_id = await _drive(store, config)
            succeeded = Counter(
                str(event.task_id)
                for event in await store.events(run_id, limit=100_000)
                if event.type == "task.succeeded"
            )
            return status, succeeded
        finally:
            await store.close()

    status, succeeded = asyncio.run(go())
    assert status is RunStatus.COMPLETED
    assert set(succeeded.values()) == {1}
    started: dict[str, float] = {}
    for line in log.read_text().splitlines():
        what, phase, _, at = line.split()
        if what == "start":
            started[phase] = min(started.get(phase, float("inf")), float(at))
    assert sorted(committed) == ["critique", "ideation", "plan", "review"]
    for phase, at in committed.items():
        assert started[phase] < at, phase


def test_a_run_paused_while_its_step_commits_revokes_the_tasks_handed_out_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause that commits between the step's read and its transaction: the verdict is
    recorded, the phase it opens is not started, and the tasks handed out ahead are stopped
    before they record anything. Resumed, the run starts them again and completes, every
    output recorded once."""
    log = tmp_path / "exec.log"
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(log))
    monkeypatch.setenv("IDEAMINE_TEST_SLEEP", "0.05")  # still asleep when revoked
    config = write_callable_pipeline(tmp_path / "config", DAG, agents_per_phase=2)
    paused: list[str] = []

    async def pausing(
        verdicts: VerdictStore, verdict: Verdict, _: object, record: Recording
    ) -> list[ClaimedTask]:
        if verdict.ahead is not None and verdict.phase == "intake" and not paused:
            paused.append(verdict.phase)  # as `ideamine pause` from another process
            await verdicts._store.set_run_status(
                verdict.run_id, RunStatus.PAUSED, EventDraft(type="run.paused")
            )
        return await record()

    around_fan_ins(monkeypatch, pausing)

    async def go() -> tuple[RunStatus, RunStatus, Counter[str], list[str], bool]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            pipeline = load_pipeline(config)
            run = await service.create_run(
                store, pipeline, "a farm", constraints={}, source="cli", config_dir=config
            )
            first = await Runner(store, pipeline, concurrency=16).drive(run.id)
            _, _, tasks = await store.run_rows(run.id)
            left = sorted(t.key for t in tasks if t.phase != "intake")
            assert all(t.status is TaskStatus.SUCCEEDED for t in tasks)
            await store.set_run_status(run.id, RunStatus.RUNNING, EventDraft(type="run.resumed"))
            final = await Runner(store, pipeline, concurrency=16).drive(run.id)
            events = await store.events(run.id, limit=100_000)
            succeeded = Counter(str(e.task_id) for e in events if e.type == "task.succeeded")
            return first.status, final.status, succeeded, left, verify_chain(events).ok
        finally:
            await store.close()

    first, final, succeeded, left, chained = asyncio.run(go())
    assert paused == ["intake"]
    assert first is RunStatus.PAUSED
    assert left == []  # the phases intake opens were not started: no task rows
    assert final is RunStatus.COMPLETED and chained
    assert set(succeeded.values()) == {1}
    lines = [line.split() for line in log.read_text().splitlines()]
    ended = Counter((phase, key) for what, phase, key, _ in lines if what == "end")
    assert set(ended.values()) == {1}  # the revoked agents never finished
    started = Counter((phase, key) for what, phase, key, _ in lines if what == "start")
    assert {
        started[(phase, key)] for phase, key in started if phase in ("ideation", "critique")
    } == {2}


_CALLS: list[str] = []


def record_call(ctx: AgentContext) -> dict[str, object]:
    """A plain (thread-run) agent that notes it was called."""
    _CALLS.append(ctx.key)
    return {"value": ctx.key}


def test_a_thread_run_agent_handed_out_ahead_starts_only_once_its_commit_is_in() -> None:
    """A thread cannot be cancelled, so a plain function handed out ahead of the commit
    that claims it (and may yet be revoked) is called only once that commit settled; a
    coroutine agent runs at once (its revocation cancels it)."""
    spec = AgentSpec(
        name="X",
        phase="intake",
        role="r",
        artifact_types=("T",),
        output_schema={},
        callable=f"{__name__}:record_call",
    )
    ctx = AgentContext(
        run_id="r1", phase="intake", attempt=1, key="00.X", iteration=1, spec=spec, values={}
    )

    async def body() -> tuple[list[str], list[str]]:
        _CALLS.clear()
        ahead = Ahead()
        with ahead.handing():
            running = asyncio.create_task(CallableAgent(spec).run(ctx))
        await asyncio.sleep(0.05)
        before = list(_CALLS)
        ahead.settle()
        result = await running
        assert result.output == {"value": "00.X"}
        return before, list(_CALLS)

    assert asyncio.run(body()) == ([], ["00.X"])


def test_a_revoked_task_ending_is_taken_out_of_flight_without_a_trace(tmp_path: Path) -> None:
    """A wait on the runner's tasks in flight that began before a revocation may still hold
    the revoked task: its ending (cancelled) is passed over, not raised."""

    async def body() -> bool:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            runner = Runner(
                store,
                load_pipeline(write_callable_pipeline(tmp_path / "c", DAG, agents_per_phase=1)),
            )
            revoked = asyncio.create_task(asyncio.sleep(10))
            revoked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revoked
            return runner._collect({revoked})
        finally:
            await store.close()

    assert asyncio.run(body()) is False  # not a quiet ending: the loop turns


def test_a_joins_tasks_start_before_either_side_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both sides of review's join end together (their agents wait for each other): one
    step fans both in, the first side's transaction held for the second's
    (``runtime.stepwrites``), which hands review's agents out first; both commit after they
    started, the first side first, and the ledger's times keep its order."""
    log = tmp_path / "exec.log"
    monkeypatch.setenv("IDEAMINE_TEST_EXEC_LOG", str(log))
    monkeypatch.setenv("IDEAMINE_TEST_TOGETHER", "4")  # both sides' two agents
    config = write_callable_pipeline(tmp_path / "config", DAG, agents_per_phase=2)
    for agent in ("IdeationAgent0", "IdeationAgent1", "CritiqueAgent0", "CritiqueAgent1"):
        path = config / "agents" / f"{agent}.yaml"
        document = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**document, "callable": "tests.support.agents:together"}))
    committed: list[tuple[str, float]] = []  # each fan-in's phase, when its commit returned

    async def timed(
        _: VerdictStore, verdict: Verdict, __: object, record: Recording
    ) -> list[ClaimedTask]:
        claimed = await record()
        committed.append((verdict.phase, time.time()))
        return claimed

    around_fan_ins(monkeypatch, timed)

    async def go() -> tuple[RunStatus, list[EventRecord]]:
        store = SqliteStore(tmp_path / "ideamine.db")
        await store.migrate()
        try:
            status, _, run_id = await _drive(store, config)
            return status, await store.events(run_id, limit=100_000)
        finally:
            await store.close()

    status, events = asyncio.run(go())
    assert status is RunStatus.COMPLETED
    started = min(
        float(line.split()[3])
        for line in log.read_text().splitlines()
        if line.startswith("start review ")
    )
    sides = [(phase, at) for phase, at in committed if phase in ("ideation", "critique")]
    assert len(sides) == 2
    assert all(started < at for _, at in sides), (started, sides)
    assert [e.at for e in events] == sorted(e.at for e in events)
    succeeded = Counter(e.task_id for e in events if e.type == "task.succeeded")
    assert set(succeeded.values()) == {1}
