"""The unsticker: what to do with a task whose lease expired (it missed its heartbeats).

Pure: the choice depends only on how often the task stalled before and on what the pipeline
allows for its agent. Each stall moves one step down the ladder::

    smaller-batch → fallback-model (once per fallback) → longer-timeout → retry
                  → skip-optional (if no required artifact depends on it) | escalate
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Remedy", "Strategy", "choose_remedy"]


class Strategy(StrEnum):
    SMALLER_BATCH = "smaller-batch"
    FALLBACK_MODEL = "fallback-model"
    LONGER_TIMEOUT = "longer-timeout"
    RETRY = "retry"
    SKIP_OPTIONAL = "skip-optional"
    ESCALATE = "escalate"


@dataclass(frozen=True, slots=True, kw_only=True)
class Remedy:
    """The chosen strategy and the task settings that carry it out."""

    strategy: Strategy
    batch_scale: float
    timeout_scale: float
    model_shift: int

    @property
    def gives_up(self) -> bool:
        """True when the task will not be tried again by itself."""
        return self.strategy in (Strategy.SKIP_OPTIONAL, Strategy.ESCALATE)


def choose_remedy(
    *,
    stalls: int,
    batch_scale: float,
    timeout_scale: float,
    model_shift: int,
    fallbacks: int,
    optional: bool,
) -> Remedy:
    """The remedy for a task's next stall.

    Args:
        stalls: how many times the task stalled before this one.
        batch_scale, timeout_scale, model_shift: the task's current settings.
        fallbacks: how many models follow the first in the agent's fallback chain.
        optional: True when none of the phase's required artifacts comes from the agent.
    """
    # The ladder depends only on the agent's whole chain, so each stall takes the next rung.
    ladder = [
        Strategy.SMALLER_BATCH,
        *[Strategy.FALLBACK_MODEL] * fallbacks,
        Strategy.LONGER_TIMEOUT,
        Strategy.RETRY,
    ]
    if stalls < len(ladder):
        strategy = ladder[stalls]
    else:
        strategy = Strategy.SKIP_OPTIONAL if optional else Strategy.ESCALATE
    return Remedy(
        strategy=strategy,
        batch_scale=batch_scale / 2 if strategy is Strategy.SMALLER_BATCH else batch_scale,
        timeout_scale=timeout_scale * 2 if strategy is Strategy.LONGER_TIMEOUT else timeout_scale,
        model_shift=model_shift + 1 if strategy is Strategy.FALLBACK_MODEL else model_shift,
    )
