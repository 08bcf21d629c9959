"""Carrying the engine's actions out: the runner, task execution, leases."""

DEFAULT_CONCURRENCY = 16  # tasks one process runs at once (CLI flags show it without the runtime)
