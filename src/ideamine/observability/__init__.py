"""Observability: Prometheus metrics derived from the store, and OpenTelemetry tracing."""
