"""The two kinds of agent a YAML file can define: a model agent and a Python callable."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from ideamine.agents.base import Agent, AgentContext, AgentResult
from ideamine.agents.render import render_prompt
from ideamine.canonical import canonical_json, sha256_hex
from ideamine.config.model import AgentSpec, PipelineSpec
from ideamine.errors import AgentError, OutputSchemaError, UsageError
from ideamine.llm.base import ModelRequest, cost_usd
from ideamine.llm.registry import Providers
from ideamine.stores.records import ModelCallRecord

__all__ = ["CallableAgent", "ModelAgent", "build_agent", "validate_output"]


def validate_output(agent: str, schema: Mapping[str, Any], output: object) -> None:
    """Raise ``OutputSchemaError`` naming the first problems if ``output`` does not match."""
    errors = sorted(
        Draft202012Validator(schema).iter_errors(output),
        key=lambda error: list(map(str, error.absolute_path)),
    )
    if errors:
        shown = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:3]
        )
        raise OutputSchemaError(agent, shown)


class ModelAgent:
    """Renders its prompt, asks its model, and validates the JSON it gets back."""

    def __init__(self, spec: AgentSpec, pipeline: PipelineSpec, providers: Providers) -> None:
        self.spec = spec
        self._reference = pipeline.model_for(spec)
        self._price = pipeline.pricing.get(self._reference)
        self._provider, self._model = providers.resolve(self._reference)

    async def run(self, ctx: AgentContext) -> AgentResult:
        assert self.spec.prompt is not None  # guaranteed by config validation
        prompt = render_prompt(self.spec.prompt, ctx.values, agent=self.spec.name)
        request = ModelRequest(
            agent=self.spec.name,
            model=self._model,
            prompt=prompt,
            schema=self.spec.output_schema,
            temperature=self.spec.temperature,
            max_tokens=self.spec.max_tokens,
            timeout_seconds=self.spec.timeout_seconds,
            offline_template=self.spec.offline,
            context=ctx.values,
        )
        started = time.perf_counter()
        response = await self._provider.complete(request)
        latency = (time.perf_counter() - started) * 1000
        call = ModelCallRecord(
            provider=self._provider.name,
            model=self._model,
            prompt_hash=sha256_hex(prompt),
            params={"temperature": self.spec.temperature, "max_tokens": self.spec.max_tokens},
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            cost_usd=cost_usd(self._price, response.tokens_in, response.tokens_out),
            latency_ms=round(latency, 3),
            outcome="ok",
        )
        validate_output(self.spec.name, self.spec.output_schema, response.output)
        return AgentResult(output=response.output, calls=(call,))


class CallableAgent:
    """Calls ``module:function`` with the context (sync functions run on a thread)."""

    def __init__(self, spec: AgentSpec) -> None:
        assert spec.callable is not None
        self.spec = spec
        self._function = _import(spec.callable, spec.name)

    async def run(self, ctx: AgentContext) -> AgentResult:
        if inspect.iscoroutinefunction(self._function):
            output = await self._function(ctx)
        else:
            output = await asyncio.to_thread(self._function, ctx)
        try:
            canonical_json(output)
        except (TypeError, ValueError) as exc:
            raise AgentError(self.spec.name, f"returned a value that is not JSON: {exc}") from exc
        validate_output(self.spec.name, self.spec.output_schema, output)
        return AgentResult(output=output)


def _import(reference: str, agent: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            f"agent {agent}: cannot import callable {reference!r} ({exc})",
            hint="check the module is importable (on PYTHONPATH) and the name",
        ) from exc


def build_agent(spec: AgentSpec, pipeline: PipelineSpec, providers: Providers) -> Agent:
    """The agent a spec describes."""
    if spec.callable is not None:
        return CallableAgent(spec)
    return ModelAgent(spec, pipeline, providers)
