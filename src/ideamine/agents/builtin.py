"""The two kinds of agent a YAML file can define: a model agent and a Python callable."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ideamine.agents.base import Agent, AgentContext, AgentResult
from ideamine.agents.quickcheck import Check, compile_check
from ideamine.canonical import canonical_json
from ideamine.config.model import AgentSpec, PipelineSpec
from ideamine.errors import AgentError, OutputSchemaError, UsageError
from ideamine.llm.base import ModelRequest, parse_json_reply
from ideamine.llm.cache import CallCache
from ideamine.llm.failures import (
    CircuitOpenError,
    ModelOutputError,
    ProviderError,
    ReplayMissError,
)
from ideamine.llm.registry import Providers, split_reference
from ideamine.stores.ahead import behind
from ideamine.stores.callcache import call_cache_for

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = ["CallableAgent", "ModelAgent", "build_agent", "repair_prompt", "validate_output"]

REPAIR_REPLY_CHARS = 4000
BREAKER_RECHECK_SECONDS = 0.5  # how often a task waiting for an open breaker looks again


_BY_ID: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}
_BY_CONTENT: dict[str, Draft202012Validator] = {}
_QUICK: dict[int, tuple[Mapping[str, Any], Check]] = {}
_MAX_VALIDATORS = 4096
_T = TypeVar("_T")


def _unsure(instance: object) -> bool:
    return False


def _per_schema(
    cache: dict[int, tuple[Mapping[str, Any], _T]],
    schema: Mapping[str, Any],
    make: Callable[[Mapping[str, Any]], _T],
) -> _T:
    """``make(schema)``, once per schema object: every task of an agent checks its output
    against the same one. The cache holds the schema itself, so its id cannot be reused by
    another object while the entry lives."""
    held = cache.get(id(schema))
    if held is not None and held[0] is schema:
        return held[1]
    if len(cache) >= _MAX_VALIDATORS:
        cache.clear()
    made = make(schema)
    cache[id(schema)] = (schema, made)
    return made


def _quick(schema: Mapping[str, Any]) -> Check:
    """The quick check of ``schema`` (``agents.quickcheck``); one that is never sure when
    the schema is beyond it."""
    return _per_schema(_QUICK, schema, lambda s: compile_check(s) or _unsure)


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """The validator of ``schema``, built once per distinct schema (the agents of a wide
    phase often have equal schemas, and a validator costs more to build than to run)."""
    return _per_schema(_BY_ID, schema, _build_validator)


def _build_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    if len(_BY_CONTENT) >= _MAX_VALIDATORS:
        _BY_CONTENT.clear()
    # jsonschema is imported by the first check, not with the runtime: a run's first agents
    # start without waiting for it (``runtime.preload`` imports it while they run)
    from ideamine.jsonschemas import Draft202012Validator  # noqa: PLC0415

    try:
        text = canonical_json(schema)
    except (TypeError, ValueError):  # a YAML date or the like: this object's own validator
        validator = Draft202012Validator(schema)
    else:
        if text not in _BY_CONTENT:
            _BY_CONTENT[text] = Draft202012Validator(schema)
        validator = _BY_CONTENT[text]
    return validator


def validate_output(agent: str, schema: Mapping[str, Any], output: object) -> None:
    """Raise ``OutputSchemaError`` naming the first problems if ``output`` does not match."""
    if _quick(schema)(output):
        return  # certainly valid: jsonschema need not be asked
    errors = sorted(
        _validator(schema).iter_errors(output),
        key=lambda error: list(map(str, error.absolute_path)),
    )
    if errors:
        shown = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:3]
        )
        raise OutputSchemaError(agent, shown)


class ModelAgent:
    """Renders its prompt and asks the models of its fallback chain, first to last, for JSON
    that validates against its schema.

    Each call passes the call cache, then the budget check ``ctx.budget`` (invariant 6). An
    invalid reply gets one repair call that carries the validation error; if that fails too
    the task fails with ``ModelOutputError``. A provider failure that survives the retry
    policy (or an open circuit breaker) moves to the next model with a ``task.retry`` event
    (strategy ``fallback-model``); the last model's open breaker is waited for instead (within
    the task timeout). Nothing is ever made up when every model fails: the task fails.
    """

    def __init__(self, spec: AgentSpec, pipeline: PipelineSpec, providers: Providers) -> None:
        self.spec = spec
        self._pipeline = pipeline
        self._providers = providers
        self._chain = pipeline.models_for(spec)
        problems = [self._key_problem(reference) for reference in self._chain]
        if not providers.replay and all(problems):
            raise UsageError(
                f"agent {spec.name}: no model it may use can be called "
                f"({', '.join(self._chain)}): {problems[0]}",
                hint="set the API key variable, or run on the offline model with "
                "--model offline:template",
            )

    @property
    def chain_length(self) -> int:
        """How many models the agent's fallback chain holds."""
        return len(self._chain)

    def _key_problem(self, reference: str) -> str | None:
        name, _ = split_reference(reference)
        return self._providers.key_problem(reference, self._pipeline.provider(name))

    async def run(self, ctx: AgentContext) -> AgentResult:
        assert self.spec.prompt is not None  # guaranteed by config validation
        from ideamine.agents.render import render_prompt  # noqa: PLC0415  (Jinja2: model agents)

        prompt = render_prompt(self.spec.prompt, ctx.values, agent=self.spec.name)
        cache = call_cache_for(ctx.store, self._providers.memory)
        chain = await self._chain_for(ctx.run_id, cache)
        index = min(max(ctx.model_shift, 0), len(chain) - 1)
        while True:
            try:
                output = await self._answer(ctx, chain[index], prompt, cache)
            except CircuitOpenError as exc:
                if index == len(chain) - 1:
                    # Nothing left to fall back to: wait until the breaker lets a trial call
                    # through and ask again (the task timeout bounds the wait). Failing here
                    # failed the task for good (an open breaker is not retryable), and with it
                    # the run, for a provider outage that passes (SPEC §10, chaos).
                    await self._providers.pause(max(exc.reopens_in, BREAKER_RECHECK_SECONDS))
                    continue
                failure: AgentError = exc
            except (ProviderError, ReplayMissError) as exc:
                if index == len(chain) - 1:
                    raise
                failure = exc
            else:
                return AgentResult(output=output, calls=tuple(ctx.calls))
            index += 1
            await ctx.note(
                "task.retry",
                {
                    "strategy": "fallback-model",
                    "from": chain[index - 1],
                    "to": chain[index],
                    "error": str(failure),
                },
            )

    async def _chain_for(self, run_id: str, cache: CallCache) -> tuple[str, ...]:
        """The chain for this run: a ``--model`` override is pinned to the run on first use,
        so resume and replay keep using it."""
        override = self._pipeline.model_override
        if override:
            return (await cache.pin_run_model(run_id, override),)
        pinned = await cache.run_model(run_id)
        return (pinned,) if pinned else self._chain

    async def _answer(
        self, ctx: AgentContext, reference: str, prompt: str, cache: CallCache
    ) -> object:
        caller = self._providers.caller(reference, self._pipeline, cache)
        request = ModelRequest(
            agent=self.spec.name,
            model=split_reference(reference)[1],
            prompt=prompt,
            schema=self.spec.output_schema,
            temperature=self.spec.temperature,
            max_tokens=self.spec.max_tokens,
            timeout_seconds=self.spec.timeout_seconds,
            offline_template=self.spec.offline,
            context=ctx.values,
        )

        async def progress(chars: int) -> None:
            await ctx.heartbeat()
            await ctx.emit({"model": reference, "streamed_chars": chars})

        text = await caller.call(
            request, record=ctx.record_call, progress=progress, budget=ctx.budget
        )
        if caller.provider.name == "offline":  # a template cannot repair itself
            output = parse_json_reply(text)
            validate_output(self.spec.name, self.spec.output_schema, output)
            return output
        output, problem = self._check(text)
        if not problem:
            return output
        repair = replace(request, prompt=repair_prompt(prompt, text, problem))
        text = await caller.call(
            repair, record=ctx.record_call, purpose="repair", progress=progress, budget=ctx.budget
        )
        output, problem = self._check(text)
        if problem:
            raise ModelOutputError(self.spec.name, model=reference, detail=problem)
        return output

    def _check(self, text: str) -> tuple[object, str]:
        """The reply's JSON value and ``""``, or ``None`` and what is wrong with it."""
        try:
            output = parse_json_reply(text)
            validate_output(self.spec.name, self.spec.output_schema, output)
        except ValueError as exc:
            return None, str(exc)
        except OutputSchemaError as exc:
            return None, exc.detail
        return output, ""


def repair_prompt(prompt: str, reply: str, problem: str) -> str:
    """The prompt of the one repair call: the original, the bad reply, and what is wrong."""
    shown = reply if len(reply) <= REPAIR_REPLY_CHARS else reply[:REPAIR_REPLY_CHARS] + " …"
    return (
        f"{prompt}\n\nYour previous reply was rejected.\nReply:\n{shown}\n\n"
        f"Validation error: {problem}\n\nReply again with one JSON object that fixes "
        "this and matches the schema, and nothing else."
    )


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
            # a thread cannot be cancelled: a task handed out ahead of the commit that claims
            # it (``stores.ahead``), which may yet be revoked, starts one only once it is in
            if (settling := behind()) is not None:
                await settling
            output = await asyncio.to_thread(self._function, ctx)
        try:
            text = canonical_json(output)
        except (TypeError, ValueError) as exc:
            raise AgentError(self.spec.name, f"returned a value that is not JSON: {exc}") from exc
        validate_output(self.spec.name, self.spec.output_schema, output)
        return AgentResult(output=output, text=text)


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
