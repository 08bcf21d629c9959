"""Which models an agent runs on: YAML chains per agent, phase and pipeline, ``--model``,
provider settings, and how ``ModelAgent`` walks its chain (offline, no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from tests.support.configs import write_callable_pipeline

from ideamine.agents.base import AgentContext
from ideamine.agents.builtin import ModelAgent, repair_prompt
from ideamine.config.loader import load_pipeline
from ideamine.config.model import AgentSpec, PipelineSpec
from ideamine.errors import ConfigError, OutputSchemaError, UsageError
from ideamine.llm.cache import MemoryCallCache
from ideamine.llm.registry import Providers, split_reference

DAG = {"intake": [], "ideation": ["intake"]}


def _config(tmp_path: Path) -> Path:
    root = write_callable_pipeline(tmp_path / "cfg", DAG, agents_per_phase=1)
    for name in ("IntakeAgent0", "IdeationAgent0"):
        path = root / "agents" / f"{name}.yaml"
        document = yaml.safe_load(path.read_text())
        del document["callable"]
        document["prompt"] = "Say {{ idea.text }}"
        document["offline"] = "value: {said: {{ idea.text | tojson }}}"
        path.write_text(yaml.safe_dump(document))
    return root


def _edit(path: Path, **changes: object) -> None:
    document = yaml.safe_load(path.read_text())
    document.update(changes)
    path.write_text(yaml.safe_dump(document))


def test_chains_come_from_agent_then_phase_then_pipeline(tmp_path: Path) -> None:
    root = _config(tmp_path)
    _edit(root / "pipeline.yaml", default_model=["openai:gpt-4o", "offline:template"])
    _edit(root / "phases" / "ideation.yaml", model="anthropic:claude-haiku-4-5")
    _edit(root / "agents" / "IntakeAgent0.yaml", model=["anthropic:a", "openai:b", "openai:b"])
    pipeline = load_pipeline(root)

    assert pipeline.models_for(pipeline.agents["IntakeAgent0"]) == ("anthropic:a", "openai:b")
    assert pipeline.models_for(pipeline.agents["IdeationAgent0"]) == ("anthropic:claude-haiku-4-5",)
    assert pipeline.default_model == "openai:gpt-4o"
    bare = AgentSpec(name="X", phase="intake", role="r", artifact_types=("T",), output_schema={})
    assert pipeline.models_for(bare) == ("openai:gpt-4o", "offline:template")


def test_model_flag_replaces_every_choice(tmp_path: Path) -> None:
    root = _config(tmp_path)
    _edit(root / "agents" / "IntakeAgent0.yaml", model=["anthropic:a", "openai:b"])
    pipeline = load_pipeline(root).with_model("openai:gpt-4o-mini")

    for agent in pipeline.agents.values():
        assert pipeline.models_for(agent) == ("openai:gpt-4o-mini",)
    assert pipeline.default_model == "openai:gpt-4o-mini"
    assert load_pipeline(root).with_model(None) == load_pipeline(root)


def test_a_bad_chain_entry_is_reported_once_with_its_place(tmp_path: Path) -> None:
    root = _config(tmp_path)
    _edit(root / "agents" / "IntakeAgent0.yaml", model=["openai:gpt-4o", "gpt4"])
    with pytest.raises(ConfigError) as caught:
        load_pipeline(root)
    [problem] = caught.value.problems
    assert problem.field == "model"
    assert "string should match pattern" in problem.problem
    assert "(entry 1: 'gpt4')" in problem.problem


def test_provider_settings_are_read_and_checked(tmp_path: Path) -> None:
    root = _config(tmp_path)
    _edit(
        root / "pipeline.yaml",
        providers={
            "openai": {
                "base_url": "http://localhost:11434/v1",
                "api_key_env": "OLLAMA_KEY",
                "structured_output": "json_object",
                "transient": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 20},
                "breaker": {"failure_threshold": 2, "reset_seconds": 5},
            }
        },
    )
    spec = load_pipeline(root).provider("openai")
    assert (spec.base_url, spec.api_key_env, spec.structured_output) == (
        "http://localhost:11434/v1",
        "OLLAMA_KEY",
        "json_object",
    )
    assert spec.breaker_failures == 2 and spec.transient is not None
    assert load_pipeline(root).provider("anthropic").api_key_env is None

    _edit(root / "pipeline.yaml", providers={"gemini": {}})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(root)
    assert caught.value.problems[0].field.startswith("providers")


def test_unknown_providers_and_malformed_references_are_usage_errors() -> None:
    assert split_reference("openai:gpt-4o") == ("openai", "gpt-4o")
    with pytest.raises(UsageError, match="unknown model provider 'gemini'"):
        split_reference("gemini:pro")
    with pytest.raises(UsageError, match="not provider:model"):
        split_reference("offline")


def _ctx(spec: AgentSpec, **changes: object) -> AgentContext:
    ctx = AgentContext(
        run_id="r1",
        phase=spec.phase,
        attempt=1,
        key="001.X",
        iteration=1,
        spec=spec,
        values={"idea": {"text": "farms", "constraints": {}}},
    )
    for name, value in changes.items():
        setattr(ctx, name, value)
    return ctx


def test_model_shift_starts_further_down_the_chain(tmp_path: Path) -> None:
    root = _config(tmp_path)
    _edit(root / "agents" / "IntakeAgent0.yaml", model=["openai:gpt-4o", "offline:template"])
    pipeline = load_pipeline(root)
    spec = pipeline.agents["IntakeAgent0"]
    agent = ModelAgent(spec, pipeline, Providers(environ={"OPENAI_API_KEY": "sk-unused-key"}))

    result = asyncio.run(agent.run(_ctx(spec, model_shift=1)))

    assert agent.chain_length == 2
    assert result.output == {"value": {"said": "farms"}}
    assert [(c.provider, c.outcome) for c in result.calls] == [("offline", "ok")]


def test_an_override_is_pinned_to_the_run_and_kept_on_resume(tmp_path: Path) -> None:
    pipeline = load_pipeline(_config(tmp_path))
    providers = Providers()
    spec = pipeline.agents["IntakeAgent0"]
    started = ModelAgent(spec, pipeline.with_model("offline:other"), providers)
    resumed = ModelAgent(spec, pipeline, providers)

    asyncio.run(started.run(_ctx(spec)))
    result = asyncio.run(resumed.run(_ctx(spec)))

    assert isinstance(providers.memory, MemoryCallCache)
    assert [c.model for c in result.calls] == ["other"]


def test_offline_output_that_breaks_the_schema_is_not_repaired(tmp_path: Path) -> None:
    root = _config(tmp_path)
    _edit(root / "agents" / "IntakeAgent0.yaml", offline="wrong: 1")
    pipeline = load_pipeline(root)
    spec = pipeline.agents["IntakeAgent0"]
    ctx = _ctx(spec)
    with pytest.raises(OutputSchemaError):
        asyncio.run(ModelAgent(spec, pipeline, Providers()).run(ctx))
    assert [c.params["purpose"] for c in ctx.calls] == ["answer"]


def test_the_repair_prompt_carries_the_reply_and_the_error() -> None:
    text = repair_prompt("PROMPT", "x" * 5000, "title: too short")
    assert text.startswith("PROMPT")
    assert "Validation error: title: too short" in text
    assert "x" * 4000 + " …" in text and "x" * 4001 not in text


def test_the_pipeline_spec_defaults_keep_working() -> None:
    spec = PipelineSpec(
        name="n",
        version="1",
        default_model="offline:template",
        phases=(),
        agents={},
        pricing={},
        manifest={},
        manifest_hash="h",
    )
    bare = AgentSpec(name="X", phase="p", role="r", artifact_types=("T",), output_schema={})
    assert spec.model_for(bare) == "offline:template"
    assert spec.provider("openai").stream_min_tokens == 1000
