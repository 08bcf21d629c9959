"""Carrying the engine's actions out: the runner, task execution, leases."""
