"""Python-callable agents for tests and benchmarks (named ``module:function`` in YAML)."""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from pathlib import Path

from ideamine.agents.base import AgentContext
from ideamine.canonical import canonical_json
from ideamine.stores.base import Store


def _log(ctx: AgentContext, what: str) -> None:
    """Append to $IDEAMINE_TEST_EXEC_LOG so tests can count executions across processes."""
    path = os.environ.get("IDEAMINE_TEST_EXEC_LOG")
    if path:
        with Path(path).open("a") as handle:
            handle.write(f"{what} {ctx.phase} {ctx.key} {time.time():.6f}\n")


async def echo(ctx: AgentContext) -> dict[str, object]:
    """Return the key, phase and upstream artifact types.

    Sleeps $IDEAMINE_TEST_SLEEP seconds times (1 + the agent's index in its phase), so the
    agents of a fan-out finish one after another and tests can stop a run between them.
    """
    _log(ctx, "start")
    index = int(ctx.key.split(".")[-2])
    await asyncio.sleep(float(os.environ.get("IDEAMINE_TEST_SLEEP", "0")) * (1 + index))
    _log(ctx, "end")
    upstream = sorted(ctx.values["artifacts"])  # type: ignore[call-overload]
    return {"value": {ctx.key: {"phase": ctx.phase, "upstream": upstream}}}


_GATHERED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[list[int], asyncio.Event]]
_GATHERED = weakref.WeakKeyDictionary()


async def together(ctx: AgentContext) -> dict[str, object]:
    """``echo``'s output, once $IDEAMINE_TEST_TOGETHER agents calling it (in this event
    loop) have started: they all end in the same instant, whatever the load (two phases'
    last agents, say, so their outputs go to the recorder together)."""
    _log(ctx, "start")
    arrived, gathered = _GATHERED.setdefault(asyncio.get_running_loop(), ([0], asyncio.Event()))
    arrived[0] += 1
    if arrived[0] >= int(os.environ["IDEAMINE_TEST_TOGETHER"]):
        gathered.set()
    await gathered.wait()
    _log(ctx, "end")
    upstream = sorted(ctx.values["artifacts"])  # type: ignore[call-overload]
    return {"value": {ctx.key: {"phase": ctx.phase, "upstream": upstream}}}


def upstream_text(ctx: AgentContext) -> dict[str, object]:
    """Returns the canonical JSON of everything it got from upstream (each artifact's
    content), so two runs that fed their agents alike write alike."""
    return {"value": {ctx.key: canonical_json(ctx.values["artifacts"])}}


def noop(ctx: AgentContext) -> dict[str, object]:
    """The cheapest agent: returns its key."""
    return {"value": {ctx.key: ctx.iteration}}


async def flaky(ctx: AgentContext) -> dict[str, object]:
    """Fails its first try (raising), succeeds on the next."""
    if ctx.resumed_from is None:
        await ctx.checkpoint({"tried": 1})
        raise RuntimeError("first try fails on purpose")
    return {"value": {ctx.key: "second try"}}


def not_json(ctx: AgentContext) -> dict[str, object]:
    """Returns a NaN (as ``json.loads`` gives for a model's ``NaN``): no JSON a store keeps."""
    return {"value": {ctx.key: float("nan")}}


def wrong_shape(ctx: AgentContext) -> dict[str, object]:
    """Returns an output that breaks the test output schema (no ``value``)."""
    return {"unexpected": ctx.key}


async def checkpointing(ctx: AgentContext) -> dict[str, object]:
    """Saves a checkpoint, then works for $IDEAMINE_TEST_HOLD seconds (long enough to be
    killed); a later try that finds the checkpoint finishes at once from it."""
    if ctx.resumed_from is not None:
        _log(ctx, "resumed")
        return {"value": {ctx.key: {"resumed_from": ctx.resumed_from}}}
    _log(ctx, "start")
    await ctx.checkpoint({"step": 1, "key": ctx.key})
    await asyncio.sleep(float(os.environ.get("IDEAMINE_TEST_HOLD", "30")))
    _log(ctx, "end")
    return {"value": {ctx.key: "finished without resuming"}}


async def batchy(ctx: AgentContext) -> dict[str, object]:
    """Works for $IDEAMINE_TEST_HOLD times batch_scale seconds: a smaller batch finishes sooner."""
    _log(ctx, f"start batch_scale={ctx.batch_scale}")
    await asyncio.sleep(float(os.environ.get("IDEAMINE_TEST_HOLD", "30")) * ctx.batch_scale)
    _log(ctx, "end")
    return {"value": {ctx.key: {"batch_scale": ctx.batch_scale}}}


def stories(ctx: AgentContext) -> dict[str, object]:
    """Five user stories (the quality-loop tests' story writer)."""
    _log(ctx, "start")
    found = [{"id": f"US-{n}", "title": f"Story {n} for farmers"} for n in range(1, 6)]
    return {"stories": found}


def _nfrs(count: int) -> dict[str, object]:
    return {"nfrs": [{"id": f"NFR-{n}", "text": f"NFR {n}"} for n in range(count)]}


def nfrs_from_feedback(ctx: AgentContext) -> dict[str, object]:
    """Two NFRs (too few), three once the gate's feedback in the context says NFRs are short."""
    _log(ctx, "start")
    feedback = ctx.values["feedback"]
    asked = isinstance(feedback, list) and any("NFRs" in str(f["description"]) for f in feedback)
    return _nfrs(3 if asked else 2)


def nfrs_always_short(ctx: AgentContext) -> dict[str, object]:
    """Always two NFRs: the gate's failure repeats identically."""
    _log(ctx, "start")
    return _nfrs(2)


def contradicting_prd(ctx: AgentContext) -> dict[str, object]:
    """A PRD whose release criterion says p95 ≤ 200 ms while its NFR says 2 s (criterion 4)."""
    return {
        "PRD": {
            "title": "Farm marketplace",
            "release_criteria": [{"id": "RC-1", "criterion": "p95 latency <= 200 ms"}],
        },
        "NFRs": {"nfrs": [{"id": "NFR-1", "category": "performance", "text": "p95 latency 2 s"}]},
    }


async def stalling(ctx: AgentContext) -> dict[str, object]:
    """Like ``echo``, but a first try stalls: its heartbeat stops reaching the store (as a
    wedged heartbeat or a frozen process's would) while it keeps working until the reaper has
    reclaimed the task (its ``stalls`` count went up), at most $IDEAMINE_TEST_STALL_MAX
    seconds (default 120). It then returns a late result that the lease fence must reject.
    The retry after the stall runs with a smaller batch (the unsticker's first remedy) and
    succeeds as ``echo``."""
    if ctx.batch_scale < 1.0:
        _log(ctx, "retried")
        return await echo(ctx)
    _log(ctx, "stall")
    store = _dropping_renewals(ctx)
    _STALLED.add(ctx.task_id)
    try:
        deadline = time.monotonic() + float(os.environ.get("IDEAMINE_TEST_STALL_MAX", "120"))
        while time.monotonic() < deadline:
            if await _reclaimed(ctx, store):
                break
            await asyncio.sleep(0.25)
    finally:
        _STALLED.discard(ctx.task_id)
    _log(ctx, "zombie")
    return {"value": {ctx.key: "a zombie's late result (must not be recorded)"}}


_STALLED: set[str] = set()  # task ids whose lease renewals `_dropping_renewals` drops


def _dropping_renewals(ctx: AgentContext) -> Store:
    """The worker's store, its ``renew_lease`` wrapped (once) to drop the renewals of the
    tasks in ``_STALLED``: the executor's heartbeat keeps beating, nothing reaches the store."""
    store = ctx.store
    if store is None:
        raise RuntimeError("the stalling agent needs the store in its context")
    if not getattr(store, "_drops_stalled_renewals", False):
        renew = store.renew_lease

        async def renew_unless_stalled(
            task_id: str, token: str, *, lease_seconds: float, now: float
        ) -> None:
            if task_id not in _STALLED:
                await renew(task_id, token, lease_seconds=lease_seconds, now=now)

        store.renew_lease = renew_unless_stalled  # type: ignore[method-assign]
        store._drops_stalled_renewals = True  # type: ignore[attr-defined]
    return store


async def _reclaimed(ctx: AgentContext, store: Store) -> bool:
    _, _, tasks = await store.run_rows(ctx.run_id)
    return any(task.id == ctx.task_id and task.stalls > 0 for task in tasks)
