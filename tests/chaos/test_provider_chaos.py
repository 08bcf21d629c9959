"""Chaos at the model provider: the real CLI runs a small model pipeline against the local
OpenAI-compatible server (``tests/support/fake_llm_server.py``) while the server follows a
seeded fault script: bursts of 5xx answers, 429s with ``retry-after``, and hangs longer than
the client's request timeout.

The run must retry through all of it and complete with nothing lost and nothing twice: every
planned fault is on record as one failed model call of its class, every agent's answer as one
``ok`` call, every task output once, every event once, the ledger chain verifying, and the
artifacts equal to those of an undisturbed run against the same server.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.acceptance.conftest import artifact_hashes, cli_env, ideamine, only_run_id
from tests.support.configs import OUTPUT_SCHEMA, phase_document
from tests.support.fake_llm_server import FakeLLMServer, FaultPlan, Received, Scripted

from ideamine.canonical import sha256_hex
from ideamine.stores.sqlite import SqliteStore

pytestmark = pytest.mark.slow

SEED = 20261126
KEY = "sk-chaos-3c2b1a0f9e8d7c6b5a49"
IDEA = "a marketplace for farmers"
DAG = {"intake": [], "ideation": ["intake"], "critique": ["ideation"]}
AGENTS_PER_PHASE = 3
REQUEST_TIMEOUT = 3.0  # seconds the client waits for a reply (providers.openai)
HANG = 8.0  # seconds a hung reply is held back: longer than the client waits
# SPEC §5's tries (transient 5, rate limit 10) and breaker (5 failures), with short delays
PROVIDER = {
    "request_timeout_seconds": REQUEST_TIMEOUT,
    "transient": {"max_attempts": 5, "base_delay_ms": 50, "max_delay_ms": 400},
    "rate_limit": {"max_attempts": 10, "base_delay_ms": 50, "max_delay_ms": 1000},
    "breaker": {"failure_threshold": 5, "reset_seconds": 2},
}


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _model_pipeline(root: Path, base_url: str) -> Path:
    """Three phases of three model agents each on ``openai:gpt-4o-mini`` at ``base_url``;
    even-numbered agents ask for long replies, so they stream."""
    for folder in ("phases", "agents", "schemas"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    pipeline = {
        "name": "provider-chaos",
        "version": "1",
        "phases": list(DAG),
        "default_model": "openai:gpt-4o-mini",
        "pricing": {"openai:gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
        "providers": {"openai": {"base_url": base_url, **PROVIDER}},
    }
    (root / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    for phase, deps in DAG.items():
        agents = [f"{_pascal(phase)}Agent{index}" for index in range(AGENTS_PER_PHASE)]
        document = phase_document(phase, deps, agents)
        # room for every try's worst case; the wall clock allows for the hangs
        document["budgets"] = {"tokens": 1_000_000, "wallclock_minutes": 10}
        (root / "phases" / f"{phase}.yaml").write_text(yaml.safe_dump(document))
        artifact = f"{_pascal(phase)}Result"
        (root / "schemas" / f"{artifact}.yaml").write_text(yaml.safe_dump({"type": "object"}))
        for index, agent in enumerate(agents):
            spec = {
                "name": agent,
                "phase": phase,
                "role": "test agent",
                "artifact_type": artifact,
                "output_schema": OUTPUT_SCHEMA,
                "prompt": f"{agent} of phase {phase}: describe {{{{ idea.text }}}} as JSON.",
                "offline": '{"value": {}}',
                "max_tokens": 2000 if index % 2 == 0 else 500,
                "timeout_seconds": 60,
            }
            (root / "agents" / f"{agent}.yaml").write_text(yaml.safe_dump(spec))
    return root


def _answer(request: Received) -> Scripted:
    """The same valid reply for the same prompt, whatever happened before."""
    digest = sha256_hex(request.prompt)[:16]
    return Scripted(content=json.dumps({"value": {digest: request.prompt[:40]}}), chunks=3)


def _fault_plan(chance: random.Random) -> list[Scripted | None]:
    """Bursts of faults with single good answers between them. Fewer good answers than the
    run needs, so the run cannot complete before it has been through every fault; one long
    5xx burst (an outage) opens the circuit breaker."""
    plan: list[Scripted | None] = [Scripted(status=503, message="chaos: outage")] * 7
    kinds = ["5xx", "429", "hang"] * 2
    chance.shuffle(kinds)
    for kind in kinds:
        plan.append(None)
        for _ in range(chance.randint(1, 3)):
            if kind == "5xx":
                status = chance.choice([500, 502, 503])
                plan.append(Scripted(status=status, message="chaos: server error"))
            elif kind == "429":
                wait = chance.choice(["0", "1"])
                plan.append(Scripted(status=429, headers={"retry-after": wait}, message="chaos"))
            else:
                plan.append(Scripted(delay=HANG))
    return plan


def _expected_outcomes(plan: list[Scripted | None]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for fault in plan:
        if fault is None:
            continue
        if fault.delay:
            counts["timeout"] += 1
        elif fault.status == 429:
            counts["rate-limit"] += 1
        else:
            counts["transient"] += 1
    counts["ok"] = len(DAG) * AGENTS_PER_PHASE  # one answer per agent, never asked again
    return counts


def _model_calls(db: Path, run_id: str) -> list[dict[str, object]]:
    async def load() -> list[dict[str, object]]:
        store = SqliteStore(db)
        try:
            return await store.model_calls(run_id)
        finally:
            await store.close()

    return asyncio.run(load())


def _ledger(cwd: Path, run_id: str, store: str) -> list[dict[str, object]]:
    listed = ideamine("events", run_id, "--json", "--store", store, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY, responder=_answer) as running:
        yield running


def test_provider_failing_and_hanging_for_a_while_the_run_retries_and_completes(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    """An outage of 7 straight 503s opens the provider's circuit breaker (no fallback model
    is configured: the agents wait for it to let a trial call through), then bursts of 5xx,
    429 and hangs in a seeded order; the run completes as an undisturbed one does."""
    config = str(_model_pipeline(tmp_path / "cfg", server.openai_url))
    env = cli_env({"OPENAI_API_KEY": KEY})

    calm = ideamine(
        "run", IDEA, "--config", config, "--store", "calm.db", "-q", cwd=tmp_path, env=env
    )
    assert calm.returncode == 0, calm.stdout + calm.stderr
    expected = artifact_hashes(tmp_path, only_run_id(tmp_path, "calm.db"), "calm.db")
    calm_requests = len(server.requests())
    assert calm_requests == len(DAG) * AGENTS_PER_PHASE

    plan = _fault_plan(random.Random(SEED))
    faults = FaultPlan(_answer, plan)
    server.responder = faults
    stormy = ideamine("run", IDEA, "--config", config, "--store", "chaos.db", cwd=tmp_path, env=env)
    assert stormy.returncode == 0, stormy.stdout + stormy.stderr
    run_id = only_run_id(tmp_path, "chaos.db")
    assert "completed" in stormy.stdout

    # every planned fault reached the client, and each is on record once, by its class
    assert faults.done, f"only {faults.served} of {len(plan)} planned replies were served"
    calls = _model_calls(tmp_path / "chaos.db", run_id)
    outcomes = Counter(str(call["outcome"]) for call in calls)
    assert outcomes == _expected_outcomes(plan)
    assert len(calls) == len(server.requests()) - calm_requests  # every request recorded
    answered = Counter((c["phase"], c["key"]) for c in calls if c["outcome"] == "ok")
    assert set(answered.values()) == {1}  # no agent's answer was asked for twice

    ledger = _ledger(tmp_path, run_id, "chaos.db")
    succeeded = Counter(e["task_id"] for e in ledger if e["type"] == "task.succeeded")
    assert succeeded and set(succeeded.values()) == {1}  # no task output recorded twice
    assert len({e["hash"] for e in ledger}) == len(ledger)  # no event recorded twice
    verified = ideamine("verify", run_id, "--store", "chaos.db", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert artifact_hashes(tmp_path, run_id, "chaos.db") == expected  # nothing lost
