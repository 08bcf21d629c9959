"""Replaying evidence: a replayed run reuses the original run's tool measurements.

``ideamine replay`` reproduces a run with no model call (every call comes from the call
cache). Tools measure the world (timings, throughput, ports), so re-running them would change
the artifacts and every prompt built on them. A replayed run (run option ``replay_of``)
therefore takes each Python-callable agent's output (the tool-running agents are callables)
from the original run's recorded output for the same phase, attempt and branch key, and fails
loudly when there is none. Model agents are replayed from the call cache.
"""

from __future__ import annotations

from ideamine.agents.base import Agent, AgentContext, AgentResult
from ideamine.errors import AgentError

__all__ = ["REPLAY_OF", "RecordedEvidence"]

REPLAY_OF = "replay_of"  # run option: the run a replay reproduces


class RecordedEvidence:
    """A callable agent that answers with the original run's recorded output."""

    def __init__(self, agent: Agent, original: str) -> None:
        self.spec = agent.spec
        self._original = original

    async def run(self, ctx: AgentContext) -> AgentResult:
        assert ctx.store is not None  # the executor always gives the run's store
        recorded = await ctx.store.outputs(self._original, ctx.phase, ctx.attempt)
        if ctx.key not in recorded:
            raise AgentError(
                self.spec.name,
                f"replay: run {self._original} has no recorded output for "
                f"{ctx.phase} attempt {ctx.attempt} {ctx.key}",
                hint="replay needs the store that holds the original run; it may have failed "
                "before this task",
            )
        return AgentResult(output=recorded[ctx.key])
