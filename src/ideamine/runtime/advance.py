"""One advance step of a run: read its rows, ask the engine, carry the actions out.

Only the holder of the run's advance lease takes steps, so two processes never apply the
same action twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
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
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.errors import AgentError
from ideamine.runtime.actions import Applied, Lessee, apply_action, start_phases
from ideamine.runtime.context import BlobCache, loop_values
from ideamine.stores.base import Store
from ideamine.stores.records import PhaseRecord, RunRecord, TaskChange, latest_attempts

__all__ = ["Advancer"]


class Advancer:
    """Takes advance steps for runs pinned to one pipeline."""

    def __init__(self, store: Store, pipeline: PipelineSpec, blobs: BlobCache) -> None:
        self.store = store
        self.pipeline = pipeline
        self._blobs = blobs
        self._loop_checks: dict[tuple[str, str, int, int], bool] = {}
        self._tasks: dict[str, _KnownTasks] = {}
        self._in_step: dict[str, bool] = {}  # phase → whether its gate is judged in its step

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

    def _judges(self, action: Action) -> TypeGuard[ApplyVerdict | FanIn]:
        """Whether ``action`` applies a verdict: ``ApplyVerdict``, or the ``FanIn`` of a
        phase whose gate calls no model (judged in its step, ``runtime.gatestep``)."""
        if isinstance(action, ApplyVerdict):
            return True
        if not isinstance(action, FanIn):
            return False
        if action.phase not in self._in_step:
            spec = self.pipeline.phase(action.phase)
            self._in_step[action.phase] = calls_no_model(self.pipeline, spec)
        return self._in_step[action.phase]

    async def _step(self, run_id: str, lessee: Lessee | None) -> tuple[list[Action], bool]:
        """One read, plan and apply: the actions carried out, and whether a verdict among
        them may have left the next step something to do (``_apply``)."""
        known = self._tasks.setdefault(run_id, _KnownTasks())
        changes = await self.store.run_changes(run_id, known.cursor)
        known.merge(changes.tasks, changes.cursor)
        if changes.run.status is not RunStatus.RUNNING:
            return [], False
        try:
            snapshot = await self._snapshot(changes.run, changes.phases, known)
        except _LoopConditionError as problem:
            await apply_action(self.store, self.pipeline, self._blobs, run_id, problem.action)
            return [problem.action], False
        actions = plan(self.pipeline, snapshot)
        return await self._apply(run_id, snapshot, actions, lessee)

    async def _apply(
        self,
        run_id: str,
        snapshot: RunSnapshot,
        actions: Sequence[Action],
        lessee: Lessee | None,
    ) -> tuple[list[Action], bool]:
        """Carry ``actions`` out, until one takes the run out of ``running``: the actions
        carried out, and whether the next step may find more to do (a verdict that did not
        pass, or passed without starting what it opens: that waits for the next step). The
        phases starting in this step start in one transaction with their first tasks; those
        a verdict lets start, in the verdict's transaction should it pass.
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
        for done, action in enumerate(actions, start=1):
            taker = lessee if done - 1 >= last else None
            applied = _NOTHING
            if action is (starts[0] if starts else None):
                await start_phases(self.store, self.pipeline, run_id, starts, firsts, taker)
            elif self._judges(action):
                # the phases its pass lets start, unless a later action may stop the run
                on_pass = self._opened_by(snapshot, action.phase, started) if taker else []
                applied = await apply_action(
                    self.store, self.pipeline, self._blobs, run_id, action, taker, on_pass=on_pass
                )
                if applied.passed:  # as the next step would read it: a later verdict of
                    snapshot = _passed(snapshot, action.phase)  # the step may open more
                    started |= {(a.phase, a.attempt) for a in on_pass}
                again |= not (applied.passed and on_pass)
            elif not isinstance(action, StartPhase) and action not in firsts:
                applied = await apply_action(
                    self.store, self.pipeline, self._blobs, run_id, action, taker
                )
            if applied.stopped:
                return list(actions[:done]), False  # the run left `running`: the rest is moot
        return list(actions), again

    def _opened_by(
        self, snapshot: RunSnapshot, phase: str, started: set[tuple[str, int]]
    ) -> list[StartPhase | CreateTasks]:
        """The phases that ``phase`` passing would let start (besides those ``started`` in
        this step), each with its first tasks, as the next step would plan them from the run
        as read now (with the verdicts this step passed so far)."""
        after = plan(self.pipeline, _passed(snapshot, phase))
        new = {
            (action.phase, action.attempt) for action in after if isinstance(action, StartPhase)
        } - started
        return [
            action
            for action in after
            if isinstance(action, StartPhase | CreateTasks)
            and (action.phase, action.attempt) in new
        ]

    async def _snapshot(
        self, run: RunRecord, phases: Sequence[PhaseRecord], known: _KnownTasks
    ) -> RunSnapshot:
        states = {}
        for name, record in latest_attempts(phases).items():
            own = tuple(known.tasks_of(name, record.attempt))
            done = await self._loop_done(run, name, record.attempt, own)
            states[name] = PhaseState(
                attempt=record.attempt, status=record.status, tasks=own, loop_done=done
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
        for key in [key for key in self._loop_checks if key[0] == run_id]:
            del self._loop_checks[key]


_MAY_END = (ApplyVerdict, FanIn, FailPhase, FinishRun)  # actions that may stop the run
_NOTHING = Applied(stopped=False, passed=False)


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

    def tasks_of(self, phase: str, attempt: int) -> Iterable[TaskState]:
        return self._by_attempt.get((phase, attempt), {}).values()


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
