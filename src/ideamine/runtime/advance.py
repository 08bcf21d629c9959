"""One advance step of a run: read its rows, ask the engine, carry the actions out.

Only the holder of the run's advance lease takes steps, so two processes never apply the
same action twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from ideamine.agents.render import evaluate_condition
from ideamine.config.model import FanOutKind, PipelineSpec
from ideamine.engine.fanout import iteration_complete
from ideamine.engine.plan import plan
from ideamine.engine.snapshot import FailPhase, FinishRun, PhaseState, RunSnapshot, TaskState
from ideamine.errors import AgentError
from ideamine.runtime.actions import apply_action
from ideamine.runtime.context import BlobCache, loop_values
from ideamine.stores.base import Store
from ideamine.stores.records import PhaseRecord, RunRecord, TaskRecord, latest_attempts

__all__ = ["Advancer"]


class Advancer:
    """Takes advance steps for runs pinned to one pipeline."""

    def __init__(self, store: Store, pipeline: PipelineSpec, blobs: BlobCache) -> None:
        self.store = store
        self.pipeline = pipeline
        self._blobs = blobs
        self._loop_checks: dict[tuple[str, str, int, int], bool] = {}

    async def step(
        self, run: RunRecord, phases: Sequence[PhaseRecord], tasks: Sequence[TaskRecord]
    ) -> bool:
        """Apply the engine's actions for ``run``; False when the engine had nothing to do."""
        try:
            snapshot = await self._snapshot(run, phases, tasks)
        except _LoopConditionError as problem:
            await apply_action(self.store, self.pipeline, self._blobs, run.id, problem.action)
            return True
        actions = plan(self.pipeline, snapshot)
        for action in actions:
            await apply_action(self.store, self.pipeline, self._blobs, run.id, action)
            if isinstance(action, FailPhase | FinishRun):
                break  # the run left `running`: the rest of the plan is moot
        return bool(actions)

    async def _snapshot(
        self, run: RunRecord, phases: Sequence[PhaseRecord], tasks: Sequence[TaskRecord]
    ) -> RunSnapshot:
        latest = latest_attempts(phases)
        grouped: dict[str, list[TaskState]] = {name: [] for name in latest}
        for t in tasks:  # one pass over the run's tasks, not one per phase
            record = latest.get(t.phase)
            if record is not None and t.attempt == record.attempt:
                grouped[t.phase].append(
                    TaskState(
                        key=t.key,
                        agent=t.agent,
                        iteration=t.iteration,
                        status=t.status,
                        error=t.error,
                    )
                )
        states = {}
        for name, record in latest.items():
            own = tuple(grouped[name])
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
        """Drop ``run_id``'s loop verdicts; should the run be resumed, they are worked out
        again from its recorded outputs (the same values, so the same verdicts)."""
        for key in [key for key in self._loop_checks if key[0] == run_id]:
            del self._loop_checks[key]


class _LoopConditionError(Exception):
    """A loop's ``until`` could not be evaluated: the phase fails with this action."""

    def __init__(self, action: FailPhase) -> None:
        super().__init__(action.reason)
        self.action = action
