"""The values a ``Store`` takes and returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ideamine.canonical import canonical_json
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus

__all__ = [
    "ArtifactRecord",
    "ClaimRequest",
    "ClaimedTask",
    "EventDraft",
    "EventRecord",
    "ModelCallRecord",
    "NewArtifact",
    "NewRun",
    "NewTask",
    "OutputWrite",
    "PhaseRecord",
    "PhaseStart",
    "ReadyAttempt",
    "RunChanges",
    "RunRecord",
    "TaskChange",
    "TaskRecord",
    "latest_attempts",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDraft:
    """An event to append to the ledger in the same transaction as a state change."""

    type: str
    phase: str | None = None
    task_id: str | None = None
    payload: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    id: int
    run_id: str
    phase: str | None
    task_id: str | None
    type: str
    kind: str
    at: str
    payload: Mapping[str, object]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRun:
    id: str
    idea: str
    constraints: Mapping[str, object]
    source: str
    config_dir: str | None
    manifest: Mapping[str, str]
    manifest_hash: str
    config_files: Mapping[str, str] = field(default_factory=dict)
    config_compiled: bytes | None = None  # the pipeline in compiled form (config.compiled)
    project: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    id: str
    idea: str
    constraints: Mapping[str, object]
    source: str
    status: RunStatus
    config_dir: str | None
    manifest: Mapping[str, str]
    manifest_hash: str
    driver: str | None
    error: str | None
    created_at: str
    updated_at: str
    project: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseRecord:
    run_id: str
    phase: str
    attempt: int
    status: PhaseStatus
    started_at: str
    finished_at: str | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTask:
    id: str
    key: str
    agent: str
    iteration: int
    input: Mapping[str, object] = field(default_factory=dict)
    lease_seconds: float = 180.0  # how long a claim holds without a heartbeat


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    id: str
    run_id: str
    phase: str
    attempt: int
    key: str
    agent: str
    iteration: int
    status: TaskStatus
    tries: int
    lease_owner: str | None
    lease_expires_at: float | None
    not_before: float
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    stalls: int = 0  # leases that expired under this task
    batch_scale: float = 1.0  # < 1 after the unsticker chose smaller-batch
    timeout_scale: float = 1.0  # > 1 after the unsticker chose longer-timeout
    model_shift: int = 0  # steps down the agent's model fallback chain


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskChange:
    """A task as an advance step sees it (``run_changes``): which it is and how it stands,
    without the lease and timing columns of a ``TaskRecord`` (a wide phase's step reads
    thousands)."""

    id: str
    phase: str
    attempt: int
    key: str
    agent: str
    iteration: int
    status: TaskStatus
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunChanges:
    """A run, all its phase attempts, and the tasks changed since a cursor (``run_changes``).

    ``tasks`` holds at least every task inserted, or whose status or error changed, since
    ``since``; pass ``cursor`` as the next call's ``since``. ``since=0`` reads every task.
    """

    run: RunRecord
    phases: list[PhaseRecord]
    tasks: list[TaskChange]
    cursor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedTask:
    """A task this caller now holds; ``lease_token`` fences every write about it."""

    task: TaskRecord
    lease_token: str
    checkpoint: object | None


@dataclass(frozen=True, slots=True)
class Lease:
    """A new task's lease, written as it is inserted (``insert_tasks``)."""

    owner: str
    token: str
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LeasedAhead:
    """The leases a claim takes, chosen before its transaction (``Store.lease_ahead``), the
    time that transaction stamps, and the tasks as the claim hands them out, so they may
    be handed out ahead of the commit (``stores.ahead``)."""

    at: str
    leases: Mapping[str, Lease]
    claimed: Sequence[ClaimedTask]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    """A claim that rides along with the write creating a run's tasks (``create_tasks``): the
    claiming process, its free slots (``limit``), its concurrency and how many of the run's
    tasks it already holds (``held``), so a throttled run's cap of half the concurrency holds
    as it does for ``claim_tasks`` through ``claim_within_budget``."""

    owner: str
    now: float
    limit: int
    concurrency: int
    held: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallRecord:
    provider: str
    model: str
    prompt_hash: str
    params: Mapping[str, object]
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float
    outcome: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputWrite:
    """A finished task's result for ``Store.record_outputs``, fenced by its lease token.
    ``payload`` goes into the ``task.succeeded`` event (the store adds the output's hash)."""

    task_id: str
    token: str
    output: object
    calls: Sequence[ModelCallRecord] = ()
    payload: Mapping[str, object] = field(default_factory=dict)
    # ``canonical_json(output)`` when the writer has it already (an agent's JSON check made
    # it); the store encodes ``output`` itself otherwise. Never anything else.
    text: str | None = None

    def output_json(self) -> str:
        """The output's canonical JSON (raises TypeError or ValueError if it is not JSON)."""
        return canonical_json(self.output) if self.text is None else self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class NewArtifact:
    type: str
    content: object
    provenance: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactRecord:
    id: str
    run_id: str
    phase: str
    attempt: int
    type: str
    version: int
    content_hash: str
    provenance: Mapping[str, object]
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseStart:
    """A phase attempt to start (``started``: its ``phase.started`` event) with its first
    tasks (``created``: their ``phase.progress`` event), for ``Store.start_phases``."""

    phase: str
    attempt: int
    started: EventDraft
    tasks: Sequence[NewTask] = ()
    created: EventDraft | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyAttempt:
    """What ``record_artifacts`` wrote: the artifacts, and the tasks it created that the
    caller claimed in the same transaction (none unless it asked)."""

    artifacts: list[ArtifactRecord]
    claimed: list[ClaimedTask]


def latest_attempts(phases: Iterable[PhaseRecord]) -> dict[str, PhaseRecord]:
    """The newest attempt of each phase, by phase name."""
    latest: dict[str, PhaseRecord] = {}
    for record in phases:
        if record.phase not in latest or record.attempt > latest[record.phase].attempt:
            latest[record.phase] = record
    return latest
