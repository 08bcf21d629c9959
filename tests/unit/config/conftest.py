"""Shared fixtures for the configuration tests."""

from __future__ import annotations

import pytest

from ideamine.config.loader import CONFIG_ENV


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own $IDEAMINE_CONFIG must not leak into these tests."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
