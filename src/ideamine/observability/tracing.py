"""OpenTelemetry tracing (SPEC §9): spans run → phase → task → model call, with the GenAI
semantic-convention attributes on model calls.

Off by default. ``configure_tracing`` installs an exporter (``ideamine serve --trace
console``, or tests with an in-memory exporter); otherwise the standard
``OTEL_TRACES_EXPORTER`` variable (``console``, ``otlp`` with opentelemetry-exporter-otlp
installed, or ``none``) is read once, on first use, by any process (``run``, ``worker``,
``serve``). ``OTEL_SDK_DISABLED=true`` turns it off.

A run's steps happen in many processes, and a phase ends long after (and perhaps elsewhere
than) it began. So the run and phase spans are written when they finish, with their start
times from the store, and their ids are derived from the run id: trace id from the run, span
id from (run) and (run, phase, attempt). Task spans in any process name the phase span as
their parent by that derived id, and the spans of one run form one tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode

from ideamine.agents.base import AgentContext
from ideamine.engine.snapshot import Action, ApplyVerdict, FailPhase, FanIn, FinishRun
from ideamine.errors import UsageError
from ideamine.stores.base import Store
from ideamine.stores.records import ModelCallRecord, RunRecord


class SpannedTask(Protocol):
    """What a task span names: a task's row (``TaskRecord``), or a gate judged in its
    fan-in's step, which has no row until its transaction commits."""

    @property
    def id(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def tries(self) -> int: ...


if TYPE_CHECKING:  # the SDK (~25 ms to import) loads only when tracing is configured
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "TRACES_ENV",
    "SpannedTask",
    "TracedContext",
    "configure_from_env",
    "configure_tracing",
    "disable_tracing",
    "mark_task",
    "record_spans",
    "span_id_of",
    "task_span",
    "tool_span",
    "trace_id_of",
    "tracer",
    "tracing_on",
]

log = logging.getLogger(__name__)
TRACES_ENV = "OTEL_TRACES_EXPORTER"
TRACER = "ideamine"
_forced: ContextVar[tuple[int, int] | None] = ContextVar("ideamine_span_ids", default=None)
_provider: list[TracerProvider] = []  # the provider configure_tracing installed (0 or 1)
_env_read: list[bool] = []
_emitted: set[tuple[str, ...]] = set()  # run/phase spans this process wrote already


def forced_ids() -> tuple[int, int] | None:
    """The (trace id, span id) a run or phase span being written takes, else None."""
    return _forced.get()


def trace_id_of(run_id: str) -> int:
    """The trace id of every span of ``run_id``."""
    return int(hashlib.sha256(f"ideamine/{run_id}".encode()).hexdigest()[:32], 16) or 1


def span_id_of(run_id: str, *parts: str) -> int:
    """The span id of the run (no ``parts``) or of a phase attempt (``phase, attempt``)."""
    text = "/".join(("ideamine", run_id, *parts))
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16) or 1


def configure_tracing(exporter: SpanExporter, *, batch: bool = True) -> TracerProvider:
    """Send IdeaMine's spans to ``exporter`` from now on (replacing an earlier choice)."""
    from ideamine.observability.sdk import provider_for  # noqa: PLC0415  # the SDK, on use

    provider = provider_for(exporter, batch=batch)
    _provider[:] = [provider]
    return provider


def disable_tracing() -> None:
    """Stop sending spans (flushing what was queued); the environment is not read again."""
    for provider in _provider:
        provider.shutdown()
    _provider.clear()
    _env_read[:] = [True]


def configure_from_env(choice: str | None = None) -> TracerProvider | None:
    """Install the exporter ``choice`` names (default ``$OTEL_TRACES_EXPORTER``); None when
    tracing stays off.

    Raises:
        UsageError: an unknown exporter, or ``otlp`` without its package installed.
    """
    _env_read[:] = [True]
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    names = [n.strip() for n in (choice or os.environ.get(TRACES_ENV, "")).split(",")]
    names = [n for n in names if n and n != "none"]
    if not names:
        return None
    if len(names) > 1 or names[0] not in ("console", "otlp"):
        raise UsageError(
            f"unsupported {TRACES_ENV}={','.join(names)}",
            hint="use console, otlp (with opentelemetry-exporter-otlp installed) or none",
        )
    if names[0] == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter  # noqa: PLC0415

        return configure_tracing(ConsoleSpanExporter(out=sys.stderr))
    return configure_tracing(_otlp_exporter())


def _otlp_exporter() -> SpanExporter:
    try:
        # optional package: imported only when asked for
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError as exc:
        raise UsageError(
            f"{TRACES_ENV}=otlp needs the OTLP exporter package",
            hint="pip install opentelemetry-exporter-otlp-proto-http (it reads "
            "OTEL_EXPORTER_OTLP_ENDPOINT and the other standard variables)",
        ) from exc
    exporter: SpanExporter = OTLPSpanExporter()
    return exporter


def tracer() -> trace.Tracer:
    """IdeaMine's tracer: the configured provider's, else the global one (a no-op unless
    the application installed one)."""
    _read_env_once()
    provider = _provider[0] if _provider else trace.get_tracer_provider()
    return provider.get_tracer(TRACER)


def _read_env_once() -> None:
    if not _provider and not _env_read:
        try:
            configure_from_env()
        except UsageError as exc:
            log.warning("tracing stays off: %s (%s)", exc, exc.hint)


def _ns(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1e9)


def _parent(run_id: str, span_id: int) -> otel_context.Context:
    parent = SpanContext(
        trace_id=trace_id_of(run_id),
        span_id=span_id,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())


def tracing_on() -> bool:
    """True when spans go somewhere: IdeaMine's provider is configured, or the application
    installed a global one (the default global provider only hands out no-op spans)."""
    _read_env_once()
    return bool(_provider) or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextlib.contextmanager
def task_span(run_id: str, task: SpannedTask) -> Iterator[Span]:
    """The span of one try of a task, a child of its phase attempt's span (no span, and no
    cost, while tracing is off)."""
    if not tracing_on():
        yield trace.INVALID_SPAN
        return
    parent = _parent(run_id, span_id_of(run_id, task.phase, str(task.attempt)))
    attributes: Mapping[str, str | int] = {
        "ideamine.run.id": run_id,
        "ideamine.phase": task.phase,
        "ideamine.phase.attempt": task.attempt,
        "ideamine.task.id": task.id,
        "ideamine.task.key": task.key,
        "ideamine.agent": task.agent,
        "ideamine.task.try": task.tries,
        "gen_ai.agent.name": task.agent,
    }
    with tracer().start_as_current_span(
        f"task {task.key}", context=parent, attributes=attributes
    ) as span:
        span.set_attribute("ideamine.task.outcome", "succeeded")
        yield span


def mark_task(outcome: str, error: str) -> None:
    """Record on the current task span that the try failed (``retry`` or ``failed``)."""
    span = trace.get_current_span()
    span.set_attribute("ideamine.task.outcome", outcome)
    span.set_status(Status(StatusCode.ERROR, error[:500]))


def model_call_span(call: ModelCallRecord) -> None:
    """Write the span of a model call that just ended (a child of the current task span),
    with the GenAI semantic-convention attributes."""
    end = time.time_ns()
    span = tracer().start_span(
        f"chat {call.model}",
        kind=SpanKind.CLIENT,
        start_time=end - int(call.latency_ms * 1e6),
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": call.provider,
            "gen_ai.provider.name": call.provider,
            "gen_ai.request.model": call.model,
            "gen_ai.response.model": call.model,
            "gen_ai.usage.input_tokens": call.tokens_in,
            "gen_ai.usage.output_tokens": call.tokens_out,
            "ideamine.call.outcome": call.outcome,
            "ideamine.call.cached": call.outcome == "cached",
            "ideamine.call.cost_usd": call.cost_usd,
            "ideamine.call.prompt_hash": call.prompt_hash,
            **_request_params(call.params),
        },
    )
    if call.outcome not in ("ok", "cached"):
        span.set_status(Status(StatusCode.ERROR, call.outcome))
    span.end(end_time=end)


def _request_params(params: Mapping[str, object]) -> dict[str, float | int]:
    found: dict[str, float | int] = {}
    for name, key in (("temperature", "temperature"), ("max_tokens", "max_tokens")):
        value = params.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[f"gen_ai.request.{name}"] = value
    return found


@contextlib.contextmanager
def tool_span(tool: str, **attributes: str | int | float) -> Iterator[Span]:
    """The span of a real tool run (compileall, pytest, ruff, …) inside a task."""
    with tracer().start_as_current_span(
        f"execute_tool {tool}",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            **attributes,
        },
    ) as span:
        yield span


class TracedContext(AgentContext):
    """An ``AgentContext`` that writes a span for each model call it records."""

    def record_call(self, call: ModelCallRecord) -> None:
        super().record_call(call)
        model_call_span(call)


async def record_spans(store: Store, run_id: str, action: Action) -> None:
    """After an action: write the span of a phase attempt that just finished and of the run
    if it finished (no-op while tracing is off)."""
    if not isinstance(action, ApplyVerdict | FailPhase | FanIn | FinishRun):
        return
    if not _recording():
        return
    run, phases, _ = await store.run_rows(run_id)
    if not isinstance(action, FinishRun):
        for record in phases:
            same = (record.phase, record.attempt) == (action.phase, action.attempt)
            if same and record.finished_at is not None:
                _phase_span(
                    run_id,
                    record.phase,
                    record.attempt,
                    record.status.value,
                    record.started_at,
                    record.finished_at,
                    record.error,
                )
    if run.status.finished:
        _run_span(run)


def _run_span(run: RunRecord) -> None:
    if ("run", run.id) in _emitted:
        return
    _emitted.add(("run", run.id))
    attributes: dict[str, str | int] = {
        "ideamine.run.id": run.id,
        "ideamine.run.status": run.status.value,
        "ideamine.run.source": run.source,
        "ideamine.run.project": run.project or "",
        "ideamine.run.manifest_hash": run.manifest_hash,
    }
    _write(
        ("run", run.id),
        run.id,
        span_id_of(run.id),
        otel_context.Context(),
        f"run {run.id}",
        run.created_at,
        run.updated_at,
        attributes,
        run.error,
    )


def _phase_span(
    run_id: str, phase: str, attempt: int, status: str, start: str, end: str, error: str | None
) -> None:
    key = ("phase", run_id, phase, str(attempt))
    if key in _emitted:
        return
    _emitted.add(key)
    attributes: dict[str, str | int] = {
        "ideamine.run.id": run_id,
        "ideamine.phase": phase,
        "ideamine.phase.attempt": attempt,
        "ideamine.phase.status": status,
    }
    parent = _parent(run_id, span_id_of(run_id))
    _write(
        key,
        run_id,
        span_id_of(run_id, phase, str(attempt)),
        parent,
        f"phase {phase}",
        start,
        end,
        attributes,
        error,
    )


def _write(
    key: tuple[str, ...],
    run_id: str,
    span_id: int,
    parent: otel_context.Context,
    name: str,
    start: str,
    end: str,
    attributes: Mapping[str, str | int],
    error: str | None,
) -> None:
    if len(_emitted) > 100_000:  # a long-lived worker: forget old runs' spans
        _emitted.clear()
        _emitted.add(key)
    token = _forced.set((trace_id_of(run_id), span_id))
    try:
        span = tracer().start_span(
            name, context=parent, start_time=_ns(start), attributes=attributes
        )
    finally:
        _forced.reset(token)
    if error:
        span.set_status(Status(StatusCode.ERROR, error[:500]))
    span.end(end_time=_ns(end))


def _recording() -> bool:
    """True when spans would be exported (a real SDK provider is in use)."""
    provider = _provider[0] if _provider else trace.get_tracer_provider()
    if not _provider and not _env_read:
        tracer()
        provider = _provider[0] if _provider else trace.get_tracer_provider()
    sdk = sys.modules.get("opentelemetry.sdk.trace")  # not imported: no SDK provider exists
    return sdk is not None and isinstance(provider, sdk.TracerProvider)
