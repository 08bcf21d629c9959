"""The benchmark's agents, named ``bench.agents:FUNCTION`` in the generated agent YAML.

``step`` and ``slow_step`` are W1's and W3's agents (a simulated I/O-bound model call, then a
small dict computed from the direct dependencies' artifacts); ``noop`` is W2's. When
``$BENCH_EXEC_LOG`` names a file, each agent appends ``start``/``done`` lines to it, as the
peer benchmarks do, so W3 can count executions across processes.
"""

from __future__ import annotations

import asyncio
import functools
import os

from bench.shape import DAG, W1_SLEEP, W3_SLEEP, agent_result, digest, result_type
from ideamine.agents.base import AgentContext


@functools.cache
def _log_fd(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def log_exec(event: str, key: str) -> None:
    """Append ``event key attempt pid`` to ``$BENCH_EXEC_LOG`` (one write: atomic append)."""
    path = os.environ.get("BENCH_EXEC_LOG")
    if path:
        line = f"{event} {key} {os.environ.get('BENCH_ATTEMPT', '0')} {os.getpid()}\n"
        os.write(_log_fd(path), line.encode())


def _index(ctx: AgentContext) -> int:
    return int(ctx.key.split(".")[0])  # branch keys read "03.QaAgent3"


async def _step(ctx: AgentContext, seconds: float) -> dict[str, object]:
    index = _index(ctx)
    log_exec("start", f"{ctx.phase}/{index}")
    await asyncio.sleep(seconds)
    artifacts = ctx.values["artifacts"]
    assert isinstance(artifacts, dict)
    upstream = {dep: digest(artifacts[result_type(dep)]) for dep in DAG[ctx.phase]}
    log_exec("done", f"{ctx.phase}/{index}")
    return {"value": {f"{ctx.phase}-{index}": agent_result(ctx.phase, index, upstream)}}


async def step(ctx: AgentContext) -> dict[str, object]:
    """W1's agent: sleeps 0.02 s."""
    return await _step(ctx, W1_SLEEP)


async def slow_step(ctx: AgentContext) -> dict[str, object]:
    """W3's agent: sleeps 0.2 s."""
    return await _step(ctx, W3_SLEEP)


async def noop(ctx: AgentContext) -> dict[str, object]:
    """W2's agent: returns its index (async, so no thread hop: the cheapest agent)."""
    index = _index(ctx)
    return {"value": {f"t{index:05d}": index}}
