"""Budgets on a real SQLite store with the real offline model and the real runner: a run
pauses as ``needs_attention`` *before* the model call that would take its token budget past
95 %, ``resume --add-budget`` lets it finish without redoing finished work, announcements are
not repeated by a resume, cached calls are never blocked, and a throttled run gets half the
concurrency.

The numbers: phase ``intake`` runs three model agents one after another, each with a prompt of
400 characters (100 tokens estimated) and ``max_tokens: 100``, so each call's worst case is 200
tokens and each uses 105 (the offline reply is 5 tokens). With an intake budget of 360 tokens:
call 1 projects 200/360 = 56 % (warning), call 2 (105 + 200)/360 = 85 % (throttled), call 3
(210 + 200)/360 = 114 %: it is not made.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from tests.support.configs import OUTPUT_SCHEMA, phase_document

from ideamine import service
from ideamine.cli.main import cli
from ideamine.config.loader import load_pipeline
from ideamine.config.model import Price
from ideamine.engine.budget import Amounts
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.errors import BudgetExceededError
from ideamine.llm.base import ModelRequest
from ideamine.llm.breaker import CircuitBreaker
from ideamine.llm.cache import MemoryCallCache, cache_key
from ideamine.llm.caller import ModelCaller
from ideamine.llm.offline import OfflineProvider
from ideamine.llm.policy import DEFAULT_POLICY
from ideamine.runtime.budget import claim_within_budget
from ideamine.runtime.runner import Runner
from ideamine.stores.base import Store
from ideamine.stores.options import RunOptions
from ideamine.stores.records import EventDraft, EventRecord, ModelCallRecord, NewTask
from ideamine.stores.usage import UsageStore

IDEA = "a marketplace where local farmers sell to restaurants"
INTAKE_TOKENS = 360
IDEATION_TOKENS = 100_000
BUDGET_TYPES = ("budget.warning", "budget.throttled", "budget.exceeded", "run.needs_attention")


def _model_agent(name: str, phase: str) -> dict[str, object]:
    prefix = f"You are {name}. "
    return {
        "name": name,
        "phase": phase,
        "role": "test agent",
        "artifact_type": f"{phase.capitalize()}Result",
        "output_schema": OUTPUT_SCHEMA,
        "prompt": prefix + "x" * (400 - len(prefix)),  # 100 tokens estimated
        "offline": '{"value": {"n": 1}}',  # canonical: {"value":{"n":1}} = 17 chars, 5 tokens
        "max_tokens": 100,
    }


def _write_config(root: Path) -> Path:
    """Intake (three sequential model agents, 360 tokens) → ideation (one, 100 000)."""
    for folder in ("phases", "agents", "schemas"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    pipeline = {
        "name": "budgets",
        "version": "1",
        "phases": ["intake", "ideation"],
        "default_model": "offline:template",
    }
    (root / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    layout = {
        "intake": ([], ["A1", "A2", "A3"], INTAKE_TOKENS),
        "ideation": (["intake"], ["B1"], IDEATION_TOKENS),
    }
    for phase, (deps, agents, tokens) in layout.items():
        document = phase_document(phase, deps, agents, parallelism="sequential")
        document["budgets"] = {"tokens": tokens, "wallclock_minutes": 10}
        # no Q/A/V and no guards: the gate passes on its own (this test is about budgets)
        document["qav"] = {
            "enabled": False,
            "max_questions": 0,
            "min_grounding": 0.5,
            "max_iterations": 1,
        }
        document["gate"] = {"pass_threshold": 0.0, "max_attempts": 1, "rubrics": {"grounding": 1.0}}
        (root / "phases" / f"{phase}.yaml").write_text(yaml.safe_dump(document))
        (root / "schemas" / f"{phase.capitalize()}Result.yaml").write_text(
            yaml.safe_dump({"type": "object"})
        )
        for agent in agents:
            (root / "agents" / f"{agent}.yaml").write_text(
                yaml.safe_dump(_model_agent(agent, phase))
            )
    return root


async def _start(store: Store, config: Path) -> str:
    pipeline = load_pipeline(config)
    run = await service.create_run(
        store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
    )
    await Runner(store, pipeline).drive(run.id)
    return run.id


async def _resume(store: Store, run_id: str) -> None:
    prepared = await service.prepare_resume(store, run_id, migrate=False)
    await Runner(store, prepared.pipeline).drive(run_id)


def _types(events: list[EventRecord], wanted: tuple[str, ...] = BUDGET_TYPES) -> list[str]:
    return [event.type for event in events if event.type in wanted]


def _agents(calls: list[dict[str, object]]) -> list[str]:
    """The agents of model call rows (a task key ends with its agent), in call order."""
    return [str(call["key"]).rsplit(".", 1)[-1] for call in calls]


def test_a_run_pauses_before_the_call_that_would_exceed_its_budget_and_add_budget_finishes_it(
    tmp_path: Path, store_url: str
) -> None:
    """Pause before call 3; a plain resume pauses again without repeating warnings; then
    ``ideamine resume --add-budget`` completes the run, running no finished task again
    (on SQLite and on PostgreSQL)."""
    config = _write_config(tmp_path / "cfg")
    db = store_url
    run_id = asyncio.run(_pause_twice(db, config))
    result = CliRunner().invoke(
        cli, ["resume", run_id, "--store", db, "--add-budget", "tokens=1000", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    asyncio.run(_check_finished(db, run_id))
    shown = CliRunner().invoke(cli, ["status", run_id, "--store", db, "--json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.output)
    assert view["tokens"] == 4 * 105 and "phases" in view  # the existing keys stay
    tokens = view["budgets"]["tokens"]
    assert tokens == {"used": 420, "allocated": INTAKE_TOKENS + IDEATION_TOKENS + 1000}
    assert view["budgets"]["usd"]["allocated"] is None  # usd: 0 means no limit
    assert view["budgets"]["added"] == {"tokens": 1000}


async def _pause_twice(db: str, config: Path) -> str:
    store = await service.open_store(db)
    try:
        run_id = await _start(store, config)
        run, _, tasks = await store.run_rows(run_id)
        assert run.status is RunStatus.NEEDS_ATTENTION
        assert run.error and "intake" in run.error and "--add-budget tokens=" in run.error
        calls = await store.model_calls(run_id)
        assert _agents(calls) == ["A1", "A2"]  # call 3 was never sent
        assert sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls) == 210
        held = next(t for t in tasks if t.agent == "A3")
        assert held.status is TaskStatus.PENDING and held.tries == 0  # untouched
        events = await service.all_events(store, run_id)
        assert _types(events) == list(BUDGET_TYPES)  # warning, throttled, exceeded, paused
        exceeded = next(e for e in events if e.type == "budget.exceeded")
        assert exceeded.payload["scope"] == "phase" and exceeded.payload["name"] == "intake"
        assert exceeded.payload["resource"] == "tokens"
        assert (exceeded.payload["used"], exceeded.payload["request"]) == (210, 200)
        assert (await RunOptions(store).get(run_id))["budget_throttled"] is True

        await _resume(store, run_id)  # no more budget: it pauses again at once
        events = await service.all_events(store, run_id)
        # a second pause, but no repeated warning or throttle
        assert _types(events) == [*BUDGET_TYPES, "budget.exceeded", "run.needs_attention"]
        assert len(await store.model_calls(run_id)) == 2
        return run_id
    finally:
        await store.close()


async def _check_finished(db: str, run_id: str) -> None:
    store = await service.open_store(db, create=False)
    try:
        assert (await store.get_run(run_id)).status is RunStatus.COMPLETED
        events = await service.all_events(store, run_id)
        succeeded = [e.payload["agent"] for e in events if e.type == "task.succeeded"]
        assert sorted(str(a) for a in succeeded if a != "@gate") == ["A1", "A2", "A3", "B1"]
        # each once: nothing that had succeeded ran again, and no call was sent twice
        assert _agents(await store.model_calls(run_id)) == ["A1", "A2", "A3", "B1"]
        added = next(e for e in events if e.type == "budget.added")
        assert added.payload["added"] == {"tokens": 1000}
        assert (await RunOptions(store).get(run_id))["budget_throttled"] is False
        announced = ("budget.warning", "budget.throttled")
        marks = [(e.type, e.payload["mark"]) for e in events if e.type in announced]
        assert len(marks) == len(set(marks))
    finally:
        await store.close()


def test_cached_calls_are_never_blocked_by_the_budget(tmp_path: Path) -> None:
    """A second run of the same idea is served from the call cache: its calls cost nothing,
    so the 360-token intake budget that paused the first run never stops it."""
    config = _write_config(tmp_path / "cfg")

    async def go() -> None:
        store = await service.open_store(str(tmp_path / "c.db"))
        try:
            first = await _start(store, config)
            await service.add_budget(store, first, {"tokens": 1000})
            await _resume(store, first)
            assert (await store.get_run(first)).status is RunStatus.COMPLETED
            second = await _start(store, config)
            assert (await store.get_run(second)).status is RunStatus.COMPLETED
            calls = await store.model_calls(second)
            assert len(calls) == 4 and {c["outcome"] for c in calls} == {"cached"}
            events = await service.all_events(store, second)
            assert _types(events) == []
        finally:
            await store.close()

    asyncio.run(go())


def test_a_throttled_run_gets_half_the_concurrency_until_budget_is_added(
    tmp_path: Path, store_url: str
) -> None:
    """The flag written with ``budget.throttled`` halves the tasks a process claims for the
    run; ``budget.added`` lifts it."""
    config = _write_config(tmp_path / "cfg")

    async def go() -> None:
        store = await service.open_store(store_url)
        try:
            pipeline = load_pipeline(config)
            run = await service.create_run(
                store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
            )
            await store.set_run_status(
                run.id, RunStatus.RUNNING, EventDraft(type="run.started", payload={})
            )
            await store.start_phase(
                run.id, "ideation", 1, EventDraft(type="phase.started", phase="ideation")
            )
            tasks = [
                NewTask(id=f"{run.id}.t{i}", key=f"1.B{i}", agent="B1", iteration=1, input={})
                for i in range(8)
            ]
            await store.create_tasks(
                run.id, "ideation", 1, tasks, EventDraft(type="phase.progress", phase="ideation")
            )
            mark = EventDraft(type="budget.throttled", payload={"mark": "phase:ideation:t"})
            appended = await UsageStore(store).announce(run.id, [mark, mark])
            assert len(appended) == 1  # the same mark is announced once

            async def claim(held: list[str]) -> int:
                found = await claim_within_budget(
                    store, None, owner="me", now=1e12, free=8, concurrency=8, held=held
                )
                return len(found)

            assert await claim([]) == 4  # half of 8
            assert await claim([run.id] * 4) == 0  # it holds its half already
            await service.add_budget(store, run.id, {"tokens": 10})
            assert await UsageStore(store).throttled_runs() == frozenset()
            assert await claim([run.id] * 4) == 4  # the rest
        finally:
            await store.close()

    asyncio.run(go())


def test_the_caller_checks_the_budget_after_a_cache_miss_and_before_sending() -> None:
    """Invariant 6 at the call site: the cache first (a hit never asks the budget), then the
    budget with the worst case (prompt chars / 4 + max_tokens, priced), then the provider."""
    cache = MemoryCallCache()
    caller = ModelCaller(
        provider=OfflineProvider(),
        reference="offline:template",
        cache=cache,
        breaker=CircuitBreaker(name="offline", failure_threshold=3),
        policy=DEFAULT_POLICY,
        price=Price(input_per_mtok=1.0, output_per_mtok=2.0),
    )
    request = ModelRequest(
        agent="A",
        model="template",
        prompt="x" * 40,
        schema={"type": "object"},
        temperature=0.2,
        max_tokens=50,
        timeout_seconds=5.0,
        offline_template='{"a": 1}',
    )
    asked: list[Amounts] = []
    rows: list[ModelCallRecord] = []

    async def refuse(worst: Amounts) -> None:
        asked.append(worst)
        raise BudgetExceededError(
            "r",
            scope="phase",
            name="p",
            resource="tokens",
            used=0,
            request=60,
            limit=1,
            suggested=100,
        )

    async def allow(worst: Amounts) -> None:
        asked.append(worst)

    async def go() -> None:
        with pytest.raises(BudgetExceededError):
            await caller.call(request, record=rows.append, budget=refuse)
        assert rows == [] and await cache.get(cache_key("offline", request)) is None  # not sent
        assert await caller.call(request, record=rows.append, budget=allow) == '{"a":1}'
        assert await caller.call(request, record=rows.append, budget=refuse) == '{"a":1}'
        assert [row.outcome for row in rows] == ["ok", "cached"]

    asyncio.run(go())
    assert asked == [Amounts(tokens=10 + 50, usd=(10 * 1.0 + 50 * 2.0) / 1e6)] * 2
