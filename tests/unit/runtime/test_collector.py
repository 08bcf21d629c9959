"""The collector's pace: raised for processes that run pipelines, others' settings kept."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ideamine.runtime.collector import YOUNGEST, pace_collector


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Restore this process's thresholds after the test."""
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_the_default_pace_is_raised_keeping_the_older_generations_ratios() -> None:
    gc.set_threshold(700, 10, 10)

    pace_collector()

    assert gc.get_threshold() == (YOUNGEST, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_a_pace_someone_else_chose_is_kept() -> None:
    gc.set_threshold(2_500, 5, 20)

    pace_collector()

    assert gc.get_threshold() == (2_500, 5, 20)


PROBE = """
import gc, sys
from ideamine.cli import main
sys.argv = ["ideamine", "--version"]
try:
    main.main()
except SystemExit:
    pass
print(gc.get_threshold()[0])
"""


def test_the_console_entry_point_paces_the_collector() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(YOUNGEST)


FROZEN_AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0))  # runs after main's
from ideamine.cli import main
sys.argv = ["ideamine", "--version"]
try:
    main.main()
except SystemExit:
    pass
print("frozen", gc.get_freeze_count() > 0)
"""


def test_the_console_entry_point_skips_the_collection_at_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FROZEN_AT_EXIT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-2:] == ["frozen False", "frozen True"]
