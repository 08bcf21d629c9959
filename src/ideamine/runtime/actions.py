"""Carrying out the engine's actions against the store, each with its ledger event."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from ideamine.config.model import PhaseSpec, PipelineSpec
from ideamine.engine.gate import calls_no_model
from ideamine.engine.plan import GATE_AGENT, GATE_KEY
from ideamine.engine.snapshot import (
    Action,
    ApplyVerdict,
    CreateTasks,
    FailPhase,
    FanIn,
    FinishRun,
    PhaseState,
    StartPhase,
)
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.observability.tracing import record_spans
from ideamine.runtime.artifacts import ArtifactProblem, assemble_artifacts
from ideamine.runtime.context import BlobCache, upstream_artifacts
from ideamine.runtime.finishing import Finishing, NotRiddenError
from ideamine.runtime.gatestep import (
    FannedIn,
    HandAhead,
    JudgeFailedError,
    judge_fan_in,
)
from ideamine.runtime.stepwrites import StepWrites
from ideamine.stores.base import Store
from ideamine.stores.outputs import call_totals
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    NewTask,
    PhaseStart,
)

__all__ = ["Applied", "Lessee", "OnPass", "apply_action", "start_phases"]

log = logging.getLogger(__name__)


class Lessee(Protocol):
    """Who takes the tasks an action creates, claimed in the transaction that creates them
    (the runner driving the step: one transaction, not a create and then a claim)."""

    def request(self) -> ClaimRequest | None:
        """The claim to make with the tasks; None to leave them pending."""
        ...

    def take(self, claimed: Sequence[ClaimedTask]) -> None:
        """Start the tasks just claimed (or about to be: ``revoke``)."""
        ...

    def revoke(self, claimed: Sequence[ClaimedTask]) -> None:
        """Stop tasks ``take`` started ahead of the commit that was to claim them, which did
        not (``stores.ahead``): they made no store call, and leave no trace."""
        ...


async def apply_action(
    store: Store,
    pipeline: PipelineSpec,
    blobs: BlobCache,
    run_id: str,
    action: Action,
    lessee: Lessee | None = None,
    *,
    on_pass: Sequence[OnPass] = (),
    finishing: Finishing | None = None,
    step: StepWrites | None = None,
    state: PhaseState | None = None,
) -> Applied:
    """Carry out one action; tasks it creates go to ``lessee`` (if any) as they are made.
    ``on_pass`` (with an ``ApplyVerdict``, or a ``FanIn`` whose gate is judged in its step):
    the phases its passing lets start and their first tasks, or the run's end when it
    passes the last phase, carried out in the verdict's transaction should it pass.
    ``finishing`` (with such a ``FanIn`` only): the attempt's last outputs, recorded in the
    fan-in's transaction (``runtime.finishing``), or in the step's first fan-in's
    (``StepWrites.carries``). ``step``: the writes the step holds back (a fan-in judged in
    its step that claims nothing is held there); made before this action writes.
    ``state`` (with a ``FanIn``): its attempt as the step read it, ``finishing`` included;
    a gate judged in the step takes its tasks' outcomes and start time from there instead
    of reading them again.

    Raises:
        NotRiddenError: ``finishing`` was given and the fan-in cannot take it along (its
            artifacts fail their checks, judging raised); nothing was written.
        FinishingRefusedError: an output of ``finishing`` was refused; nothing was written.
    """
    stopped = isinstance(action, FailPhase | FinishRun)
    passed = False
    if step is not None and not isinstance(action, FanIn):
        await step.flush()
    if isinstance(action, StartPhase):
        await start_phases(store, pipeline, blobs, run_id, [action], [], lessee)
    elif isinstance(action, CreateTasks):
        spec = pipeline.phase(action.phase)
        claimed = await store.create_tasks(
            run_id,
            action.phase,
            action.attempt,
            _new_tasks(spec, run_id, action),
            _created(action),
            claim=lessee.request() if lessee else None,
        )
        _hand(claimed, lessee)
    elif isinstance(action, FanIn):
        fanned = await _fan_in(
            store, pipeline, blobs, run_id, action, lessee, on_pass, finishing, step, state
        )
        stopped, passed = fanned.stopped, fanned.passed
    elif isinstance(action, ApplyVerdict):
        # imported at the first verdict, not with the runtime (``runtime.preload``)
        from ideamine.runtime.verdict import apply_verdict  # noqa: PLC0415

        starts = [then for then in on_pass if isinstance(then, StartPhase)]
        firsts = [then for then in on_pass if isinstance(then, CreateTasks)]
        judged = await apply_verdict(
            store,
            pipeline,
            run_id,
            action.phase,
            action.attempt,
            starts=phase_starts(pipeline, run_id, starts, firsts),
            claim=lessee.request() if lessee and firsts else None,
            completes=_completes(on_pass),
        )
        _hand(judged.claimed, lessee)
        stopped, passed = judged.stopped, judged.passed
    elif isinstance(action, FailPhase):
        await _fail(store, run_id, action.phase, action.attempt, action.reason)
    else:
        await _finish(store, run_id, action)
    if step is not None and step.holding:  # its phase ends once the held writes are made
        step.after(partial(record_spans, store, run_id, action))
    else:
        await record_spans(store, run_id, action)  # phase and run spans (no-op: tracing off)
    return Applied(stopped=stopped, passed=passed)


OnPass = StartPhase | CreateTasks | FinishRun  # what a verdict carries out should it pass


def _completes(on_pass: Sequence[OnPass]) -> bool:
    """Whether a verdict passing its phase ends the run (``FinishRun`` in ``on_pass``)."""
    return any(
        isinstance(then, FinishRun) and then.status is RunStatus.COMPLETED for then in on_pass
    )


@dataclass(frozen=True, slots=True)
class Applied:
    """What an action did beyond its writes: whether it took the run out of ``running`` (the
    rest of its step is then moot), and whether it was a verdict that passed its phase."""

    stopped: bool
    passed: bool


async def start_phases(
    store: Store,
    pipeline: PipelineSpec,
    blobs: BlobCache,
    run_id: str,
    starts: Sequence[StartPhase],
    firsts: Sequence[CreateTasks],
    lessee: Lessee | None = None,
) -> None:
    """Carry out a step's ``StartPhase`` actions and the ``CreateTasks`` of those phases'
    first tasks (``firsts``) in one transaction, so phases that start together (security
    and story-loop) do so in one commit; the tasks go to ``lessee`` (if any), ahead of the
    commit when its claim takes them all (``stores.ahead``)."""
    opened = phase_starts(pipeline, run_id, starts, firsts)
    claim = lessee.request() if lessee and firsts else None
    leased = store.lease_ahead(run_id, opened, claim) if lessee and claim else None
    if lessee is None or leased is None:
        claimed = await store.start_phases(run_id, opened, claim=claim)
    else:
        starting = [start.phase for start in opened if start.tasks]
        claimed = await HandAhead(lessee, blobs).record(
            partial(store.start_phases, run_id, opened, claim=claim, ahead=leased),
            leased.claimed,
            run_id,
            lambda cache: cache.foresee_starts(pipeline, run_id, starting),
        )
    _hand(claimed, lessee)


def phase_starts(
    pipeline: PipelineSpec,
    run_id: str,
    starts: Sequence[StartPhase],
    firsts: Sequence[CreateTasks],
) -> list[PhaseStart]:
    """What the store writes for ``starts`` and their phases' first tasks (``firsts``)."""
    first = {(create.phase, create.attempt): create for create in firsts}
    opened = []
    for start in starts:
        spec = pipeline.phase(start.phase)
        create = first.get((start.phase, start.attempt))
        opened.append(
            PhaseStart(
                phase=start.phase,
                attempt=start.attempt,
                started=_started(spec, start),
                tasks=_new_tasks(spec, run_id, create) if create else (),
                created=_created(create) if create else None,
            )
        )
    return opened


def _hand(claimed: Sequence[ClaimedTask], lessee: Lessee | None) -> None:
    if claimed and lessee:
        lessee.take(claimed)


def _started(spec: PhaseSpec, action: StartPhase) -> EventDraft:
    return EventDraft(
        type="phase.started",
        phase=action.phase,
        payload={
            "attempt": action.attempt,
            "depends_on": list(spec.depends_on),
            "agents": list(spec.agents),
            "fan_out": spec.fan_out.kind.value,
        },
    )


def _created(action: CreateTasks) -> EventDraft:
    return EventDraft(
        type="phase.progress",
        phase=action.phase,
        payload={"attempt": action.attempt, "created": [plan.key for plan in action.tasks]},
    )


def _new_tasks(spec: PhaseSpec, run_id: str, action: CreateTasks) -> list[NewTask]:
    return [
        _new_task(spec, run_id, action.attempt, plan.key, plan.agent, plan.iteration)
        for plan in action.tasks
    ]


def _new_task(
    spec: PhaseSpec, run_id: str, attempt: int, key: str, agent: str, iteration: int
) -> NewTask:
    return NewTask(
        id=f"{run_id}.{spec.name}.{attempt}.{key}",
        key=key,
        agent=agent,
        iteration=iteration,
        lease_seconds=spec.heartbeat.interval_seconds * spec.heartbeat.stall_after_missed,
    )


async def _fan_in(
    store: Store,
    pipeline: PipelineSpec,
    blobs: BlobCache,
    run_id: str,
    action: FanIn,
    lessee: Lessee | None,
    on_pass: Sequence[OnPass],
    finishing: Finishing | None,
    step: StepWrites | None,
    state: PhaseState | None,
) -> Applied:
    """Fan the attempt in: with its verdict when its gate calls no model (``on_pass``
    starting with it should it pass, ``finishing`` recorded first), else with its gate task.
    The run stops if the artifacts fail their checks."""
    spec = pipeline.phase(action.phase)
    in_step = calls_no_model(pipeline, spec)
    if finishing is not None and not in_step:
        raise NotRiddenError(f"the gate of {action.phase} is judged by a task of its own")
    outputs = await store.outputs(run_id, action.phase, action.attempt)
    calls = await store.model_calls(run_id)
    if finishing is not None:
        outputs = {**outputs, **finishing.outputs(action.phase, action.attempt)}
        calls = [*calls, *finishing.calls()]
    upstream, input_ids = await upstream_artifacts(store, blobs, pipeline, run_id, action.phase)
    try:
        artifacts = assemble_artifacts(pipeline, spec, action.attempt, outputs, calls, input_ids)
    except ArtifactProblem as exc:
        if finishing is not None:  # the outputs first, on their own; then the usual step
            raise NotRiddenError(str(exc)) from exc
        await _flush(step)
        await _fail(store, run_id, action.phase, action.attempt, str(exc))
        return Applied(stopped=True, passed=False)
    ready = EventDraft(
        type="phase.ready",
        phase=action.phase,
        # the gate task is claimed as created, or carried out (settled) in this transaction
        payload={
            "attempt": action.attempt,
            "tasks": len(outputs),
            ("settled" if in_step else "created"): [GATE_KEY],
        },
    )
    judge = _new_task(spec, run_id, action.attempt, GATE_KEY, GATE_AGENT, 1)
    if in_step:
        fanned = FannedIn(
            artifacts=artifacts,
            artifact_ids=[uuid.uuid4().hex for _ in artifacts],
            ready=ready,
            judge=judge,
            upstream=upstream,
            input_ids=input_ids,
            calls=calls,
            finishing=finishing,
            carries=finishing is None or step is None or step.carries(finishing),
            read=state if state is not None and state.attempt == action.attempt else None,
        )
        return await _judge_in_step(
            store, pipeline, blobs, run_id, action, fanned, lessee, on_pass, step
        )
    await _flush(step)
    made = await store.record_artifacts(
        run_id,
        action.phase,
        action.attempt,
        artifacts,
        ready,
        [judge],
        claim=lessee.request() if lessee else None,
    )
    blobs.keep(run_id, artifacts)  # for the phases it lets start, should its gate pass
    _hand(made.claimed, lessee)
    return Applied(stopped=False, passed=False)


async def _judge_in_step(
    store: Store,
    pipeline: PipelineSpec,
    blobs: BlobCache,
    run_id: str,
    action: FanIn,
    fanned: FannedIn,
    lessee: Lessee | None,
    on_pass: Sequence[OnPass],
    step: StepWrites | None,
) -> Applied:
    """The fan-in of an attempt whose gate calls no model, judged in the same transaction
    (held in ``step`` when it claims nothing: ``runtime.stepwrites``)."""
    starts = [then for then in on_pass if isinstance(then, StartPhase)]
    firsts = [then for then in on_pass if isinstance(then, CreateTasks)]
    try:
        judged = await judge_fan_in(
            store,
            pipeline,
            run_id,
            action.phase,
            action.attempt,
            fanned,
            starts=phase_starts(pipeline, run_id, starts, firsts),
            claim=lessee.request() if lessee and firsts else None,
            completes=_completes(on_pass),
            ahead=HandAhead(lessee, blobs) if lessee and firsts else None,
            step=step,
        )
    except JudgeFailedError as exc:
        if fanned.finishing is not None:  # the outputs first, on their own; then the usual step
            raise NotRiddenError(str(exc)) from exc
        await _flush(step)
        await _fail(store, run_id, action.phase, action.attempt, str(exc))
        return Applied(stopped=True, passed=False)
    if judged.passed:  # before the tasks it started read them: they need not
        blobs.keep(run_id, fanned.artifacts)
        blobs.remember(run_id, action.phase, action.attempt, fanned.artifacts, fanned.artifact_ids)
        if step is not None:  # held: what a join's other side hands out merges it in
            step.on_unmade(partial(blobs.unremember, run_id, action.phase))
    _hand(judged.claimed, lessee)
    return Applied(stopped=judged.stopped, passed=judged.passed)


async def _flush(step: StepWrites | None) -> None:
    """Make the writes ``step`` holds, before one of the action's own."""
    if step is not None:
        await step.flush()


async def _fail(store: Store, run_id: str, phase: str, attempt: int, reason: str) -> None:
    log.info("phase %s of run %s failed: %s", phase, run_id, reason)  # the ledger has it
    await store.set_phase_status(
        run_id,
        phase,
        attempt,
        PhaseStatus.FAILED,
        [
            EventDraft(
                type="phase.error", phase=phase, payload={"attempt": attempt, "reason": reason}
            ),
            EventDraft(type="run.failed", payload={"phase": phase, "reason": reason}),
        ],
        error=reason,
        run_status=RunStatus.FAILED,
    )


async def _finish(store: Store, run_id: str, action: FinishRun) -> None:
    payload = call_totals(await store.model_calls(run_id))
    kind = "run.completed" if action.status is RunStatus.COMPLETED else f"run.{action.status}"
    await store.set_run_status(
        run_id,
        action.status,
        EventDraft(
            type=kind, payload={**payload, "reason": action.reason} if action.reason else payload
        ),
    )
