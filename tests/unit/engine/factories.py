"""Build frozen engine inputs (specs, task and phase states) directly, without YAML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ideamine.config.model import (
    AgentSpec,
    Aggregation,
    AggregationKind,
    Budgets,
    FanOut,
    FanOutKind,
    GateSpec,
    HeartbeatSpec,
    LoopSpec,
    PhaseSpec,
    PipelineSpec,
    Price,
    QavSpec,
    RetrySpec,
)
from ideamine.engine.fanout import branch_key
from ideamine.engine.snapshot import PhaseState, RunSnapshot, TaskState
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus

# The 13-phase DAG of SPEC §2.
SPEC_DAG: dict[str, tuple[str, ...]] = {
    "intake": (),
    "ideation": ("intake",),
    "critique": ("ideation",),
    "prd": ("critique",),
    "bizdev": ("prd",),
    "architecture": ("bizdev",),
    "build": ("architecture",),
    "security": ("build",),
    "story-loop": ("build",),
    "qa": ("security", "story-loop"),
    "aesthetic": ("qa",),
    "release": ("aesthetic",),
    "beta": ("release",),
}


def fan_out(kind: FanOutKind, agent_count: int, limit: int | None = None) -> FanOut:
    """The fan-out the config builder makes for ``kind`` (``limit`` only for batch)."""
    if kind is FanOutKind.BATCH:
        return FanOut(kind=kind, limit=limit)
    if kind is FanOutKind.PARTIAL:
        return FanOut(kind=kind, limit=max(1, -(-agent_count // 2)))
    if kind in (FanOutKind.SEQUENTIAL, FanOutKind.ITERATIVE):
        return FanOut(kind=kind, limit=1)
    return FanOut(kind=kind)


def retry_spec(
    strategy: str = "exponential",
    *,
    max_attempts: int = 5,
    base_delay_ms: int = 1000,
    max_delay_ms: int = 60_000,
) -> RetrySpec:
    return RetrySpec(
        max_attempts=max_attempts,
        strategy=strategy,
        base_delay_ms=base_delay_ms,
        max_delay_ms=max_delay_ms,
    )


def phase_spec(
    name: str,
    *,
    depends_on: Sequence[str] = (),
    agents: Sequence[str] = ("A",),
    kind: FanOutKind = FanOutKind.PARALLEL,
    limit: int | None = None,
    max_iterations: int | None = None,
    tokens: int = 0,
    wallclock_minutes: float = 10.0,
) -> PhaseSpec:
    """A phase with neutral defaults; ``max_iterations`` adds a loop (iterative phases)."""
    loop = None
    if kind is FanOutKind.ITERATIVE or max_iterations is not None:
        loop = LoopSpec(max_iterations=max_iterations or 3, until="false")
    return PhaseSpec(
        name=name,
        description=f"test phase {name}",
        depends_on=tuple(depends_on),
        fan_out=fan_out(kind, len(agents), limit),
        aggregation=Aggregation(kind=AggregationKind.MERGE),
        agents=tuple(agents),
        budgets=Budgets(
            tokens=tokens, usd=0.0, tool_minutes=0.0, wallclock_minutes=wallclock_minutes
        ),
        guards=(),
        gate=GateSpec(pass_threshold=0.5, max_attempts=1, auto_fix=False, rubrics={}),
        qav=QavSpec(enabled=False, max_questions=0, min_grounding=0.5, max_iterations=1),
        artifacts=(),
        checkpoint_interval_minutes=5.0,
        retries=retry_spec(),
        heartbeat=HeartbeatSpec(interval_seconds=10.0, stall_after_missed=3),
        loop=loop,
    )


def agent_spec(
    name: str,
    phase: str = "p",
    *,
    max_tokens: int = 4000,
    model: str | None = None,
    callable_: str | None = None,
) -> AgentSpec:
    return AgentSpec(
        name=name,
        phase=phase,
        role="test",
        artifact_types=(),
        output_schema={},
        max_tokens=max_tokens,
        model=model,
        callable=callable_,
    )


def pipeline_spec(
    phases: Sequence[PhaseSpec],
    *,
    agents: Mapping[str, AgentSpec] | None = None,
    pricing: Mapping[str, Price] | None = None,
    default_model: str = "offline:template",
) -> PipelineSpec:
    """A pipeline over ``phases``; agents default to one model agent per distinct name."""
    if agents is None:
        agents = {name: agent_spec(name, spec.name) for spec in phases for name in spec.agents}
    return PipelineSpec(
        name="test",
        version="1",
        default_model=default_model,
        phases=tuple(phases),
        agents=dict(agents),
        pricing=dict(pricing or {}),
        manifest={},
        manifest_hash="0" * 64,
    )


def pipeline_from_dag(dag: Mapping[str, Sequence[str]]) -> PipelineSpec:
    """One single-agent parallel phase per node of ``dag``, in the mapping's order."""
    return pipeline_spec(
        [phase_spec(name, depends_on=deps, agents=(f"{name}-agent",)) for name, deps in dag.items()]
    )


def task(
    index: int,
    agent: str,
    status: TaskStatus = TaskStatus.SUCCEEDED,
    *,
    iteration: int | None = None,
    error: str | None = None,
) -> TaskState:
    """The state of the task that runs ``agent`` at ``index`` (of ``iteration`` in a loop)."""
    return TaskState(
        key=branch_key(index, agent, iteration),
        agent=agent,
        iteration=iteration or 1,
        status=status,
        error=error,
    )


def tasks_for(
    phase: PhaseSpec, statuses: Sequence[TaskStatus], *, iteration: int | None = None
) -> tuple[TaskState, ...]:
    """Tasks for the first ``len(statuses)`` agents of ``phase`` with those statuses."""
    return tuple(
        task(index, agent, status, iteration=iteration)
        for (index, agent), status in zip(enumerate(phase.agents), statuses, strict=False)
    )


def phase_state(
    status: PhaseStatus,
    tasks: Sequence[TaskState] = (),
    *,
    attempt: int = 1,
    loop_done: bool = False,
) -> PhaseState:
    return PhaseState(attempt=attempt, status=status, tasks=tuple(tasks), loop_done=loop_done)


def snapshot(
    phases: Mapping[str, PhaseState] | None = None, *, status: RunStatus = RunStatus.RUNNING
) -> RunSnapshot:
    return RunSnapshot(run_id="run-1", status=status, phases=dict(phases or {}))
