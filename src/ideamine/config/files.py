"""The shapes of the configuration files, as pydantic models (the only place they are parsed).

These models are the edge: ``ideamine.config.loader`` validates raw YAML data with them and
converts the result into the frozen values of ``ideamine.config.model``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = ["AgentFile", "PhaseFile", "PipelineFile", "ProviderEntry"]

MODEL_PATTERN = r"^[a-z][a-z0-9_-]*:.+$"
MAX_CHAIN = 8


def _check_models(value: str | list[str]) -> str | list[str]:
    """One ``provider:model`` or a non-empty fallback chain of them (one error, not one per
    union member, so the loader reports it once)."""
    chain = [value] if isinstance(value, str) else value
    if not 1 <= len(chain) <= MAX_CHAIN:
        raise PydanticCustomError(
            "chain_length", "a fallback chain holds 1 to {most} models", {"most": MAX_CHAIN}
        )
    for index, reference in enumerate(chain):
        if not re.match(MODEL_PATTERN, reference):
            where = "" if isinstance(value, str) else f" (entry {index}: {reference!r})"
            raise PydanticCustomError(
                "string_pattern_mismatch",
                "String should match pattern '{pattern}'{where}",
                {"pattern": MODEL_PATTERN, "where": where},
            )
    return value


# One ``provider:model`` or a fallback chain of them, tried in order.
ModelChoice = Annotated[str | list[str], AfterValidator(_check_models)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PriceEntry(_Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class BackoffEntry(_Strict):
    max_attempts: int = Field(ge=1, le=100)
    base_delay_ms: int = Field(ge=0)
    max_delay_ms: int = Field(ge=0)


class BreakerEntry(_Strict):
    failure_threshold: int = Field(default=5, ge=1, le=1000)
    reset_seconds: float = Field(default=30.0, gt=0)


class ProviderEntry(_Strict):
    """Connection and resilience settings of one provider (never a secret: only the name of
    the environment variable that holds the key)."""

    base_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    structured_output: Literal["json_schema", "json_object", "tool", "prompt"] | None = None
    stream_min_tokens: int = Field(default=1000, ge=0)
    request_timeout_seconds: float | None = Field(default=None, gt=0)
    transient: BackoffEntry | None = None
    rate_limit: BackoffEntry | None = None
    breaker: BreakerEntry = BreakerEntry()


class QavAgentsEntry(_Strict):
    """The agents of every phase's Q/A/V loop (their files say ``phase: qav``)."""

    question: str = Field(default="QuestionAgent", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    answer: str = Field(default="AnswerAgent", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")


class PipelineFile(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    phases: list[str] = Field(min_length=1)
    default_model: ModelChoice
    pricing: dict[str, PriceEntry] = Field(default_factory=dict)
    providers: dict[Literal["openai", "anthropic"], ProviderEntry] = Field(default_factory=dict)
    qav_agents: QavAgentsEntry = Field(default_factory=QavAgentsEntry)
    # an OSV advisory folder for the security phase's scan (relative to the config folder);
    # `ideamine run --advisories DIR` overrides it
    advisories: str | None = Field(default=None, min_length=1)


class BudgetsEntry(_Strict):
    tokens: int = Field(ge=0)
    usd: float = Field(default=0.0, ge=0)
    tool_minutes: float = Field(default=0.0, ge=0)
    wallclock_minutes: float = Field(gt=0)


class GuardEntry(_Strict):
    type: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)


class GateEntry(_Strict):
    pass_threshold: float = Field(ge=0, le=1)
    max_attempts: int = Field(ge=1, le=50)
    auto_fix: bool = True
    rubrics: dict[str, float] = Field(min_length=1)


class QavEntry(_Strict):
    enabled: bool = True
    max_questions: int = Field(ge=0)
    min_grounding: float = Field(ge=0, le=1)
    max_iterations: int = Field(ge=1)


class ArtifactEntry(_Strict):
    type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    required: bool = True


class CheckpointsEntry(_Strict):
    interval_minutes: float = Field(gt=0)


class RetriesEntry(_Strict):
    max_attempts: int = Field(ge=1, le=100)
    strategy: Literal["exponential", "linear", "fixed"] = "exponential"
    base_delay_ms: int = Field(ge=0)
    max_delay_ms: int = Field(ge=0)


class HeartbeatEntry(_Strict):
    interval_seconds: float = Field(default=60.0, gt=0)
    stall_after_missed: int = Field(default=3, ge=1)


class LoopEntry(_Strict):
    max_iterations: int = Field(ge=1, le=1000)
    until: str = Field(min_length=1)


class CustomAggregation(_Strict):
    custom: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PhaseFile(_Strict):
    phase: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str = ""
    depends_on: list[str] = Field(default_factory=list)
    parallelism: Literal["sequential", "parallel", "partial", "iterative"] | int
    aggregation: Literal["merge", "concat", "vote"] | CustomAggregation = "merge"
    agents: list[str] = Field(min_length=1)
    budgets: BudgetsEntry
    guards: list[GuardEntry] = Field(default_factory=list)
    gate: GateEntry
    qav: QavEntry
    artifacts: list[ArtifactEntry] = Field(default_factory=list)
    checkpoints: CheckpointsEntry = CheckpointsEntry(interval_minutes=3)
    retries: RetriesEntry
    heartbeat: HeartbeatEntry = HeartbeatEntry()
    loop: LoopEntry | None = None
    model: ModelChoice | None = None  # for this phase's agents that name none


class AgentFile(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    phase: str
    role: str = Field(min_length=1)
    artifact_type: str | list[str]
    output_schema: dict[str, Any]
    prompt: str | None = None
    offline: str | None = None
    callable: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    model: ModelChoice | None = None
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = Field(default=4000, ge=1)
    timeout_seconds: float = Field(default=300.0, gt=0)
    budget: int | None = Field(default=None, ge=0)
    tools: list[str] = Field(default_factory=list)
    evidence: bool = False  # runs a real tool over the phase's other outputs, after them
