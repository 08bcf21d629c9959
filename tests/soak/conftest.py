"""The soak suite's knob and log.

``pytest tests/soak --soak-minutes N`` soaks for N minutes; without it the soak is short
enough for CI (about two minutes in all). The option is registered here, so it is known
whenever this folder is named on the command line (``pytest tests/soak …`` or a file in it);
a bare ``pytest --soak-minutes N`` that names no path does not know it.

Each soak writes progress lines while it runs (about once a minute) and a summary section at
the end of the session log, passed or failed, so a long soak's log says what happened.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

# Soaking time without --soak-minutes: with start-up, the last run and the checks, the
# default soak takes about two minutes on a loaded two-core machine.
DEFAULT_SOAK_SECONDS = 90.0
# The per-test timeout beyond the soaking time: starting the worker, finishing the run in
# flight when time is up (a run takes seconds, but minutes on a machine under heavy load),
# checking the last runs and stopping the worker.
TIMEOUT_MARGIN_SECONDS = 900.0

SOAK_LOG = pytest.StashKey[list[str]]()
HERE = Path(__file__).resolve().parent


def _minutes(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes, not {text}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-minutes",
        type=_minutes,
        default=None,
        metavar="N",
        help=f"tests/soak: soak for N minutes (default {DEFAULT_SOAK_SECONDS / 60:g})",
    )


def soak_seconds_of(config: pytest.Config) -> float:
    minutes = config.getoption("--soak-minutes", default=None)
    return DEFAULT_SOAK_SECONDS if minutes is None else float(minutes) * 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A long soak outlives the suite's 15-minute test timeout: give soak tests their own."""
    timeout = soak_seconds_of(config) + TIMEOUT_MARGIN_SECONDS
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.timeout(timeout))


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    """How long to keep submitting runs."""
    return soak_seconds_of(request.config)


class SoakLog:
    """Lines for a soak's log: ``progress`` shows a line now (even with output captured);
    ``summary`` also repeats it in the summary section at the end of the session."""

    def __init__(self, config: pytest.Config, test: str) -> None:
        self._lines = config.stash.setdefault(SOAK_LOG, [])
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capture = config.pluginmanager.get_plugin("capturemanager")
        self._test = test

    def progress(self, line: str) -> None:
        if self._reporter is None:
            return
        if self._capture is None:
            self._reporter.write_line(f"[soak] {line}")
            return
        with self._capture.global_and_fixture_disabled():  # as capsys.disabled() does
            self._reporter.write_line(f"[soak] {line}")

    def summary(self, line: str) -> None:
        self.progress(line)
        self._lines.append(f"{self._test}: {line}")


@pytest.fixture
def soak_log(request: pytest.FixtureRequest) -> SoakLog:
    return SoakLog(request.config, request.node.name)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(SOAK_LOG, [])
    if lines:
        terminalreporter.section("soak summary")
        for line in lines:
            terminalreporter.write_line(line)
