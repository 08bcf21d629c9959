"""The ``Agent`` seam: what an agent is given (its context) and what it gives back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ideamine.config.model import AgentSpec
from ideamine.engine.budget import Amounts
from ideamine.stores.base import Store
from ideamine.stores.records import EventDraft, ModelCallRecord

__all__ = ["Agent", "AgentContext", "AgentResult", "BudgetHook"]

# Called with a model request's worst case after a call-cache miss, before the request is
# sent (invariant 6); raises ``BudgetExceededError`` when the call must not be made.
BudgetHook = Callable[[Amounts], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentResult:
    """An agent's output plus the model calls it made to produce it."""

    output: object
    calls: tuple[ModelCallRecord, ...] = ()
    # ``canonical_json(output)`` when the agent already encoded it (to check it is JSON):
    # stored as it is rather than encoded again
    text: str | None = None


@dataclass(kw_only=True)
class AgentContext:
    """Everything one task's agent may use.

    ``values`` is the template context (idea, upstream artifacts, earlier outputs, iteration,
    feedback). ``resumed_from`` holds what an earlier try of this task saved with
    ``checkpoint``, if anything.
    """

    run_id: str
    phase: str
    attempt: int
    key: str
    iteration: int
    spec: AgentSpec
    values: Mapping[str, object]
    resumed_from: object | None = None
    batch_scale: float = 1.0  # < 1 after a stall: process smaller batches per call
    model_shift: int = 0  # > 0 after a stall: start that far down the model fallback chain
    task_id: str = ""
    # where the run's workspace and other files live (``<data dir>/workspaces/<run id>``)
    data_dir: Path | None = None
    # the run's options: ask, strict_evidence, advisories (an OSV folder) …
    options: Mapping[str, object] = field(default_factory=dict)
    # the run's store, for the model call cache and in-task ledger events (``note``)
    store: Store | None = field(default=None, repr=False)
    # model calls made so far, failed ones included: recorded even if the task fails
    calls: list[ModelCallRecord] = field(default_factory=list, repr=False)
    # the budget check before each model call (set by the executor; None: no budgets)
    budget: BudgetHook | None = field(default=None, repr=False)
    _save: Callable[[object], Awaitable[None]] | None = field(default=None, repr=False)
    _beat: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    _emit: Callable[[Mapping[str, object]], Awaitable[None]] | None = field(
        default=None, repr=False
    )

    async def checkpoint(self, data: object) -> None:
        """Durably keep intermediate progress; a later try of this task gets it back."""
        self.resumed_from = data
        if self._save is not None:
            await self._save(data)

    async def heartbeat(self) -> None:
        """Renew the task's lease now (long agents call this between steps)."""
        if self._beat is not None:
            await self._beat()

    def record_call(self, call: ModelCallRecord) -> None:
        """Keep a model call for the task's record (success or failure alike)."""
        self.calls.append(call)

    async def note(self, event_type: str, payload: Mapping[str, object]) -> None:
        """Append a ledger event about this task that changes no state (e.g. ``task.retry``
        with strategy ``fallback-model`` when the agent moves down its model chain)."""
        if self.store is not None:
            await self.store.append_event(
                self.run_id,
                EventDraft(
                    type=event_type,
                    phase=self.phase,
                    task_id=self.task_id or None,
                    payload={"key": self.key, "agent": self.spec.name, **payload},
                ),
            )

    async def emit(self, payload: Mapping[str, object]) -> None:
        """Report progress as a ``phase.progress`` event."""
        if self._emit is not None:
            await self._emit(payload)


class Agent(Protocol):
    """Turns a context into an output of its ``spec.output_schema``."""

    @property
    def spec(self) -> AgentSpec:
        """What the agent is: its name, schema, time limit, model or callable."""
        ...

    async def run(self, ctx: AgentContext) -> AgentResult:
        """Produce the output. Raise ``AgentError`` for problems a retry will not fix."""
        ...
