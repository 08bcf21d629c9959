"""The in-process runner: ask the engine what happens next, do it, repeat.

Resume is the same loop: it reads the run's rows and asks the engine again, so no finished
task runs twice (its output row exists) and no phase is judged twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ideamine.agents.base import Agent
from ideamine.agents.builtin import build_agent
from ideamine.agents.render import evaluate_condition
from ideamine.clock import Clock, SystemClock
from ideamine.config.model import FanOutKind, PipelineSpec
from ideamine.engine.fanout import iteration_complete
from ideamine.engine.plan import plan
from ideamine.engine.snapshot import (
    Action,
    FailPhase,
    FinishRun,
    PhaseState,
    RunSnapshot,
    TaskState,
)
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.errors import AgentError, RunStateError
from ideamine.llm.registry import Providers
from ideamine.runtime.actions import apply_action
from ideamine.runtime.context import BlobCache, loop_values
from ideamine.runtime.executor import TaskExecutor
from ideamine.runtime.identity import process_owner
from ideamine.stores.base import Store
from ideamine.stores.records import (
    EventDraft,
    PhaseRecord,
    RunRecord,
    TaskRecord,
    latest_attempts,
)

__all__ = ["Runner"]

log = logging.getLogger(__name__)
DEFAULT_CONCURRENCY = 16
IDLE_POLL_SECONDS = 0.5


class Runner:
    """Drives runs of one pinned pipeline in this process with bounded concurrency."""

    def __init__(
        self,
        store: Store,
        pipeline: PipelineSpec,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock | None = None,
        providers: Providers | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.concurrency = concurrency
        self.owner = owner or process_owner()
        self._clock = clock or SystemClock()
        providers = providers or Providers()
        agents: dict[str, Agent] = {
            name: build_agent(spec, pipeline, providers) for name, spec in pipeline.agents.items()
        }
        self._blobs = BlobCache(store)
        self._executor = TaskExecutor(store, pipeline, agents, self._blobs, self._clock)
        self._loop_checks: dict[tuple[str, int, int], bool] = {}

    async def drive(self, run_id: str) -> RunRecord:
        """Run ``run_id`` until it completes, fails or stops being ``running``."""
        run = await self.store.get_run(run_id)
        if run.status is RunStatus.CREATED:
            await self.store.set_run_status(
                run_id,
                RunStatus.RUNNING,
                EventDraft(
                    type="run.started",
                    payload={"driver": self.owner, "concurrency": self.concurrency},
                ),
                driver=self.owner,
            )
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                run, phases, tasks = await self.store.run_rows(run_id)
                if run.status is not RunStatus.RUNNING:
                    break
                if not await self._step(run, phases, tasks, inflight):
                    await self._wait(inflight, tasks)
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
        return run

    async def _step(
        self,
        run: RunRecord,
        phases: Sequence[PhaseRecord],
        tasks: Sequence[TaskRecord],
        inflight: set[asyncio.Task[None]],
    ) -> bool:
        """Apply the engine's actions and claim tasks; False when there is nothing to do."""
        try:
            snapshot = await self._snapshot(run, phases, tasks)
        except _LoopConditionError as problem:
            await apply_action(self.store, self.pipeline, self._blobs, run.id, problem.action)
            return True
        actions: list[Action] = plan(self.pipeline, snapshot)
        for action in actions:
            await apply_action(self.store, self.pipeline, self._blobs, run.id, action)
            if isinstance(action, FailPhase | FinishRun):
                return True
        free = self.concurrency - len(inflight)
        claimed = await self.store.claim_tasks(
            run.id,
            owner=self.owner,
            now=self._clock.now(),
            limit=free,
        )
        for item in claimed:
            job = asyncio.create_task(self._executor.execute(run, item), name=item.task.key)
            inflight.add(job)
        return bool(actions or claimed)

    async def _wait(self, inflight: set[asyncio.Task[None]], tasks: Sequence[TaskRecord]) -> None:
        """Block until a task finishes, a retry falls due, or another process may have moved."""
        if inflight:
            done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            inflight.difference_update(done)
            for job in done:
                job.result()  # re-raise anything unexpected (store failures): never swallowed
            return
        waiting = [t.not_before for t in tasks if t.status is TaskStatus.PENDING]
        if waiting:
            await asyncio.sleep(max(0.0, min(min(waiting) - self._clock.now(), IDLE_POLL_SECONDS)))
            return
        if any(t.status is TaskStatus.RUNNING for t in tasks):
            await asyncio.sleep(IDLE_POLL_SECONDS)  # held by another process; poll
            return
        raise RunStateError(
            tasks[0].run_id if tasks else "?",
            "the run has nothing to do but is not finished",
            hint="this is a bug in IdeaMine; `ideamine events RUN` shows the ledger so far",
        )

    async def _snapshot(
        self, run: RunRecord, phases: Sequence[PhaseRecord], tasks: Sequence[TaskRecord]
    ) -> RunSnapshot:
        states = {}
        for name, record in latest_attempts(phases).items():
            own = tuple(
                TaskState(
                    key=t.key, agent=t.agent, iteration=t.iteration, status=t.status, error=t.error
                )
                for t in tasks
                if t.phase == name and t.attempt == record.attempt
            )
            done = await self._loop_done(run, name, record.attempt, own)
            states[name] = PhaseState(
                attempt=record.attempt, status=record.status, tasks=own, loop_done=done
            )
        return RunSnapshot(run_id=run.id, status=run.status, phases=states)

    async def _loop_done(
        self,
        run: RunRecord,
        phase: str,
        attempt: int,
        own: Sequence[TaskState],
    ) -> bool:
        """Evaluate an iterative phase's ``until`` after its latest finished iteration."""
        spec = self.pipeline.phase(phase)
        if spec.fan_out.kind is not FanOutKind.ITERATIVE or not own or spec.loop is None:
            return False
        current = max(task.iteration for task in own)
        if not iteration_complete(spec, own, current):
            return False
        cache_key = (phase, attempt, current)
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


class _LoopConditionError(Exception):
    """A loop's ``until`` could not be evaluated: the phase fails with this action."""

    def __init__(self, action: FailPhase) -> None:
        super().__init__(action.reason)
        self.action = action
