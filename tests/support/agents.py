"""Python-callable agents for tests and benchmarks (named ``module:function`` in YAML)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from ideamine.agents.base import AgentContext


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


def noop(ctx: AgentContext) -> dict[str, object]:
    """The cheapest agent: returns its key."""
    return {"value": {ctx.key: ctx.iteration}}


async def flaky(ctx: AgentContext) -> dict[str, object]:
    """Fails its first try (raising), succeeds on the next."""
    if ctx.resumed_from is None:
        await ctx.checkpoint({"tried": 1})
        raise RuntimeError("first try fails on purpose")
    return {"value": {ctx.key: "second try"}}


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
