"""Executing one claimed task: build its context, run its agent under a timeout while a
heartbeat renews its lease, and record the result fenced by the lease token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ideamine.agents.base import Agent
from ideamine.clock import Clock
from ideamine.config.model import PipelineSpec
from ideamine.engine.retry import retry_delay
from ideamine.errors import AgentError, BudgetExceededError, StaleLeaseError, UsageError
from ideamine.observability.tracing import TracedContext, mark_task, task_span
from ideamine.runtime.budget import BudgetChecker
from ideamine.runtime.context import BlobCache, task_values
from ideamine.runtime.heartbeat import Heartbeat
from ideamine.runtime.recorder import Recorder
from ideamine.runtime.replayed import REPLAY_OF, RecordedEvidence
from ideamine.stores.ahead import behind
from ideamine.stores.base import Store
from ideamine.stores.records import (
    ClaimedTask,
    EventDraft,
    ModelCallRecord,
    OutputWrite,
    RunRecord,
)

__all__ = ["TaskExecutor"]

log = logging.getLogger(__name__)


class TaskExecutor:
    """Runs claimed tasks of one pipeline."""

    def __init__(
        self,
        store: Store,
        pipeline: PipelineSpec,
        agents: Mapping[str, Agent],
        blobs: BlobCache,
        clock: Clock,
        data_dir: Path | None = None,
        *,
        recorder: Recorder | None = None,
    ) -> None:
        self._store = store
        self._recorder = recorder or Recorder(store)
        self._data_dir = data_dir
        self._pipeline = pipeline
        self._agents = agents
        self._blobs = blobs
        self._clock = clock
        self._budget = BudgetChecker(store, pipeline)

    def fallbacks(self, agent: str) -> int:
        """How many models follow the agent's first one (the unsticker may step down)."""
        chain = getattr(self._agents[agent], "chain_length", 1)
        return max(0, int(chain) - 1)

    def lease_seconds(self, phase: str) -> float:
        beat = self._pipeline.phase(phase).heartbeat
        return beat.interval_seconds * beat.stall_after_missed

    async def execute(self, run: RunRecord, claimed: ClaimedTask) -> None:
        """Run the task to a recorded success, retry or failure. Never raises for agent errors;
        a stale lease (another worker took the task over) is logged and dropped."""
        task = claimed.task
        interval = self._pipeline.phase(task.phase).heartbeat.interval_seconds
        beat = Heartbeat(lambda: self._renew(claimed), interval, task.id)
        beat.start()
        try:
            with task_span(run.id, task):
                await self._execute(run, claimed)
        except StaleLeaseError:
            log.warning("task %s: lost its lease; the result was not recorded", task.id)
        finally:
            await beat.stop()

    async def _execute(self, run: RunRecord, claimed: ClaimedTask) -> None:
        task, token = claimed.task, claimed.lease_token
        agent = self._agents[task.agent]
        values, input_ids = await task_values(self._store, self._blobs, self._pipeline, run, task)
        timeout = agent.spec.timeout_seconds * task.timeout_scale
        ctx = self._context(run, claimed, agent, values)
        ctx.options = await self._blobs.options(run.id)
        original = ctx.options.get(REPLAY_OF)
        if agent.spec.callable is not None and isinstance(original, str):
            agent = RecordedEvidence(agent, original)  # tools are replayed, not run again
        ctx.budget = self._budget.hook(claimed, ctx)
        try:
            async with asyncio.timeout(timeout):
                result = await agent.run(ctx)
        except BudgetExceededError as exc:  # not a failure: the check handed the task back
            mark_task("paused", str(exc))
            log.info("task %s: %s", task.id, exc)
        except (AgentError, UsageError) as exc:
            retryable = bool(getattr(exc, "retryable", False))  # a provider outage may pass
            await self._fail(claimed, f"{type(exc).__name__}: {exc}", retryable, ctx.calls)
        except TimeoutError:
            await self._fail(claimed, f"timed out after {timeout:g} s", True, ctx.calls)
        except StaleLeaseError:
            raise
        except Exception as exc:  # an agent's own bug: recorded in the ledger, then retried
            log.warning(
                "task %s raised %s: %s (recorded; retried if tries remain)",
                task.id,
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            await self._fail(claimed, f"{type(exc).__name__}: {exc}", True, ctx.calls)
        else:
            tokens = sum(call.tokens_in + call.tokens_out for call in result.calls)
            write = OutputWrite(
                task_id=task.id,
                token=token,
                output=result.output,
                text=result.text,
                calls=result.calls,
                payload={
                    "tokens": tokens,
                    "cost_usd": round(sum(call.cost_usd for call in result.calls), 6),
                    "inputs": input_ids,
                },
            )
            if (settling := behind()) is not None:  # the recorder writes in a context of
                await settling  # its own: wait here for a commit this task ran ahead of
            await self._recorder.record(write)

    def _context(
        self, run: RunRecord, claimed: ClaimedTask, agent: Agent, values: dict[str, object]
    ) -> TracedContext:
        """The agent's context: an AgentContext that also writes a span per model call."""
        task, token = claimed.task, claimed.lease_token
        return TracedContext(
            run_id=run.id,
            phase=task.phase,
            attempt=task.attempt,
            key=task.key,
            iteration=task.iteration,
            spec=agent.spec,
            values=values,
            resumed_from=claimed.checkpoint,
            batch_scale=task.batch_scale,
            model_shift=task.model_shift,
            task_id=task.id,
            store=self._store,
            data_dir=self._data_dir,
            _save=lambda data: self._store.save_checkpoint(task.id, token, data),
            _beat=lambda: self._renew(claimed),
            _emit=lambda payload: self._store.append_event(
                run.id,
                EventDraft(
                    type="phase.progress",
                    phase=task.phase,
                    task_id=task.id,
                    payload={"key": task.key, **payload},
                ),
            ),
        )

    async def _fail(
        self,
        claimed: ClaimedTask,
        error: str,
        retryable: bool,
        calls: Sequence[ModelCallRecord] = (),
    ) -> None:
        task = claimed.task
        policy = self._pipeline.phase(task.phase).retries
        delay = retry_delay(policy, tries=task.tries, retryable=retryable, task_id=task.id)
        retry_at = None if delay is None else self._clock.now() + delay
        mark_task("failed" if retry_at is None else "retry", error)
        await self._store.fail_task(
            task.id,
            claimed.lease_token,
            error=error,
            retry_at=retry_at,
            strategy="backoff",
            calls=calls,
        )

    async def _renew(self, claimed: ClaimedTask) -> None:
        await self._store.renew_lease(
            claimed.task.id,
            claimed.lease_token,
            lease_seconds=self.lease_seconds(claimed.task.phase),
            now=self._clock.now(),
        )
