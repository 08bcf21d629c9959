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
