"""The ``Store`` seam: everything IdeaMine keeps, behind one protocol.

Every method that changes state appends its ledger event(s) in the same transaction
(invariant 1). No SQL lives outside ``ideamine.stores``, and no driver exception escapes a
store: each is translated into a ``StoreError`` subclass with the cause chained (invariant 5).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.engine.unstick import Remedy
from ideamine.errors import StoreError
from ideamine.stores.records import (
    ArtifactRecord,
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    EventRecord,
    LeasedAhead,
    ModelCallRecord,
    NewArtifact,
    NewRun,
    NewTask,
    OutputWrite,
    PhaseRecord,
    PhaseStart,
    ReadyAttempt,
    RunChanges,
    RunRecord,
    TaskRecord,
)

__all__ = ["Store"]


class Store(Protocol):
    """Durable state of runs. All methods are safe to call from one event loop concurrently."""

    @property
    def retried_writes(self) -> int:
        """How many writes were carried out again after the connection was lost as an
        earlier attempt may have committed, whether the retry succeeded or found its rows
        stored (``RetriedWriteError``); always 0 on SQLite. The lost attempt can have claimed
        tasks its caller never learned of; ``release_unrun`` hands them back."""
        ...

    async def migrate(self) -> int:
        """Apply pending numbered migrations; return the schema version now in force.

        Raises ``SchemaTooNewError`` if the database is newer than this code.
        """
        ...

    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        ...

    async def wait_for_work(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for another process to signal new work (PostgreSQL
        ``NOTIFY``); True if signalled, False on time-out (SQLite always times out)."""
        ...

    async def create_run(self, run: NewRun) -> RunRecord:
        """Insert a run in status ``created`` with its ``run.created`` event."""
        ...

    async def run_config(self, run_id: str) -> dict[str, str]:
        """The config file texts the run is pinned to (relative path → text)."""
        ...

    async def compiled_config(self, run_id: str) -> tuple[dict[str, str], bytes | None]:
        """The run's pinned texts and its pipeline in compiled form (``None`` if it has none:
        see ``ideamine.config.compiled``)."""
        ...

    async def repin_run(
        self,
        run_id: str,
        *,
        manifest: Mapping[str, str],
        manifest_hash: str,
        files: Mapping[str, str],
        changes: Sequence[str],
        compiled: bytes | None = None,
    ) -> None:
        """Pin the run to a new config (``resume --migrate``) with a ``run.repinned`` event;
        ``compiled``: the new pipeline in compiled form, if it has one."""
        ...

    async def get_run(self, run_id: str) -> RunRecord:
        """The run; raises ``RunNotFoundError`` if there is none."""
        ...

    async def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        ...

    async def set_run_status(
        self,
        run_id: str,
        status: RunStatus,
        event: EventDraft,
        *,
        error: str | None = None,
        driver: str | None = None,
    ) -> None:
        """Move the run to ``status`` (checked against the run state machine) with ``event``."""
        ...

    async def reopen_run(
        self, run_id: str, *, driver: str, dead_owners: Sequence[str], now: float
    ) -> list[str]:
        """Resume: set the run running, reclaim tasks whose lease expired or whose owner is in
        ``dead_owners`` and reopen failed tasks and phases, each with a ``task.retry`` event
        (strategy ``resume``), and append ``run.resumed``. Returns the reclaimed task ids."""
        ...

    async def active_runs(self, limit: int = 1000) -> list[RunRecord]:
        """Runs that are ``created`` or ``running``, oldest first: what workers look after."""
        ...

    async def hold_advance(self, run_id: str, *, owner: str, seconds: float, now: float) -> bool:
        """Take or renew the run's advance lease (who plans and applies its next steps) for
        ``seconds``; False while another owner holds an unexpired one."""
        ...

    async def start_run(
        self, run_id: str, event: EventDraft, *, driver: str, seconds: float, now: float
    ) -> bool:
        """Move the run to ``running`` with ``event`` (checked against the run state machine)
        driven by ``driver``, and in the same transaction take its advance lease for
        ``driver`` as ``hold_advance`` would: whether it was taken."""
        ...

    async def release_advance(self, run_id: str, *, owner: str) -> None:
        """Give the advance lease up if ``owner`` holds it."""
        ...

    async def expired_tasks(self, *, now: float, limit: int = 100) -> list[TaskRecord]:
        """Running tasks whose lease expired before ``now`` (their owner missed heartbeats)."""
        ...

    async def reclaim_task(
        self, task: TaskRecord, *, now: float, remedy: Remedy, cause: str
    ) -> bool:
        """Take an expired task back, if its lease is still expired, applying ``remedy``
        (pending with new settings, or skipped; escalation also sets the run
        ``needs_attention``), with ``phase.stalled`` and ``task.retry`` events. The old lease
        token stops working, so a zombie's late write is rejected. False if the owner renewed
        the lease or someone else reclaimed it first."""
        ...

    async def release_task(self, task_id: str, token: str, *, reason: str) -> None:
        """Hand a held task back unfinished (graceful shutdown), with ``task.retry``."""
        ...

    async def release_unrun(
        self, run_id: str, *, owner: str, running: Collection[str], reason: str
    ) -> list[str]:
        """Hand back ``run_id``'s tasks leased to ``owner`` but for those it is running
        (``running``, task ids): a commit whose reply was lost can lease tasks to a process
        that never learns it. Each is pending again at once, with a ``task.retry`` event
        (strategy ``released``), and counts no stall; returns the ids handed back."""
        ...

    async def retry_phase(self, run_id: str, phase: str, *, reason: str) -> int:
        """Start a new attempt of a failed (or running) phase and reopen the run; returns the
        new attempt number. ``RunStateError`` if the phase has not started or has passed."""
        ...

    async def start_phase(self, run_id: str, phase: str, attempt: int, event: EventDraft) -> None:
        """Insert a running phase attempt with its ``phase.started`` event."""
        ...

    async def start_phases(
        self,
        run_id: str,
        starts: Sequence[PhaseStart],
        *,
        claim: ClaimRequest | None = None,
        ahead: LeasedAhead | None = None,
    ) -> list[ClaimedTask]:
        """Start phase attempts together with their first tasks, in one transaction: each
        attempt as ``start_phase`` would (the ``phase.started`` events first, in order), then
        each one's tasks as ``create_tasks`` would, then ``claim`` as ``create_tasks`` makes
        it. The claimed tasks (none without ``claim``). ``ahead`` (``lease_ahead``): the
        claim's leases, chosen before, written when it takes every new task, and the time
        the transaction stamps."""
        ...

    def lease_ahead(
        self, run_id: str, starts: Sequence[PhaseStart], claim: ClaimRequest
    ) -> LeasedAhead | None:
        """The leases ``claim`` would write for ``starts``' tasks as they are inserted,
        chosen now, and the tasks as it would hand them out, so a step may hand them out
        before its transaction (``stores.ahead``); None when the claim cannot take them
        all. A transaction given them writes exactly these when it does take them all."""
        ...

    async def set_phase_status(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        status: PhaseStatus,
        events: Sequence[EventDraft],
        *,
        error: str | None = None,
        run_status: RunStatus | None = None,
    ) -> None:
        """Move a phase attempt (and optionally the run) on, with ``events``, atomically."""
        ...

    async def create_tasks(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        tasks: Sequence[NewTask],
        event: EventDraft,
        *,
        claim: ClaimRequest | None = None,
    ) -> list[ClaimedTask]:
        """Insert pending tasks of a phase attempt (keys are unique per attempt). With
        ``claim``, then claim the run's tasks as ``claim_tasks`` would (the oldest due ones,
        these or older), in the same transaction: up to ``claim.limit``, and for a throttled
        run (``budget.throttled``) no more than ``engine.budget.throttled_room``. The claimed
        tasks (none without ``claim``)."""
        ...

    async def claim_tasks(
        self,
        run_id: str | None,
        *,
        owner: str,
        now: float,
        limit: int,
        lease_seconds: float | None = None,
    ) -> list[ClaimedTask]:
        """Atomically claim up to ``limit`` pending tasks whose ``not_before`` has passed, of
        run ``run_id`` or (``None``) of any running run, each with a fresh lease token
        (lasting the task's own ``lease_seconds`` unless overridden) and a ``task.started``
        event. Tasks of runs that are not ``running`` (paused, cancelled) are never claimed."""
        ...

    async def append_event(self, run_id: str, event: EventDraft) -> None:
        """Append an event that records no state change of its own (e.g. progress)."""
        ...

    async def renew_lease(
        self, task_id: str, token: str, *, lease_seconds: float, now: float
    ) -> None:
        """Extend a held lease with a ``task.heartbeat`` event; ``StaleLeaseError`` if the
        token no longer owns the task."""
        ...

    async def save_checkpoint(self, task_id: str, token: str, data: object) -> None:
        """Durably keep a task's intermediate progress (fenced by the lease token)."""
        ...

    async def record_output(
        self,
        task_id: str,
        token: str,
        output: object,
        calls: Sequence[ModelCallRecord],
        payload: Mapping[str, object],
    ) -> None:
        """Write the task's output once, its model calls, and ``task.succeeded``.

        Raises ``StaleLeaseError`` for a stale token and ``OutputExistsError`` if an output
        for the task's (run, phase, attempt, key) exists already."""
        ...

    async def record_outputs(self, writes: Sequence[OutputWrite]) -> list[StoreError | None]:
        """``record_output`` of several finished tasks in one transaction: per write, in
        order, ``None`` when it was recorded, else the error that rejected it
        (``StaleLeaseError``, ``OutputExistsError``), none of its rows written. Any other
        failure raises and writes nothing."""
        ...

    async def record_outputs_claiming(
        self, writes: Sequence[OutputWrite], run_id: str, claim: ClaimRequest
    ) -> tuple[list[StoreError | None], list[ClaimedTask]]:
        """``record_outputs``, then, in the same transaction, ``claim`` on ``run_id``'s tasks
        as ``create_tasks`` makes it (up to its limit, a throttled run's room at most): the
        writes' outcomes, and the tasks claimed."""
        ...

    async def fail_task(
        self,
        task_id: str,
        token: str,
        *,
        error: str,
        retry_at: float | None,
        strategy: str,
        calls: Sequence[ModelCallRecord] = (),
    ) -> None:
        """Record a failed try: back to pending at ``retry_at`` with ``task.retry``, or (when
        ``retry_at`` is ``None``) failed for good with ``task.failed``."""
        ...

    async def run_rows(self, run_id: str) -> tuple[RunRecord, list[PhaseRecord], list[TaskRecord]]:
        """The run, all its phase attempts and all its tasks, read in one transaction."""
        ...

    async def phase_tasks(
        self, run_id: str, phase: str, attempt: int
    ) -> tuple[PhaseRecord, list[TaskRecord]]:
        """One phase attempt and its tasks (by key); ``RunNotFoundError`` if it does not
        exist. Reads that phase only, however large the run."""
        ...

    async def run_changes(self, run_id: str, since: int) -> RunChanges:
        """The run and its phase attempts, and the tasks changed since the cursor ``since``
        (every task when it is 0), read in one transaction: what an advance step needs."""
        ...

    async def outputs(self, run_id: str, phase: str, attempt: int) -> dict[str, object]:
        """Recorded task outputs of a phase attempt by branch key."""
        ...

    async def record_artifacts(
        self,
        run_id: str,
        phase: str,
        attempt: int,
        artifacts: Sequence[NewArtifact],
        event: EventDraft,
        tasks: Sequence[NewTask] = (),
        *,
        claim: ClaimRequest | None = None,
    ) -> ReadyAttempt:
        """Store the fanned-in artifacts (content-addressed), set the attempt ``ready`` and
        create ``tasks`` (its gate judge), in one transaction; with ``claim``, claim the run's
        due tasks in it too, as ``create_tasks`` does."""
        ...

    async def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """All artifact versions of a run, oldest first."""
        ...

    async def blob(self, content_hash: str) -> object:
        """The content with that SHA-256; ``StoreCorruptError`` if missing or altered."""
        ...

    async def events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        """A page of the run's ledger in id order."""
        ...

    async def model_calls(self, run_id: str) -> list[dict[str, object]]:
        """Every recorded model call of a run, oldest first."""
        ...
