"""The validated, frozen configuration values the rest of IdeaMine works with.

``ideamine.config.loader`` builds these from YAML; nothing else constructs them from files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "AgentSpec",
    "Aggregation",
    "AggregationKind",
    "ArtifactSpec",
    "BackoffSpec",
    "Budgets",
    "FanOut",
    "FanOutKind",
    "GateSpec",
    "GuardSpec",
    "HeartbeatSpec",
    "LoopSpec",
    "PhaseSpec",
    "PipelineSpec",
    "Price",
    "ProviderSpec",
    "QavSpec",
    "RetrySpec",
]

JsonSchema = Mapping[str, Any]


class FanOutKind(StrEnum):
    """How a phase launches its agents' tasks."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    BATCH = "batch"  # N at a time
    PARTIAL = "partial"  # ⌈n/2⌉ at a time
    ITERATIVE = "iterative"


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOut:
    """A phase's fan-out mode; ``limit`` is the concurrency cap (``None`` = no phase cap)."""

    kind: FanOutKind
    limit: int | None = None


class AggregationKind(StrEnum):
    """How a phase fans its task outputs in."""

    MERGE = "merge"
    CONCAT = "concat"
    VOTE = "vote"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregation:
    kind: AggregationKind
    function: str | None = None  # ``module:function`` for CUSTOM


@dataclass(frozen=True, slots=True, kw_only=True)
class Budgets:
    tokens: int
    usd: float
    tool_minutes: float
    wallclock_minutes: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardSpec:
    type: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSpec:
    pass_threshold: float
    max_attempts: int
    auto_fix: bool
    rubrics: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class QavSpec:
    enabled: bool
    max_questions: int
    min_grounding: float
    max_iterations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactSpec:
    type: str
    required: bool
    schema: JsonSchema


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySpec:
    max_attempts: int
    strategy: str
    base_delay_ms: int
    max_delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatSpec:
    interval_seconds: float
    stall_after_missed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopSpec:
    max_iterations: int
    until: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSpec:
    """One phase of the pipeline, as configured."""

    name: str
    description: str
    depends_on: tuple[str, ...]
    fan_out: FanOut
    aggregation: Aggregation
    agents: tuple[str, ...]
    budgets: Budgets
    guards: tuple[GuardSpec, ...]
    gate: GateSpec
    qav: QavSpec
    artifacts: tuple[ArtifactSpec, ...]
    checkpoint_interval_minutes: float
    retries: RetrySpec
    heartbeat: HeartbeatSpec
    loop: LoopSpec | None = None
    evidence_agents: frozenset[str] = frozenset()  # agents that run after all the others


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    """One agent: either a model agent (prompt + offline template) or a Python callable."""

    name: str
    phase: str
    role: str
    artifact_types: tuple[str, ...]
    output_schema: JsonSchema
    prompt: str | None = None
    offline: str | None = None
    callable: str | None = None
    model: str | None = None  # the first of ``models``
    models: tuple[str, ...] = ()  # the agent's (or its phase's) fallback chain, in order
    temperature: float = 0.2
    max_tokens: int = 4000
    timeout_seconds: float = 300.0
    budget_tokens: int | None = None
    tools: tuple[str, ...] = ()
    evidence: bool = False  # starts only once the phase's other agents are done


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffSpec:
    """Tries and delays for one class of provider error (see ``ideamine.llm.policy``)."""

    max_attempts: int
    base_delay_ms: int
    max_delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec:
    """How to reach one model provider; ``api_key_env`` names a variable, never a key."""

    name: str
    base_url: str | None = None
    api_key_env: str | None = None
    structured_output: str | None = None  # json_schema, json_object, tool, prompt
    stream_min_tokens: int = 1000  # stream when a call may produce this many tokens or more
    request_timeout_seconds: float | None = None
    transient: BackoffSpec | None = None  # None: SPEC §5's defaults
    rate_limit: BackoffSpec | None = None
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSpec:
    """The whole validated configuration a run is pinned to."""

    name: str
    version: str
    default_model: str
    phases: tuple[PhaseSpec, ...]
    agents: Mapping[str, AgentSpec]
    pricing: Mapping[str, Price]
    manifest: Mapping[str, str]  # config file (relative path) → SHA-256 of its parsed content
    manifest_hash: str
    files: Mapping[str, str] = field(default_factory=dict)  # relative path → text (pinned)
    # config files the load looked for and found neither in the folder nor the defaults
    # (an optional ``schemas/`` file): one there now means the configuration changed
    absent: frozenset[str] = frozenset()
    default_models: tuple[str, ...] = ()  # the default fallback chain (first = default_model)
    providers: Mapping[str, ProviderSpec] = field(default_factory=dict)
    model_override: str | None = None  # ``--model`` / ``$IDEAMINE_MODEL``: replaces every choice
    qav_agents: Mapping[str, str] = field(default_factory=dict)  # role (question, answer) → agent
    advisories: str | None = None  # an OSV advisory folder, as pipeline.yaml names it

    def phase(self, name: str) -> PhaseSpec:
        """The phase called ``name``; raises ``KeyError`` if there is none."""
        for spec in self.phases:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def with_model(self, reference: str | None) -> PipelineSpec:
        """This pipeline with every agent on ``reference`` (``--model``); unchanged for
        ``None``. The override is not part of the manifest: it is pinned to the run by the
        model agents (see ``ideamine.stores.callcache``)."""
        if not reference:
            return self
        return replace(
            self,
            default_model=reference,
            default_models=(reference,),
            model_override=reference,
        )

    def models_for(self, agent: AgentSpec) -> tuple[str, ...]:
        """The agent's fallback chain of ``provider:model`` references, first choice first."""
        if self.model_override:
            return (self.model_override,)
        if agent.models:
            return agent.models
        if agent.model:
            return (agent.model,)
        return self.default_models or (self.default_model,)

    def model_for(self, agent: AgentSpec) -> str:
        """The ``provider:model`` the agent runs on first."""
        return self.models_for(agent)[0]

    def provider(self, name: str) -> ProviderSpec:
        """The settings of provider ``name`` (defaults when ``pipeline.yaml`` has none)."""
        return self.providers.get(name) or ProviderSpec(name=name)
