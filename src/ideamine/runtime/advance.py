"""One advance step of a run: read its rows, ask the engine, carry the actions out.

Only the holder of the run's advance lease takes steps, so two processes never apply the
same action twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeGuard

from ideamine.config.model import FanOutKind, PipelineSpec
from ideamine.engine.fanout import iteration_complete
from ideamine.engine.gate import calls_no_model
from ideamine.engine.plan import plan
from ideamine.engine.snapshot import (
    Action,
    ApplyVerdict,
    CreateTasks,
    FailPhase,
    FanIn,
    FinishRun,
    PhaseState,
    RunSnapshot,
    StartPhase,
    TaskState,
)
from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus
from ideamine.errors import AgentError, IllegalTransitionError, RowsExistError
from ideamine.runtime.actions import Applied, Lessee, OnPass, apply_action, start_phases
from ideamine.runtime.context import BlobCache, loop_values
from ideamine.runtime.finishing import Finishing, NotRiddenError
from ideamine.runtime.stepwrites import StepWrites
from ideamine.stores.base import Store
from ideamine.stores.records import PhaseRecord, RunRecord, TaskChange, latest_attempts

__all__ = ["Advancer", "Ridden"]

log = logging.getLogger(__name__)


class Advancer:
    """Takes advance steps for runs pinned to one pipeline."""

    def __init__(self, store: Store, pipeline: PipelineSpec, blobs: BlobCache) -> None:
        self.store = store
        self.pipeline = pipeline
        self._blobs = blobs
        self._loop_checks: dict[tuple[str, str, int, int], bool] = {}
        self._tasks: dict[str, _KnownTasks] = {}
        self._in_step: dict[str, bool] = {}  # phase → whether its gate is judged in its step
        self._stepping: dict[str, asyncio.Lock] = {}  # run id → held while a step runs

    async def advance(self, run_id: str, lessee: Lessee | None = None) -> bool:
        """Read what changed in ``run_id`` since the last call and take steps while it is
        running and a step's verdict may have opened the way for the next (a passed phase
        lets the phases after it start); False when it is not running, or the engine had
        nothing to do. The tasks a step creates (a phase's, a fan-in's gate judge, those of the
        phases a passing verdict starts) are claimed for ``lessee`` in the transaction that
        creates them, unless an action later in the step may stop the run (``_apply``); such
        tasks are left to be claimed as usual.

        Only tasks changed since the previous read come from the store (``run_changes``),
        so a step costs the changes, not the run's size: a phase of 2,000 tasks would
        otherwise be read whole after every batch of finished tasks."""
        acted = False
        for _ in range(len(self.pipeline.phases) + 1):  # a verdict per phase at most
            actions, again = await self._step(run_id, lessee)
            acted |= bool(actions)
            if not again:
                break
        return acted

    async def ride(self, finishing: Finishing, lessee: Lessee | None = None) -> Ridden | None:
        """Record ``finishing`` (the outputs of tasks that just ended, not yet written) in
        the transaction of a fan-in they complete, when fanning their attempts in is all the
        step has to do and their gates are judged in the step (``runtime.finishing``). The
        first fan-in takes them along; should there be more (two phases ending together),
        the same step fans the others in, the first's transaction held until the last
        hands out what they open (``runtime.stepwrites``). Once the outputs are recorded, a
        failure of the rest is logged and left to the loop's next step.

        None, with nothing written, when they complete no such fan-in, another step of the
        run is under way, or the fan-in cannot take them along (the artifacts failing their
        checks, judging raising): the caller then records them on their own, and the next
        step does what is left.

        Raises:
            FinishingRefusedError: an output was refused (a stale lease); nothing written.
            IllegalTransitionError: the attempt moved on (another process fanned it in);
                nothing written.
        """
        run_id = finishing.run_id
        if self._stepping_now(run_id) or not all(
            self._rides(phase) for phase, _ in finishing.attempts
        ):
            return None
        known = self._tasks.get(run_id)
        if known is not None and not known.may_finish(finishing):
            return None  # other tasks of these attempts are still open, as last read
        async with self._lock(run_id):
            planned = await self._fan_ins_of(finishing)
            if planned is None:
                return None
            snapshot, fan_ins = planned
            step = StepWrites()
            try:
                _, again = await self._apply(run_id, snapshot, fan_ins, lessee, finishing, step)
            except Exception as exc:
                if step.carried:  # the outputs are recorded: the rest is the next step's
                    _log_after_ride(run_id, exc)
                    return Ridden(again=True)
                if isinstance(exc, NotRiddenError):
                    log.info("run %s: outputs recorded on their own (%s)", run_id, exc)
                    return None
                raise
            return Ridden(again=again)

    async def _fan_ins_of(self, finishing: Finishing) -> tuple[RunSnapshot, list[FanIn]] | None:
        """The run as planned from with ``finishing`` recorded, and the fan-ins then to do,
        when those are all there is to do, one for each attempt ``finishing`` ends, each
        with its gate judged in the step; else None."""
        run, phases, known = await self._changes(finishing.run_id)
        if run.status is not RunStatus.RUNNING or not known.running(finishing):
            return None
        try:
            snapshot = await self._snapshot(run, phases, known, finishing)
        except _LoopConditionError:
            return None  # the next step fails the phase
        actions = plan(self.pipeline, snapshot)
        fan_ins = [a for a in actions if isinstance(a, FanIn) and self._judged_in_step(a.phase)]
        if len(fan_ins) != len(actions):
            return None
        if {(a.phase, a.attempt) for a in fan_ins} != finishing.attempts:
            return None
        return snapshot, fan_ins

    def _judges(self, action: Action) -> TypeGuard[ApplyVerdict | FanIn]:
        """Whether ``action`` applies a verdict: ``ApplyVerdict``, or the ``FanIn`` of a
        phase whose gate calls no model (judged in its step, ``runtime.gatestep``)."""
        if isinstance(action, ApplyVerdict):
            return True
        return isinstance(action, FanIn) and self._judged_in_step(action.phase)

    def _judged_in_step(self, phase: str) -> bool:
        """Whether ``phase``'s gate is judged in its fan-in's step."""
        if phase not in self._in_step:
            spec = self.pipeline.phase(phase)
            self._in_step[phase] = calls_no_model(self.pipeline, spec)
        return self._in_step[phase]

    def _rides(self, phase: str) -> bool:
        """Whether outputs that finish ``phase`` may go with its fan-in: its gate is judged
        in the step, and it is no loop (whose ``until`` reads its outputs from the store)."""
        spec = self.pipeline.phase(phase)
        return spec.fan_out.kind is not FanOutKind.ITERATIVE and self._judged_in_step(phase)

    async def _step(self, run_id: str, lessee: Lessee | None) -> tuple[list[Action], bool]:
        """One read, plan and apply: the actions carried out, and whether a verdict among
        them may have left the next step something to do (``_apply``)."""
        async with self._lock(run_id):
            return await self._step_held(run_id, lessee)

    async def _step_held(self, run_id: str, lessee: Lessee | None) -> tuple[list[Action], bool]:
        """``_step`` with the run's step lock held."""
        run, phases, known = await self._changes(run_id)
        if run.status is not RunStatus.RUNNING:
            return [], False
        try:
            snapshot = await self._snapshot(run, phases, known)
        except _LoopConditionError as problem:
            await apply_action(self.store, self.pipeline, self._blobs, run_id, problem.action)
            return [problem.action], False
        actions = plan(self.pipeline, snapshot)
        return await self._apply(run_id, snapshot, actions, lessee)

    async def _changes(self, run_id: str) -> tuple[RunRecord, list[PhaseRecord], _KnownTasks]:
        """The run and its phases as stored now, and its tasks with what changed merged in."""
        known = self._tasks.setdefault(run_id, _KnownTasks())
        changes = await self.store.run_changes(run_id, known.cursor)
        known.merge(changes.tasks, changes.cursor)
        return changes.run, list(changes.phases), known

    def _lock(self, run_id: str) -> asyncio.Lock:
        """Held while a step of ``run_id`` runs: the loop's steps and a ``ride`` (from the
        task that records outputs) never interleave."""
        return self._stepping.setdefault(run_id, asyncio.Lock())

    def _stepping_now(self, run_id: str) -> bool:
        lock = self._stepping.get(run_id)
        return lock is not None and lock.locked()

    async def _apply(
        self,
        run_id: str,
        snapshot: RunSnapshot,
        actions: Sequence[Action],
        lessee: Lessee | None,
        finishing: Finishing | None = None,
        step: StepWrites | None = None,
    ) -> tuple[list[Action], bool]:
        """Carry ``actions`` out, until one takes the run out of ``running``: the actions
        carried out, and whether the next step may find more to do (a verdict that did not
        pass, or passed without starting what it opens: that waits for the next step). The
        phases starting in this step start in one transaction with their first tasks; those
        a verdict lets start, in the verdict's transaction should it pass. ``finishing``
        (``ride``: the actions are fan-ins judged in their step) goes with the first fan-in.
        A fan-in judged in its step that claims nothing waits in ``step`` for the step's
        next write (``runtime.stepwrites``): a join's second fan-in hands out what it opens
        before both commit.
        An action claims tasks for ``lessee`` only when no action after it in the step may
        end the run (a fan-in whose artifacts fail, a verdict that escalates or asks, a
        failure, the end): tasks are never started for a run that stops in the same step."""
        ending = [i for i, action in enumerate(actions) if isinstance(action, _MAY_END)]
        last = ending[-1] if ending else -1
        starts = [action for action in actions if isinstance(action, StartPhase)]
        opened = {(start.phase, start.attempt) for start in starts}
        firsts = [
            action
            for action in actions
            if isinstance(action, CreateTasks) and (action.phase, action.attempt) in opened
        ]
        started = set(opened)  # phase attempts started in this step so far, or planned to be
        again = False
        step = step or StepWrites()
        try:
            for done, action in enumerate(actions, start=1):
                taker = lessee if done - 1 >= last else None
                applied = _NOTHING
                if action is (starts[0] if starts else None):
                    await step.flush()
                    await start_phases(
                        self.store, self.pipeline, self._blobs, run_id, starts, firsts, taker
                    )
                elif self._judges(action):
                    # the phases its pass lets start, unless a later action may stop the run
                    on_pass = self._opened_by(snapshot, action.phase, started) if taker else []
                    applied = await apply_action(
                        self.store,
                        self.pipeline,
                        self._blobs,
                        run_id,
                        action,
                        taker,
                        on_pass=on_pass,
                        finishing=finishing,
                        step=step,
                        state=snapshot.phases.get(action.phase),
                    )
                    if applied.passed:
                        again |= self._leaves(snapshot, action.phase, started, on_pass, taker)
                        # as the next step would read it: a later verdict of the step may
                        # open more
                        snapshot = _passed(snapshot, action.phase)
                        started |= {(a.phase, a.attempt) for a in on_pass if _opens(a)}
                    else:
                        again = True
                elif not isinstance(action, StartPhase) and action not in firsts:
                    applied = await apply_action(
                        self.store, self.pipeline, self._blobs, run_id, action, taker, step=step
                    )
                if applied.stopped:  # the run leaves `running`: the rest is moot
                    await step.close()
                    return list(actions[:done]), False
            await step.close()
        except BaseException:
            step.discard()
            raise
        return list(actions), again

    def _leaves(
        self,
        snapshot: RunSnapshot,
        phase: str,
        started: set[tuple[str, int]],
        on_pass: Sequence[OnPass],
        taker: Lessee | None,
    ) -> bool:
        """Whether ``phase`` passing leaves the next step something to start: what it opens,
        when it started nothing (``on_pass``); with no taker (a later action of the step may
        stop the run), what it opens on its own, before the step's later verdicts (a join's
        first side opens nothing: its last starts what the join opens)."""
        if taker is not None:
            return not on_pass
        return bool(self._opened_by(snapshot, phase, started))

    def _opened_by(
        self, snapshot: RunSnapshot, phase: str, started: set[tuple[str, int]]
    ) -> list[OnPass]:
        """The phases that ``phase`` passing would let start (besides those ``started`` in
        this step), each with its first tasks, as the next step would plan them from the run
        as read now (with the verdicts this step passed so far); or the run's end, when
        ``phase`` is the last to pass."""
        after = plan(self.pipeline, _passed(snapshot, phase))
        new = {
            (action.phase, action.attempt) for action in after if isinstance(action, StartPhase)
        } - started
        return [
            action
            for action in after
            if isinstance(action, FinishRun)
            or (
                isinstance(action, StartPhase | CreateTasks)
                and (action.phase, action.attempt) in new
            )
        ]

    async def _snapshot(
        self,
        run: RunRecord,
        phases: Sequence[PhaseRecord],
        known: _KnownTasks,
        finishing: Finishing | None = None,
    ) -> RunSnapshot:
        """The run as the engine plans from it; with ``finishing``'s tasks succeeded."""
        states = {}
        for name, record in latest_attempts(phases).items():
            own = tuple(known.tasks_of(name, record.attempt, finishing))
            done = await self._loop_done(run, name, record.attempt, own)
            states[name] = PhaseState(
                attempt=record.attempt,
                status=record.status,
                tasks=own,
                loop_done=done,
                started_at=record.started_at,
            )
        return RunSnapshot(run_id=run.id, status=run.status, phases=states)

    async def _loop_done(
        self, run: RunRecord, phase: str, attempt: int, own: Sequence[TaskState]
    ) -> bool:
        """Evaluate an iterative phase's ``until`` after its latest finished iteration."""
        spec = self.pipeline.phase(phase)
        if spec.fan_out.kind is not FanOutKind.ITERATIVE or not own or spec.loop is None:
            return False
        current = max(task.iteration for task in own)
        if not iteration_complete(spec, own, current):
            return False
        cache_key = (run.id, phase, attempt, current)
        if cache_key not in self._loop_checks:
            values = await loop_values(
                self.store, self._blobs, self.pipeline, run, phase, attempt, current
            )
            from ideamine.agents.render import evaluate_condition  # noqa: PLC0415  (Jinja2)

            try:
                self._loop_checks[cache_key] = evaluate_condition(
                    spec.loop.until, values, where=f"phases/{phase}.yaml loop.until"
                )
            except AgentError as exc:
                raise _LoopConditionError(
                    FailPhase(phase=phase, attempt=attempt, reason=str(exc))
                ) from exc
        return self._loop_checks[cache_key]

    def forget(self, run_id: str) -> None:
        """Drop ``run_id``'s known tasks and loop verdicts; should the run be resumed, they
        are read and worked out again from its rows (the same values, so the same verdicts)."""
        self._tasks.pop(run_id, None)
        if not self._stepping_now(run_id):
            self._stepping.pop(run_id, None)
        for key in [key for key in self._loop_checks if key[0] == run_id]:
            del self._loop_checks[key]


@dataclass(frozen=True, slots=True)
class Ridden:
    """Outputs recorded with the fan-in they completed (``Advancer.ride``); ``again``: the
    next step may find more to do (the verdict did not pass, or passed without starting
    what it opens)."""

    again: bool


_MAY_END = (ApplyVerdict, FanIn, FailPhase, FinishRun)  # actions that may stop the run
_OPEN = (TaskStatus.PENDING, TaskStatus.RUNNING)
_NOTHING = Applied(stopped=False, passed=False)


def _log_after_ride(run_id: str, exc: Exception) -> None:
    """A ride's step failed after the outputs it carried were recorded (a join's second
    fan-in): the loop's next step takes it again, and raises what persists."""
    if isinstance(exc, IllegalTransitionError | RowsExistError):
        log.info("run %s moved on under the step after a ride (%s)", run_id, exc)
    else:
        log.warning("run %s: the step after a ride failed", run_id, exc_info=exc)


def _opens(action: OnPass) -> TypeGuard[StartPhase | CreateTasks]:
    return isinstance(action, StartPhase | CreateTasks)


def _passed(snapshot: RunSnapshot, phase: str) -> RunSnapshot:
    """``snapshot`` with ``phase``'s latest attempt passed."""
    state = replace(snapshot.phases[phase], status=PhaseStatus.PASSED)
    return replace(snapshot, phases={**snapshot.phases, phase: state})


class _KnownTasks:
    """A run's tasks as last read, by phase attempt, and the cursor of that read."""

    def __init__(self) -> None:
        self.cursor = 0
        self._by_attempt: dict[tuple[str, int], dict[str, TaskState]] = {}

    def merge(self, changed: Iterable[TaskChange], cursor: int) -> None:
        for task in changed:
            self._by_attempt.setdefault((task.phase, task.attempt), {})[task.id] = _state(task)
        self.cursor = cursor

    def tasks_of(
        self, phase: str, attempt: int, finishing: Finishing | None = None
    ) -> Iterable[TaskState]:
        """The attempt's tasks; those ``finishing`` ends, succeeded."""
        tasks = self._by_attempt.get((phase, attempt), {})
        if finishing is None or (phase, attempt) not in finishing.attempts:
            return tasks.values()
        ending = finishing.task_ids
        return [
            replace(state, status=TaskStatus.SUCCEEDED, error=None) if task_id in ending else state
            for task_id, state in tasks.items()
        ]

    def may_finish(self, finishing: Finishing) -> bool:
        """Whether ``finishing`` may be the last of its attempts' tasks, as last read: none
        of their other tasks reads as pending or running (a read may lag; a ``False`` only
        means the outputs are recorded on their own)."""
        ending = finishing.task_ids
        for phase, attempt in finishing.attempts:
            for task_id, state in self._by_attempt.get((phase, attempt), {}).items():
                if state.status in _OPEN and task_id not in ending:
                    return False
        return True

    def running(self, finishing: Finishing) -> bool:
        """Whether every task ``finishing`` ends reads as running (as this process holds it)."""
        for task in finishing.tasks:
            state = self._by_attempt.get((task.phase, task.attempt), {}).get(task.id)
            if state is None or state.status is not TaskStatus.RUNNING:
                return False
        return True


def _state(task: TaskChange) -> TaskState:
    return TaskState(
        key=task.key,
        agent=task.agent,
        iteration=task.iteration,
        status=task.status,
        error=task.error,
    )


class _LoopConditionError(Exception):
    """A loop's ``until`` could not be evaluated: the phase fails with this action."""

    def __init__(self, action: FailPhase) -> None:
        super().__init__(action.reason)
        self.action = action
