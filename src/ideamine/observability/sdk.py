"""The OpenTelemetry SDK side of tracing, imported only once tracing is configured (the SDK
takes ~25 ms to import, which every command would otherwise pay with tracing off)."""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from ideamine.observability.tracing import forced_ids

__all__ = ["RunIds", "provider_for"]


class RunIds(IdGenerator):
    """Random ids, except while a run or phase span is being written with derived ones."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        forced = forced_ids()
        return forced[1] if forced else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = forced_ids()
        return forced[0] if forced else self._random.generate_trace_id()


def provider_for(exporter: SpanExporter, *, batch: bool) -> TracerProvider:
    """A tracer provider sending IdeaMine's spans to ``exporter``."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ideamine")})
    provider = TracerProvider(resource=resource, id_generator=RunIds())
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider
