"""Fixtures for the guard tests: run one guard over hand-made artifacts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ideamine.knowledge.guards import GuardInput, GuardReport, guard_for
from ideamine.knowledge.guards.base import Judge


def _check(
    type_: str,
    artifacts: Mapping[str, Any],
    *,
    upstream: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    producers: Mapping[str, tuple[str, ...]] | None = None,
    strict_evidence: bool = False,
    judge: Judge | None = None,
) -> GuardReport:
    given = GuardInput(
        phase="test",
        artifacts=artifacts,
        upstream=upstream or {},
        config=config or {},
        producers=producers or {},
        strict_evidence=strict_evidence,
        judge=judge,
    )
    report = asyncio.run(guard_for(type_).check(given))
    report.as_dict()  # every report serialises
    return report


@pytest.fixture
def guard_check() -> Callable[..., GuardReport]:
    """``guard_check(type_, artifacts, *, upstream, config, producers, strict_evidence,
    judge)``: run one guard once over hand-made artifacts and return its report."""
    return _check
