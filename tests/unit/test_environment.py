"""The IDEAMINE_* variables IdeaMine reads, and the near misses it warns about."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ideamine.cli.environment import VARIABLES, misspelt

SRC = Path(__file__).resolve().parents[2] / "src" / "ideamine"


def test_the_list_names_every_variable_the_source_reads() -> None:
    named = {
        name
        for path in SRC.rglob("*.py")
        if path.name != "environment.py"  # the list itself, and examples of near misses
        for name in re.findall(r"IDEAMINE_[A-Z_]+", path.read_text(encoding="utf-8"))
    }

    assert named - {"IDEAMINE_"} == set(VARIABLES)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("IDEAMINE_STOR", "IDEAMINE_STORE"),
        ("IDEAMINE_CONFG", "IDEAMINE_CONFIG"),
        ("IDEAMINE_MODELS", "IDEAMINE_MODEL"),
        ("IDEAMINE_DATADIR", "IDEAMINE_DATA_DIR"),
        ("IDEAMINE_LOGS", "IDEAMINE_LOG"),
    ],
)
def test_a_near_miss_is_named_with_the_variable_it_nearly_spells(name: str, meant: str) -> None:
    assert list(misspelt({name: "x", "IDEAMINE_STORE": "y", "PATH": "/bin"})) == [(name, meant)]


def test_read_variables_and_names_near_none_are_left_alone() -> None:
    """The shared prefix does not count: IDEAMINE_STATE is another name, not IDEAMINE_STORE."""
    environ = {name: "x" for name in VARIABLES}
    others = ("STATE", "STAGE", "CORE", "TEST_STORE", "TEST_SLEEP", "TEST_HOLD", "CI_CACHE")
    environ |= {f"IDEAMINE_{other}": "1" for other in others} | {"STORE": "x"}

    assert list(misspelt(environ)) == []
