"""The real ``openai`` and ``anthropic`` SDK clients against a local HTTP server
(``tests/support/fake_llm_server.py``): success, streaming, invalid JSON then one repair,
429 with retry-after, 500s opening the circuit breaker and falling back, a hang cut by the
task timeout, an auth error failing fast with a hint, the call cache, and keys kept secret."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from tests.support.configs import phase_document
from tests.support.fake_llm_server import FakeLLMServer, Scripted

from ideamine import service
from ideamine.agents.base import AgentContext
from ideamine.agents.builtin import ModelAgent
from ideamine.config.loader import load_pipeline
from ideamine.config.model import (
    AgentSpec,
    BackoffSpec,
    PipelineSpec,
    Price,
    ProviderSpec,
)
from ideamine.engine.states import RunStatus
from ideamine.errors import UsageError
from ideamine.llm.failures import ErrorClass, ModelOutputError, ProviderError
from ideamine.llm.registry import Providers
from ideamine.runtime.runner import Runner
from ideamine.stores.records import EventRecord

KEY = "sk-test-9f8e7d6c5b4a39281706"
SCHEMA = {
    "type": "object",
    "required": ["title", "users"],
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "users": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    },
}
GOOD = json.dumps({"title": "Farm to table", "users": ["farmers", "restaurants"]})
FAST = BackoffSpec(max_attempts=5, base_delay_ms=1, max_delay_ms=5)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as running:
        yield running


def _providers_spec(server: FakeLLMServer, **openai: object) -> dict[str, ProviderSpec]:
    return {
        "openai": ProviderSpec(
            name="openai",
            base_url=server.openai_url,
            transient=FAST,
            rate_limit=BackoffSpec(max_attempts=3, base_delay_ms=1, max_delay_ms=3000),
            **openai,  # type: ignore[arg-type]
        ),
        "anthropic": ProviderSpec(name="anthropic", base_url=server.url, transient=FAST),
    }


def _pipeline(models: tuple[str, ...], providers: Mapping[str, ProviderSpec]) -> PipelineSpec:
    return PipelineSpec(
        name="t",
        version="1",
        default_model=models[0],
        default_models=models,
        phases=(),
        agents={},
        pricing={
            "openai:gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.6),
            "anthropic:claude-haiku-4-5": Price(input_per_mtok=1.0, output_per_mtok=5.0),
        },
        manifest={},
        manifest_hash="x",
        providers=providers,
    )


def _spec(max_tokens: int = 500) -> AgentSpec:
    return AgentSpec(
        name="AskAgent",
        phase="intake",
        role="test",
        artifact_types=("IntakeResult",),
        output_schema=SCHEMA,
        prompt="Describe {{ idea.text }} as JSON.",
        offline='{"title": "offline title", "users": ["users"]}',
        max_tokens=max_tokens,
        timeout_seconds=30,
    )


def _ctx(spec: AgentSpec) -> AgentContext:
    return AgentContext(
        run_id="r1",
        phase="intake",
        attempt=1,
        key="001.AskAgent",
        iteration=1,
        spec=spec,
        values={"idea": {"text": "a farm marketplace", "constraints": {}}},
    )


def _agent(
    models: tuple[str, ...],
    server: FakeLLMServer,
    *,
    max_tokens: int = 500,
    providers: Providers | None = None,
    **openai: object,
) -> ModelAgent:
    env = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY}
    return ModelAgent(
        _spec(max_tokens),
        _pipeline(models, _providers_spec(server, **openai)),
        providers or Providers(environ=env, jitter=lambda: 0.0),
    )


def test_openai_success_records_tokens_cost_and_sends_the_schema(server: FakeLLMServer) -> None:
    server.script("openai", Scripted(content=GOOD))
    ctx = _ctx(_spec())
    result = asyncio.run(_agent(("openai:gpt-4o-mini",), server).run(ctx))

    assert result.output == json.loads(GOOD)
    [call] = result.calls
    assert (call.provider, call.model, call.outcome) == ("openai", "gpt-4o-mini", "ok")
    assert call.tokens_in > 0 and call.tokens_out > 0
    assert call.cost_usd == pytest.approx((call.tokens_in * 0.15 + call.tokens_out * 0.6) / 1e6)
    [sent] = server.requests("openai")
    assert sent.body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert sent.prompt == "Describe a farm marketplace as JSON."
    assert sent.headers["authorization"] == f"Bearer {KEY}"


def test_openai_streams_long_replies_and_reports_progress(server: FakeLLMServer) -> None:
    """A reply that may be long is streamed; progress heartbeats arrive while it streams."""
    server.script("openai", Scripted(content=GOOD, chunks=12, chunk_delay=0.15))
    beats: list[float] = []
    progress: list[Mapping[str, object]] = []

    async def beat() -> None:
        beats.append(time.monotonic())

    async def emit(payload: Mapping[str, object]) -> None:
        progress.append(payload)

    ctx = _ctx(_spec(4000))
    ctx._beat, ctx._emit = beat, emit
    result = asyncio.run(_agent(("openai:gpt-4o-mini",), server, max_tokens=4000).run(ctx))

    assert result.output == json.loads(GOOD)
    assert server.requests("openai")[0].body["stream"] is True
    assert beats, "no heartbeat while the reply streamed"
    assert all(p["model"] == "openai:gpt-4o-mini" for p in progress)
    assert result.calls[0].tokens_out > 0


def test_invalid_json_gets_one_repair_call_carrying_the_error(server: FakeLLMServer) -> None:
    server.script(
        "openai",
        Scripted(content='{"title": "ok"'),
        Scripted(content=GOOD),
    )
    result = asyncio.run(_agent(("openai:gpt-4o-mini",), server).run(_ctx(_spec())))

    assert result.output == json.loads(GOOD)
    assert [c.outcome for c in result.calls] == ["ok", "ok"]
    assert [c.params["purpose"] for c in result.calls] == ["answer", "repair"]
    repair = server.requests("openai")[1].prompt
    assert "reply is not JSON" in repair and '{"title": "ok"' in repair


def test_a_reply_holding_nan_gets_a_repair_call_instead_of_reaching_the_store(
    server: FakeLLMServer,
) -> None:
    """Python's json reads ``NaN`` and no schema type rejects it, but it is not JSON (and no
    store keeps it): the reply is repaired once, like any other invalid reply."""
    nan = '{"title": "Farm to table", "users": ["farmers"], "score": NaN}'
    server.script("openai", Scripted(content=nan), Scripted(content=GOOD))
    result = asyncio.run(_agent(("openai:gpt-4o-mini",), server).run(_ctx(_spec())))

    assert result.output == json.loads(GOOD)
    assert [c.params["purpose"] for c in result.calls] == ["answer", "repair"]
    assert "NaN is not a JSON value" in server.requests("openai")[1].prompt


def test_output_still_invalid_after_repair_fails_with_a_clear_error(
    server: FakeLLMServer,
) -> None:
    server.script(
        "openai",
        Scripted(content=json.dumps({"title": "x"})),
        Scripted(content=json.dumps({"title": "ab", "users": []})),
    )
    with pytest.raises(ModelOutputError) as caught:
        asyncio.run(_agent(("openai:gpt-4o-mini",), server).run(_ctx(_spec())))

    assert "after one repair call" in str(caught.value)
    assert "users" in str(caught.value)
    assert caught.value.hint
    assert len(server.requests("openai")) == 2  # one answer, one repair, no more
    assert "'users' is a required property" in server.requests("openai")[1].prompt


def test_rate_limit_honours_retry_after(server: FakeLLMServer) -> None:
    server.script(
        "openai",
        Scripted(status=429, headers={"retry-after": "1"}, message="slow down"),
        Scripted(content=GOOD),
    )
    ctx = _ctx(_spec())
    started = time.monotonic()
    result = asyncio.run(_agent(("openai:gpt-4o-mini",), server).run(ctx))

    assert time.monotonic() - started >= 1.0
    assert [c.outcome for c in result.calls] == ["rate-limit", "ok"]
    assert result.calls[0].tokens_in == 0 and result.calls[0].cost_usd == 0


def test_auth_error_fails_fast_with_a_hint_and_never_shows_the_key(
    server: FakeLLMServer,
) -> None:
    server.api_key = "sk-the-right-key-0000000000"
    ctx = _ctx(_spec())
    with pytest.raises(ProviderError) as caught:
        asyncio.run(_agent(("openai:gpt-4o-mini",), server).run(ctx))

    error = caught.value
    assert error.error_class is ErrorClass.AUTH and not error.retryable
    assert len(server.requests("openai")) == 1  # never retried
    assert "OPENAI_API_KEY" in error.hint
    assert KEY not in str(error) and KEY not in error.hint
    assert "***" in str(error)  # the server quoted the key; IdeaMine redacted it
    assert [c.outcome for c in ctx.calls] == ["auth"]


def test_anthropic_tool_use_success_streaming_and_not(server: FakeLLMServer) -> None:
    server.script("anthropic", Scripted(content=GOOD), Scripted(content=GOOD, chunks=6))
    short = asyncio.run(_agent(("anthropic:claude-haiku-4-5",), server).run(_ctx(_spec())))
    long = asyncio.run(
        _agent(("anthropic:claude-haiku-4-5",), server, max_tokens=4000).run(_ctx(_spec(4000)))
    )

    assert short.output == long.output == json.loads(GOOD)
    first, second = server.requests("anthropic")
    assert first.body["tool_choice"] == {"type": "tool", "name": "record_output"}
    assert first.body["tools"][0]["input_schema"] == SCHEMA
    assert first.headers["x-api-key"] == KEY
    assert second.body["stream"] is True
    assert short.calls[0].cost_usd > 0


def test_identical_calls_are_served_from_the_call_cache(server: FakeLLMServer) -> None:
    server.script("openai", Scripted(content=GOOD))
    providers = Providers(environ={"OPENAI_API_KEY": KEY})
    agent = _agent(("openai:gpt-4o-mini",), server, providers=providers)
    first = asyncio.run(agent.run(_ctx(_spec())))
    second = asyncio.run(agent.run(_ctx(_spec())))

    assert first.output == second.output
    assert len(server.requests("openai")) == 1
    [hit] = second.calls
    assert hit.outcome == "cached" and hit.tokens_in == 0 and hit.cost_usd == 0
    assert hit.params["cache_key"] == first.calls[0].params["cache_key"]


def test_a_missing_key_is_refused_before_any_call(server: FakeLLMServer) -> None:
    with pytest.raises(UsageError) as caught:
        ModelAgent(
            _spec(),
            _pipeline(("openai:gpt-4o",), {"openai": ProviderSpec(name="openai")}),
            Providers(environ={}),
        )
    assert "$OPENAI_API_KEY is not set" in str(caught.value)
    assert "--model offline:template" in caught.value.hint


# -- through the runner and the store ---------------------------------------------------------


def _write_config(root: Path, server: FakeLLMServer, model: object, **agent: object) -> Path:
    (root / "phases").mkdir(parents=True)
    (root / "agents").mkdir()
    (root / "schemas").mkdir()
    fast = {"max_attempts": 5, "base_delay_ms": 1, "max_delay_ms": 5}
    pipeline = {
        "name": "providers",
        "version": "1",
        "phases": ["intake"],
        "default_model": model,
        "pricing": {"openai:gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
        "providers": {
            "openai": {
                "base_url": server.openai_url,
                "transient": fast,
                "breaker": {"failure_threshold": 2, "reset_seconds": 60},
            },
            "anthropic": {"base_url": server.url, "transient": fast},
        },
    }
    (root / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    phase = phase_document("intake", [], ["AskAgent"], retries=1)
    (root / "phases" / "intake.yaml").write_text(yaml.safe_dump(phase))
    (root / "schemas" / "IntakeResult.yaml").write_text(yaml.safe_dump({"type": "object"}))
    document = {
        "name": "AskAgent",
        "phase": "intake",
        "role": "test agent",
        "artifact_type": "IntakeResult",
        "output_schema": SCHEMA,
        "prompt": "Describe {{ idea.text }} as JSON.",
        "offline": '{"title": "offline title", "users": ["users"]}',
        "max_tokens": 500,
        **agent,
    }
    (root / "agents" / "AskAgent.yaml").write_text(yaml.safe_dump(document))
    return root


def _drive(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[RunStatus, str | None, list[EventRecord], list[dict[str, object]]]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)

    async def go() -> tuple[RunStatus, str | None, list[EventRecord], list[dict[str, object]]]:
        pipeline = load_pipeline(config)
        store = await service.open_store(str(tmp_path / "p.db"))
        try:
            run = await service.create_run(
                store,
                pipeline,
                "a farm marketplace",
                constraints={},
                source="cli",
                config_dir=config,
            )
            final = await Runner(store, pipeline).drive(run.id)
            events = await service.all_events(store, run.id)
            return final.status, final.error, events, await store.model_calls(run.id)
        finally:
            await store.close()

    return asyncio.run(go())


def test_500s_open_the_breaker_and_the_chain_falls_back(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openai answers 500 every time: after 2 failures its breaker opens (no third try of
    the 5 the policy allows), and the agent moves on to anthropic with a task.retry event."""
    server.script("openai", *[Scripted(status=500, message="boom")] * 10)
    server.script("anthropic", Scripted(content=GOOD))
    chain = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
    config = _write_config(tmp_path / "cfg", server, chain)

    status, error, events, calls = _drive(tmp_path, config, monkeypatch)

    assert status is RunStatus.COMPLETED, error
    assert len(server.requests("openai")) == 2  # the breaker stopped the retries
    assert len(server.requests("anthropic")) == 1
    fallback = [e for e in events if e.type == "task.retry"]
    assert [e.payload["strategy"] for e in fallback] == ["fallback-model"]
    assert fallback[0].payload["from"] == chain[0]
    assert fallback[0].payload["to"] == chain[1]
    assert "circuit breaker open" in str(fallback[0].payload["error"])
    assert [(c["provider"], c["outcome"]) for c in calls] == [
        ("openai", "transient"),
        ("openai", "transient"),
        ("anthropic", "ok"),
    ]


def test_a_hung_provider_is_cut_by_the_task_timeout(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script("openai", Scripted(content=GOOD, delay=30))
    config = _write_config(tmp_path / "cfg", server, "openai:gpt-4o-mini", timeout_seconds=1)

    started = time.monotonic()
    status, _, events, calls = _drive(tmp_path, config, monkeypatch)

    assert time.monotonic() - started < 15
    assert status is RunStatus.FAILED
    failed = [e for e in events if e.type == "task.failed"]
    assert "timed out after 1 s" in str(failed[0].payload["error"])
    assert [c["outcome"] for c in calls] == ["cancelled"]  # the cut call is on record


def test_no_secret_in_the_store_after_failures(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.api_key = "sk-the-right-key-0000000000"  # every call fails with 401 quoting KEY
    config = _write_config(tmp_path / "cfg", server, ["openai:gpt-4o-mini", "offline:template"])

    status, error, events, _ = _drive(tmp_path, config, monkeypatch)

    assert status is RunStatus.COMPLETED, error  # fell back to offline after the auth error
    assert any(e.payload.get("strategy") == "fallback-model" for e in events)
    for path in tmp_path.glob("p.db*"):
        assert KEY.encode() not in path.read_bytes()
