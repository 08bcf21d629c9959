"""The budget check before each model call, and claiming within a throttled run's share.

The executor gives every task's context a hook (``BudgetChecker.hook``) that the model caller
awaits after a call-cache miss and before sending (invariant 6). The hook reads the run's
usage in one store transaction, adds the task's own calls that are not recorded yet, asks
``engine.budget.decide`` and then:

- appends the first-time crossings (``budget.warning`` at 50 %, ``budget.throttled`` at 80 %),
  once per scope, resource, threshold and limit, so a resumed run does not repeat them;
- when the call would take a budget past 95 %: records the task's calls so far, hands the
  task back untouched (pending, its try not counted), appends ``budget.exceeded`` and moves
  the run to ``needs_attention``, in one transaction, then raises ``BudgetExceededError``
  (the executor does not count it as a failure).

Throttling: a run is throttled from its ``budget.throttled`` event until the next
``budget.added`` (``resume --add-budget``). Both write the flag into the run's options in the
same transaction, so every worker agrees; each halves the number of the run's tasks it holds.
Calls made by tasks still in flight elsewhere are not recorded yet, so concurrent tasks may
overshoot a budget by what they are spending at that moment; the 95 % pause and the 80 %
throttle leave room for that.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ideamine.agents.base import AgentContext, BudgetHook
from ideamine.config.model import PipelineSpec
from ideamine.engine.budget import (
    EXCEED_AT,
    Account,
    Amounts,
    Announcement,
    Decision,
    Level,
    Reading,
    Resource,
    Scope,
    active_minutes,
    decide,
    evidence_minutes,
    pauses,
    phase_limits,
    run_limits,
    task_limits,
    throttled_room,
    timestamp,
)
from ideamine.engine.plan import GATE_AGENT
from ideamine.engine.states import RunStatus
from ideamine.errors import BudgetExceededError
from ideamine.stores.base import Store
from ideamine.stores.records import ClaimedTask, EventDraft, ModelCallRecord, TaskRecord
from ideamine.stores.usage import THROTTLED_OPTION, UsageRows, UsageStore

__all__ = [
    "BudgetChecker",
    "BudgetReport",
    "RunUsage",
    "added_budget",
    "budget_report",
    "claim_within_budget",
    "run_usage",
    "suggested_addition",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUsage:
    """What a run has used: in all, per phase (every attempt) and per task."""

    run: Amounts = field(default_factory=Amounts)
    phases: dict[str, Amounts] = field(default_factory=dict)
    tasks: dict[str, Amounts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetReport:
    """A run's budgets for ``ideamine status``: used and allocated per resource (an
    allocation of 0 means no limit), what ``--add-budget`` added, and the throttle."""

    used: Amounts
    allocated: Amounts
    added: Amounts
    throttled: bool


def added_budget(rows: UsageRows) -> Amounts:
    """What ``resume --add-budget`` added to the run, in all."""
    added = rows.options.get("added_budget")
    return Amounts.from_mapping(added) if isinstance(added, dict) else Amounts()


def run_usage(rows: UsageRows) -> RunUsage:
    """Usage from the stored rows, as of ``rows.now``. Wall clock leaves out the time the
    run was paused or waiting for a person; the run's is the time since its first phase
    started."""
    now = rows.now
    paused = pauses(((kind, timestamp(at)) for kind, at, _ in rows.events), now)
    phases: dict[str, Amounts] = {}
    tasks: dict[str, Amounts] = {}
    for phase, task_id, tokens, usd in rows.calls:
        spent = Amounts(tokens=tokens, usd=usd)
        phases[phase] = phases.get(phase, Amounts()) + spent
        tasks[task_id] = tasks.get(task_id, Amounts()) + spent
    for phase, output in rows.tool_outputs:
        phases[phase] = phases.get(phase, Amounts()) + Amounts(
            tool_minutes=evidence_minutes(output)
        )
    for phase, started, finished in rows.phases:
        span = (timestamp(started), now if finished is None else timestamp(finished))
        minutes = Amounts(wallclock_minutes=active_minutes(span, paused))
        phases[phase] = phases.get(phase, Amounts()) + minutes
    total = Amounts()
    for spent in phases.values():
        total = total + spent
    run = Amounts(
        tokens=total.tokens,
        usd=total.usd,
        tool_minutes=total.tool_minutes,
        wallclock_minutes=active_minutes(_run_span(rows), paused),
    )
    return RunUsage(run=run, phases=phases, tasks=tasks)


def _run_span(rows: UsageRows) -> tuple[float, float]:
    if not rows.phases:
        return (rows.now, rows.now)
    start = min(timestamp(started) for _, started, _ in rows.phases)
    ends = [finished for _, _, finished in rows.phases]
    end = rows.now if None in ends else max(timestamp(str(f)) for f in ends)
    return (start, end)


def _spent(calls: Sequence[ModelCallRecord]) -> Amounts:
    """What a task's calls not yet recorded used (cache hits count 0)."""
    return Amounts(
        tokens=sum(call.tokens_in + call.tokens_out for call in calls),
        usd=sum(call.cost_usd for call in calls),
    )


class BudgetChecker:
    """Checks each model call of one pipeline's tasks against their run's budgets."""

    def __init__(self, store: Store, pipeline: PipelineSpec) -> None:
        self._usage = UsageStore(store)
        self._pipeline = pipeline

    def hook(self, claimed: ClaimedTask, ctx: AgentContext) -> BudgetHook:
        """The check for ``ctx.budget``: once it has paused the run, it refuses every
        further call of the task without asking the store again."""
        refused: list[BudgetExceededError] = []

        async def check(request: Amounts) -> None:
            if refused:
                raise refused[0]
            try:
                await self.check(claimed, ctx.calls, request)
            except BudgetExceededError as exc:
                refused.append(exc)
                raise

        return check

    async def check(
        self, claimed: ClaimedTask, calls: Sequence[ModelCallRecord], request: Amounts
    ) -> Decision:
        """Decide on one request of ``claimed``'s task whose unrecorded calls are ``calls``.

        Raises:
            BudgetExceededError: the call must not be made; the run was paused.
        """
        task = claimed.task
        rows = await self._usage.read(task.run_id, skip_agents=(GATE_AGENT,))
        accounts = self.accounts(task, rows, _spent(calls))
        decision = decide(accounts, request, rows.marks)
        if decision.level is Level.EXCEED:
            assert decision.tightest is not None  # an exceeding decision names its reading
            await self._pause(claimed, calls, decision.tightest)
        if decision.announce:
            await self._usage.announce(task.run_id, [_draft(task, a) for a in decision.announce])
        return decision

    def accounts(self, task: TaskRecord, rows: UsageRows, inflight: Amounts) -> list[Account]:
        """The task's, its phase's and its run's accounts, narrowest first."""
        usage = run_usage(rows)
        added = added_budget(rows)
        agent = self._pipeline.agents.get(task.agent)
        phase = self._pipeline.phase(task.phase)
        return [
            Account(
                scope=Scope.TASK,
                name=task.id,
                limits=task_limits(agent.budget_tokens if agent else None, added),
                used=usage.tasks.get(task.id, Amounts()) + inflight,
            ),
            Account(
                scope=Scope.PHASE,
                name=task.phase,
                limits=phase_limits(phase.budgets, added),
                used=usage.phases.get(task.phase, Amounts()) + inflight,
            ),
            Account(
                scope=Scope.RUN,
                name=task.run_id,
                limits=run_limits((p.budgets for p in self._pipeline.phases), added),
                used=usage.run + inflight,
            ),
        ]

    async def _pause(
        self, claimed: ClaimedTask, calls: Sequence[ModelCallRecord], reading: Reading
    ) -> None:
        task = claimed.task
        error = BudgetExceededError(
            task.run_id,
            scope=reading.scope.value,
            name=reading.name,
            resource=reading.resource.value,
            used=round(reading.used, 6),
            request=round(reading.request, 6),
            limit=round(reading.limit, 6),
            suggested=suggested_addition(reading),
        )
        payload = {
            **reading.as_payload(),
            "threshold": EXCEED_AT,
            "key": task.key,
            "agent": task.agent,
            "suggested": error.suggested,
        }
        exceeded = EventDraft(
            type=Level.EXCEED.event, phase=task.phase, task_id=task.id, payload=payload
        )
        reason = f"{error}; {error.hint}"  # the run's error says how to go on
        await self._usage.pause(
            task.id, claimed.lease_token, calls=list(calls), exceeded=exceeded, reason=reason
        )
        raise error


def suggested_addition(reading: Reading) -> float:
    """An addition that lets the run go on: at least what this call needs to stay under
    95 %, and no less than the limit itself (doubling it), rounded up."""
    needed = max(reading.projected / EXCEED_AT - reading.limit, reading.limit)
    if reading.resource is Resource.USD:
        return math.ceil(needed * 100) / 100
    return float(math.ceil(needed))


def _draft(task: TaskRecord, announcement: Announcement) -> EventDraft:
    return EventDraft(
        type=announcement.level.event,
        phase=task.phase,
        task_id=task.id,
        payload={**announcement.payload(), "key": task.key},
    )


async def budget_report(store: Store, pipeline: PipelineSpec, run_id: str) -> BudgetReport:
    """Used and allocated per resource for the whole run."""
    rows = await UsageStore(store).read(run_id, skip_agents=(GATE_AGENT,))
    added = added_budget(rows)
    return BudgetReport(
        used=run_usage(rows).run,
        allocated=run_limits((p.budgets for p in pipeline.phases), added),
        added=added,
        throttled=rows.options.get(THROTTLED_OPTION) is True,
    )


async def claim_within_budget(
    store: Store,
    scope: str | None,
    *,
    owner: str,
    now: float,
    free: int,
    concurrency: int,
    held: Sequence[str],
) -> list[ClaimedTask]:
    """Claim up to ``free`` tasks of run ``scope`` (or of every running run) for a process
    running at most ``concurrency`` tasks, of which it holds ``held`` (their run ids). A
    throttled run gets at most half of ``concurrency`` (at least one)."""
    if free <= 0:
        return []
    throttled = await UsageStore(store).throttled_runs(scope)
    if not throttled:
        return await store.claim_tasks(scope, owner=owner, now=now, limit=free)
    if scope is not None:
        runs = [scope]
    else:
        runs = [r.id for r in await store.active_runs() if r.status is RunStatus.RUNNING]
    holding = Counter(held)
    claimed: list[ClaimedTask] = []
    for run_id in runs:
        room = free - len(claimed)
        if run_id in throttled:
            room = min(room, throttled_room(concurrency, holding[run_id]))
        if room > 0:
            claimed += await store.claim_tasks(run_id, owner=owner, now=now, limit=room)
    return claimed
