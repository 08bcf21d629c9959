"""A gate judged in its fan-in's step, not by a task of its own.

When a phase's gate calls no model (``engine.gate.calls_no_model``: Q/A/V off, no guard that
asks the model judge), judging it is its guards and its rubric score, pure functions of the
draft. The advancer then fans the attempt in, judges it and applies the verdict in one
transaction (``VerdictStore.record_fan_in``), with the phases a pass lets start: one commit
where a judge task takes three (the fan-in, the judge's output, the verdict) and two more
steps. The gate task's row and output are written as a judge task's would be, settled after
one try, so every reader of a verdict (the dossier, ``replay``, ``status``) reads it the same
way. A crash before the commit leaves the attempt running with its tasks done: the next step
fans it in again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ideamine.canonical import canonical_json
from ideamine.config.model import PipelineSpec
from ideamine.engine.snapshot import PhaseState
from ideamine.engine.states import PhaseStatus
from ideamine.errors import StoreError
from ideamine.observability.tracing import mark_task, task_span
from ideamine.runtime.context import BlobCache
from ideamine.runtime.finishing import Finishing
from ideamine.runtime.stepwrites import StepWrites
from ideamine.stores.ahead import Ahead
from ideamine.stores.base import Store
from ideamine.stores.options import RunOptions
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    NewArtifact,
    NewTask,
    OutputWrite,
    PhaseStart,
)

if TYPE_CHECKING:
    from ideamine.runtime.actions import Lessee
    from ideamine.runtime.judge import AgentOutcome
    from ideamine.runtime.verdict import Judged
    from ideamine.stores.verdicts import JudgedFanIn, Verdict, VerdictStore

__all__ = ["FannedIn", "HandAhead", "JudgeFailedError", "judge_fan_in"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FannedIn:
    """What a fan-in assembled and read for its attempt: the artifacts and their ids, the
    ``phase.ready`` event and gate task to record with them, the upstream artifacts (contents
    and ids) and the run's model calls (with ``finishing``'s, when it records them)."""

    artifacts: Sequence[NewArtifact]
    artifact_ids: Sequence[str]  # chosen for them (the verdict's evidence names them)
    ready: EventDraft
    judge: NewTask
    upstream: Mapping[str, Any]
    input_ids: Sequence[str]
    calls: Sequence[Mapping[str, object]]
    finishing: Finishing | None = None  # the attempt's last outputs, read with its own
    carries: bool = True  # whether its transaction records them (``StepWrites.carries``)
    # the attempt as the step read it (``finishing`` included), else its tasks are read here
    read: PhaseState | None = None


class JudgeFailedError(Exception):
    """Judging raised (a guard's bug on this draft, say): the gate cannot be judged. Judging
    is deterministic, so trying again would fail the same way; the phase fails with this."""


async def judge_fan_in(
    store: Store,
    pipeline: PipelineSpec,
    run_id: str,
    phase: str,
    attempt: int,
    fanned: FannedIn,
    *,
    starts: Sequence[PhaseStart] = (),
    claim: ClaimRequest | None = None,
    completes: bool = False,
    ahead: HandAhead | None = None,
    step: StepWrites | None = None,
) -> Judged:
    """Fan ``phase``'s ``attempt`` in with its verdict, in one transaction; should it pass,
    ``starts`` start with it, with ``claim``, or the run completes (``completes``). With
    ``ahead``, the tasks ``claim`` takes are handed to its lessee before the transaction
    (``stores.ahead``); ``Judged.claimed`` then holds only those it claimed besides. With
    ``step``, the transaction is held there when it claims nothing (``runtime.stepwrites``),
    else made after the step's held writes.

    Raises:
        JudgeFailedError: judging raised (a guard's bug, say); nothing was written.
        FinishingRefusedError: an output of ``fanned.finishing`` was refused; nothing was
            written.
        StoreError: a read or the write failed, as any store call may.
    """
    # imported at the first gate, not with the runtime (``runtime.preload``)
    from ideamine.runtime.verdict import Judged, previous_result, settle  # noqa: PLC0415
    from ideamine.stores.verdicts import JudgedFanIn, VerdictStore  # noqa: PLC0415

    spec = pipeline.phase(phase)
    ids = fanned.artifact_ids
    judging = _Judging(fanned.judge.id, phase, attempt, fanned.judge.key, fanned.judge.agent)
    with task_span(run_id, judging):
        try:
            # read once: whether evidence is strict, and what tasks handed out ahead get
            options = await RunOptions(store).get(run_id)
            strict = bool(options.get("strict_evidence"))
            output = await _judge(store, pipeline, run_id, judging, fanned, sorted(ids), strict)
            result = {**output["result"], "evidence": output["evidence"]}
            previous = await previous_result(store, run_id, phase, attempt)
            verdict = settle(
                spec,
                run_id,
                attempt,
                result,
                previous,
                [],
                starts=starts,
                claim=claim,
                completes=completes,
            )
            output_json = canonical_json(output)  # not JSON (a guard's report, say) raises
        except StoreError:
            raise
        except Exception as exc:  # a bug in judging: the phase fails with it, in the ledger
            log.warning("run %s: judging %s raised", run_id, phase, exc_info=True)
            mark_task("failed", str(exc))
            raise JudgeFailedError(f"the gate judge failed: {type(exc).__name__}: {exc}") from exc
        recorded = JudgedFanIn(
            artifacts=fanned.artifacts,
            artifact_ids=ids,
            ready=fanned.ready,
            judge=fanned.judge,
            output_json=output_json,
            # as the executor writes a task's: it made no model call
            payload={"tokens": 0, "cost_usd": 0, "inputs": list(fanned.input_ids)},
        )
        finishing = fanned.finishing.writes if fanned.finishing and fanned.carries else ()
        leased = None
        if ahead is not None and claim is not None and verdict.phase_status is PhaseStatus.PASSED:
            leased = store.lease_ahead(run_id, verdict.starts, claim)
            verdict = verdict if leased is None else replace(verdict, ahead=leased)
        write = _Write(VerdictStore(store), recorded, verdict, finishing, step)
        if step is not None and claim is None:
            step.hold(write)  # claims nothing: made at the step's next write
            claimed: list[ClaimedTask] = []
        elif ahead is None or leased is None:
            claimed = await write()
        else:
            starting = [start.phase for start in verdict.starts if start.tasks]
            claimed = await ahead.record(
                write,
                leased.claimed,
                run_id,
                lambda blobs: blobs.foresee(
                    pipeline, run_id, phase, attempt, fanned.artifacts, ids, starting
                ),
                options,
            )
    return Judged.of(verdict, claimed)


class _Write:
    """A fan-in's transaction: made by the step's flush when held (stamped as the write it
    goes before), else after the step's held writes, which it stamps with its own time when
    that was chosen ahead (``Verdict.ahead``). It notes in the step when it recorded the
    outputs the step carries."""

    def __init__(
        self,
        verdicts: VerdictStore,
        recorded: JudgedFanIn,
        verdict: Verdict,
        finishing: Sequence[OutputWrite],
        step: StepWrites | None,
    ) -> None:
        self._verdicts = verdicts
        self._recorded = recorded
        self._verdict = verdict
        self._finishing = finishing
        self._step = step

    async def __call__(self, at: str | None = None) -> list[ClaimedTask]:
        if self._step is not None:  # (a no-op for a held write: the flush making it)
            await self._step.flush(self._verdict.ahead.at if self._verdict.ahead else None)
        claimed = await self._verdicts.record_fan_in(
            self._recorded, self._verdict, self._finishing, at
        )
        if self._finishing and self._step is not None:
            self._step.carried = True
        return claimed


class HandAhead:
    """Hands a verdict's claimed tasks to ``lessee`` ahead of the commit that claims them
    (``stores.ahead``): their agents run while it commits. The upstream artifacts of the
    phases they belong to are filled in first where ``blobs`` can (``BlobCache.foresee``),
    so they start without a read (which would wait for the commit)."""

    def __init__(self, lessee: Lessee, blobs: BlobCache) -> None:
        self._lessee = lessee
        self._blobs = blobs

    async def record(
        self,
        write: Callable[[], Awaitable[list[ClaimedTask]]],
        handed: Sequence[ClaimedTask],
        run_id: str,
        foresee: Callable[[BlobCache], list[str]],
        options: Mapping[str, Any] | None = None,
    ) -> list[ClaimedTask]:
        """Hand ``handed`` (tasks of ``run_id``) out, then ``write`` (the transaction
        claiming them); the tasks it claimed besides. Those it did not claim (the run was
        paused meanwhile, a throttled run's room was smaller) are revoked before any of them
        makes a store call, and so are all of them when it raises (then the error is
        raised). ``foresee`` fills in the upstream artifacts of their phases where the cache
        can tell (``BlobCache.foresee``): the phases filled in. ``options``: the run's, as
        the step just read them (else read here), for the tasks to start with."""
        if options is None:
            options = await self._blobs.options(run_id)
        filled = foresee(self._blobs)
        ahead = Ahead()
        try:
            with self._blobs.lend_options(run_id, options):
                with ahead.handing():
                    self._lessee.take(handed)
                # SQLite writes on the caller's thread: let the tasks start (up to their
                # agents' first wait) before the transaction holds the event loop
                await asyncio.sleep(0)
            claimed = await write()
        except BaseException:
            try:
                self._lessee.revoke(handed)
                self._blobs.unsee(run_id, filled)
            finally:
                ahead.settle()
            raise
        kept = {_lease(item) for item in claimed}
        try:
            self._lessee.revoke([item for item in handed if _lease(item) not in kept])
        finally:
            ahead.settle()
        given = {_lease(item) for item in handed}
        return [item for item in claimed if _lease(item) not in given]


def _lease(item: ClaimedTask) -> tuple[str, str]:
    return item.task.id, item.lease_token


@dataclass(frozen=True, slots=True)
class _Judging:
    """The gate task being judged in the step, as its span names it (one try)."""

    id: str
    phase: str
    attempt: int
    key: str
    agent: str
    tries: int = 1


async def _judge(
    store: Store,
    pipeline: PipelineSpec,
    run_id: str,
    judging: _Judging,
    fanned: FannedIn,
    artifact_ids: Sequence[str],
    strict: bool,
) -> dict[str, Any]:
    """The judge's output on the fanned-in draft: its guards' reports, the GateResult and
    the EvidencePack, as the judge task (``runtime.judge``) writes it with Q/A/V off
    (``strict``: the run's ``strict_evidence`` option)."""
    from ideamine.runtime.judge import (  # noqa: PLC0415
        attempt_calls,
        gate_output,
        guard_reports,
        phase_metrics,
    )

    started = time.monotonic()
    spec = pipeline.phase(judging.phase)
    # as a judge task reads the draft back: from its canonical JSON, by type
    draft = {
        a.type: json.loads(canonical_json(a.content))
        for a in sorted(fanned.artifacts, key=lambda artifact: artifact.type)
    }
    reports = await guard_reports(pipeline, spec, draft, fanned.upstream, strict, None)
    began, own = await _attempt_tasks(store, run_id, judging, fanned)
    calls = attempt_calls(fanned.calls, judging.phase, judging.attempt)
    metrics = phase_metrics(began, own, calls, draft, started)
    return gate_output(spec, judging.attempt, reports, None, artifact_ids, metrics)


async def _attempt_tasks(
    store: Store, run_id: str, judging: _Judging, fanned: FannedIn
) -> tuple[str, Sequence[AgentOutcome]]:
    """When the attempt started and its tasks, as they will read once the fan-in is
    recorded: as the step read them (``FannedIn.read``), else read now."""
    if fanned.read is not None and fanned.read.started_at is not None:
        return fanned.read.started_at, fanned.read.tasks  # ``finishing`` already settled
    record, own = await store.phase_tasks(run_id, judging.phase, judging.attempt)
    if fanned.finishing is not None:  # as they will read once recorded with the verdict
        own = fanned.finishing.settled(own)
    return record.started_at, own
