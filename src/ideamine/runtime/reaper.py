"""The reaper: finds tasks whose lease expired and hands them to the unsticker.

It runs in every worker (and in the embedded runner), so a run is never stranded: whoever is
alive takes the work of whoever died.
"""

from __future__ import annotations

import logging

from ideamine.clock import Clock
from ideamine.config.model import PhaseSpec, PipelineSpec
from ideamine.engine.plan import GATE_AGENT
from ideamine.engine.unstick import choose_remedy
from ideamine.runtime.bundles import Bundles
from ideamine.stores.base import Store
from ideamine.stores.records import TaskRecord

__all__ = ["reap"]

log = logging.getLogger(__name__)


async def reap(store: Store, bundles: Bundles, clock: Clock) -> int:
    """Reclaim every expired task with the unsticker's remedy; returns how many."""
    reclaimed = 0
    now = clock.now()
    for task in await store.expired_tasks(now=now):
        bundle = await bundles.for_run(await store.get_run(task.run_id))
        spec = bundle.pipeline.phase(task.phase)
        remedy = choose_remedy(
            stalls=task.stalls,
            batch_scale=task.batch_scale,
            timeout_scale=task.timeout_scale,
            model_shift=task.model_shift,
            fallbacks=bundle.executor.fallbacks(task.agent),
            optional=_optional(bundle.pipeline, spec, task.agent),
        )
        cause = _cause(task, spec.heartbeat.stall_after_missed, now)
        if await store.reclaim_task(task, now=now, remedy=remedy, cause=cause):
            log.warning(
                "task %s stalled (%s); remedy: %s", task.id, task.lease_owner, remedy.strategy
            )
            reclaimed += 1
    return reclaimed


def _optional(pipeline: PipelineSpec, spec: PhaseSpec, agent: str) -> bool:
    """True when the phase needs none of ``agent``'s artifacts (the unsticker may skip it);
    the gate judge, which is no configured agent, decides the gate and is never optional."""
    if agent == GATE_AGENT:
        return False
    required = {a.type for a in spec.artifacts if a.required}
    return not required & set(pipeline.agents[agent].artifact_types)


def _cause(task: TaskRecord, missed: int, now: float) -> str:
    ago = now - (task.lease_expires_at or now)
    return f"missed {missed} heartbeats: the lease of {task.lease_owner} expired {ago:.1f} s ago"
