"""Conversion of validated file models into the frozen values of ``ideamine.config.model``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ideamine.config.files import (
    AgentFile,
    BackoffEntry,
    CustomAggregation,
    PhaseFile,
    PipelineFile,
    ProviderEntry,
)
from ideamine.config.model import (
    AgentSpec,
    Aggregation,
    AggregationKind,
    ArtifactSpec,
    BackoffSpec,
    Budgets,
    FanOut,
    FanOutKind,
    GateSpec,
    GuardSpec,
    HeartbeatSpec,
    LoopSpec,
    PhaseSpec,
    PipelineSpec,
    Price,
    ProviderSpec,
    QavSpec,
    RetrySpec,
)

__all__ = ["artifact_types", "model_chain", "pipeline_spec"]


def artifact_types(agent: AgentFile) -> tuple[str, ...]:
    """The artifact types an agent produces (``artifact_type`` may be one name or a list)."""
    value = agent.artifact_type
    return (value,) if isinstance(value, str) else tuple(value)


def pipeline_spec(
    pipeline: PipelineFile,
    phases: Mapping[str, PhaseFile],
    agents: Mapping[str, AgentFile],
    schemas: Mapping[str, Any],
    manifest: Mapping[str, str],
    manifest_hash: str,
    files: Mapping[str, str],
    absent: frozenset[str] = frozenset(),
) -> PipelineSpec:
    """Freeze a validated configuration."""
    phase_models = {name: phase.model for name, phase in phases.items()}
    agent_specs = {
        name: _agent(agent, phase_models.get(agent.phase)) for name, agent in agents.items()
    }
    default_models = model_chain(pipeline.default_model)
    return PipelineSpec(
        name=pipeline.name,
        version=pipeline.version,
        default_model=default_models[0],
        default_models=default_models,
        providers={name: _provider(name, entry) for name, entry in pipeline.providers.items()},
        phases=tuple(_phase(phases[name], agent_specs, schemas) for name in pipeline.phases),
        agents=agent_specs,
        pricing={
            model: Price(input_per_mtok=p.input_per_mtok, output_per_mtok=p.output_per_mtok)
            for model, p in pipeline.pricing.items()
        },
        manifest=manifest,
        manifest_hash=manifest_hash,
        files=files,
        absent=absent,
        qav_agents={"question": pipeline.qav_agents.question, "answer": pipeline.qav_agents.answer},
        advisories=pipeline.advisories,
    )


def model_chain(choice: str | list[str] | None) -> tuple[str, ...]:
    """A ``model`` value (one reference or a list) as a fallback chain; empty for none."""
    if choice is None:
        return ()
    return (choice,) if isinstance(choice, str) else tuple(dict.fromkeys(choice))


def _backoff(entry: BackoffEntry | None) -> BackoffSpec | None:
    return None if entry is None else BackoffSpec(**entry.model_dump())


def _provider(name: str, entry: ProviderEntry) -> ProviderSpec:
    return ProviderSpec(
        name=name,
        base_url=entry.base_url,
        api_key_env=entry.api_key_env,
        structured_output=entry.structured_output,
        stream_min_tokens=entry.stream_min_tokens,
        request_timeout_seconds=entry.request_timeout_seconds,
        transient=_backoff(entry.transient),
        rate_limit=_backoff(entry.rate_limit),
        breaker_failures=entry.breaker.failure_threshold,
        breaker_reset_seconds=entry.breaker.reset_seconds,
    )


def _agent(agent: AgentFile, phase_model: str | list[str] | None = None) -> AgentSpec:
    models = model_chain(agent.model) or model_chain(phase_model)
    return AgentSpec(
        name=agent.name,
        phase=agent.phase,
        role=agent.role,
        artifact_types=artifact_types(agent),
        output_schema=agent.output_schema,
        prompt=agent.prompt,
        offline=agent.offline,
        callable=agent.callable,
        model=models[0] if models else None,
        models=models,
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
        timeout_seconds=agent.timeout_seconds,
        budget_tokens=agent.budget,
        tools=tuple(agent.tools),
        evidence=agent.evidence,
    )


def _fan_out(value: str | int, agent_count: int) -> FanOut:
    if isinstance(value, int):
        return FanOut(kind=FanOutKind.BATCH, limit=value)
    if value == "partial":
        return FanOut(kind=FanOutKind.PARTIAL, limit=max(1, -(-agent_count // 2)))
    if value in ("sequential", "iterative"):
        return FanOut(kind=FanOutKind(value), limit=1)
    return FanOut(kind=FanOutKind.PARALLEL)


def _aggregation(value: str | CustomAggregation) -> Aggregation:
    if isinstance(value, CustomAggregation):
        return Aggregation(kind=AggregationKind.CUSTOM, function=value.custom)
    return Aggregation(kind=AggregationKind(value))


def _phase(
    phase: PhaseFile, agents: Mapping[str, AgentSpec], schemas: Mapping[str, Any]
) -> PhaseSpec:
    aggregation = _aggregation(phase.aggregation)
    listed = {a.type: a.required for a in phase.artifacts}
    produced = [t for name in phase.agents for t in agents[name].artifact_types]
    artifacts = tuple(
        ArtifactSpec(
            type=t,
            required=listed.get(t, False),
            schema=_artifact_schema(t, phase, agents, schemas, aggregation),
        )
        for t in dict.fromkeys([*listed, *produced])
    )
    return PhaseSpec(
        name=phase.phase,
        description=phase.description,
        depends_on=tuple(phase.depends_on),
        fan_out=_fan_out(phase.parallelism, len(phase.agents)),
        aggregation=aggregation,
        agents=tuple(phase.agents),
        budgets=Budgets(**phase.budgets.model_dump()),
        guards=tuple(GuardSpec(type=g.type, config=g.config) for g in phase.guards),
        gate=GateSpec(**phase.gate.model_dump()),
        qav=QavSpec(**phase.qav.model_dump()),
        artifacts=artifacts,
        checkpoint_interval_minutes=phase.checkpoints.interval_minutes,
        retries=RetrySpec(**phase.retries.model_dump()),
        heartbeat=HeartbeatSpec(**phase.heartbeat.model_dump()),
        loop=LoopSpec(**phase.loop.model_dump()) if phase.loop else None,
        evidence_agents=frozenset(
            name for name in phase.agents if name in agents and agents[name].evidence
        ),
    )


def _artifact_schema(
    artifact_type: str,
    phase: PhaseFile,
    agents: Mapping[str, AgentSpec],
    schemas: Mapping[str, Any],
    aggregation: Aggregation,
) -> Mapping[str, Any]:
    """The schema an artifact validates against: its schemas/ file, else its producer's."""
    if artifact_type in schemas:
        return dict(schemas[artifact_type])
    producer = next(
        agents[name] for name in phase.agents if artifact_type in agents[name].artifact_types
    )
    schema: Mapping[str, Any] = producer.output_schema
    if len(producer.artifact_types) > 1:
        schema = dict(schema.get("properties", {}).get(artifact_type, {}))
    if aggregation.kind is AggregationKind.CONCAT:
        return {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": schema}},
        }
    return schema
