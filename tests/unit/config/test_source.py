"""Reading YAML with a line map: ``read_yaml`` and ``SourceFile``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from ideamine.config.source import SourceFile, read_yaml
from ideamine.errors import ConfigError, ConfigProblem

NESTED = """\
# a comment before the first key
name: demo
gate:
  pass_threshold: 0.5
  rubrics:
    grounding: 0.4
    clarity: 0.6
agents:
  - IntakeAgent
  - ConstraintsAgent
artifacts:
  - type: IdeaSpec
    required: true
  -
    type: Other
flow: {a: 1, b: [x, y]}
"""


def _read(tmp_path: Path, text: str, name: str = "file.yaml") -> SourceFile:
    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    return read_yaml(path, name)


def _read_error(tmp_path: Path, data: bytes) -> ConfigProblem:
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        read_yaml(path, "shown/bad.yaml")
    (problem,) = caught.value.problems
    return problem


# --- data and line map -------------------------------------------------------------------


def test_data_is_what_the_safe_loader_reads(tmp_path: Path) -> None:
    text = NESTED + "when: 2024-05-01\nratio: 1.5e-3\nflag: yes\nnothing:\n"
    source = _read(tmp_path, text)

    assert source.data == yaml.safe_load(text)
    assert isinstance(source.data, dict)
    assert source.data["when"] == dt.date(2024, 5, 1)
    assert source.data["nothing"] is None
    assert source.path == "file.yaml"


def test_line_map_of_nested_mappings(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    assert source.lines[()] == 2  # the document starts at its first key, after the comment
    assert source.lines[("name",)] == 2
    assert source.lines[("gate",)] == 3
    assert source.lines[("gate", "pass_threshold")] == 4
    assert source.lines[("gate", "rubrics")] == 5
    assert source.lines[("gate", "rubrics", "grounding")] == 6
    assert source.lines[("gate", "rubrics", "clarity")] == 7


def test_line_map_of_lists(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    assert source.lines[("agents",)] == 8
    assert source.lines[("agents", 0)] == 9
    assert source.lines[("agents", 1)] == 10
    assert source.lines[("artifacts",)] == 11
    assert source.lines[("artifacts", 0)] == 12
    assert source.lines[("artifacts", 0, "type")] == 12
    assert source.lines[("artifacts", 0, "required")] == 13
    assert source.lines[("artifacts", 1)] == 15  # the item's mapping starts on the next line
    assert source.lines[("artifacts", 1, "type")] == 15


def test_line_map_of_flow_collections(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    assert source.lines[("flow",)] == 16
    assert source.lines[("flow", "a")] == 16
    assert source.lines[("flow", "b", 1)] == 16


def test_a_key_whose_value_starts_on_a_later_line_maps_to_the_key(tmp_path: Path) -> None:
    source = _read(tmp_path, "prompt:\n\n  |\n  text\nother: 1\n")

    assert source.lines[("prompt",)] == 1


def test_every_location_in_the_data_has_a_line(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    def locations(value: object, loc: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
        found = [loc]
        if isinstance(value, dict):
            for key, item in value.items():
                found += locations(item, (*loc, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found += locations(item, (*loc, index))
        return found

    assert set(locations(source.data, ())) == set(source.lines)


def test_empty_file(tmp_path: Path) -> None:
    for text in ("", "# only a comment\n"):
        source = _read(tmp_path, text)

        assert source.data is None
        assert source.lines == {}
        assert source.line_of(("anything",)) == 1


def test_duplicate_keys_are_rejected_at_the_second_occurrence(tmp_path: Path) -> None:
    """Fails: ``read_yaml`` keeps the last of two equal keys and drops the first without a
    word (YAML requires keys to be unique); a pasted second ``gate:`` block silently replaces
    the first one."""
    path = tmp_path / "dup.yaml"
    path.write_text("gate:\n  pass_threshold: 0.5\nname: x\ngate:\n  pass_threshold: 0.9\n")

    with pytest.raises(ConfigError) as caught:
        read_yaml(path, "dup.yaml")

    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("dup.yaml", 4)


# --- SourceFile.line_of and problem ------------------------------------------------------


def test_line_of_an_exact_location(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    assert source.line_of(("gate", "rubrics", "clarity")) == 7
    assert source.line_of(("agents", 1)) == 10


def test_line_of_falls_back_to_the_nearest_known_prefix(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    assert source.line_of(("gate", "max_attempts")) == 3
    assert source.line_of(("gate", "rubrics", "missing")) == 5
    assert source.line_of(("gate", "rubrics", "missing", "deeper", 0)) == 5
    assert source.line_of(("agents", 7)) == 8
    assert source.line_of(("artifacts", 0, "schema")) == 12
    assert source.line_of(("loop",)) == 2  # nothing matches but the document itself
    assert source.line_of(()) == 2


def test_line_of_with_no_known_prefix_is_line_one() -> None:
    source = SourceFile(path="x.yaml", data=None, lines={})

    assert source.line_of(("a", 0, "b")) == 1
    assert source.line_of(()) == 1


def test_line_of_does_not_match_a_sibling_with_the_same_key() -> None:
    source = SourceFile(
        path="x.yaml", data=None, lines={(): 1, ("a",): 2, ("a", "x"): 3, ("b",): 4}
    )

    assert source.line_of(("b", "x")) == 4


def test_problem_is_located_and_formatted(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED, name="phases/intake.yaml")

    problem = source.problem(("artifacts", 0, "required"), "bad", "do better")

    assert problem == ConfigProblem(
        file="phases/intake.yaml",
        line=13,
        field="artifacts.0.required",
        problem="bad",
        hint="do better",
    )
    assert str(problem) == "phases/intake.yaml:13: artifacts.0.required: bad (hint: do better)"


def test_problem_about_the_whole_file(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    problem = source.problem((), "empty")

    assert str(problem) == "file.yaml:2: (file): empty"
    assert problem.hint == ""


def test_problem_at_a_missing_location_uses_the_fallback_line(tmp_path: Path) -> None:
    source = _read(tmp_path, NESTED)

    problem = source.problem(("gate", "max_attempts"), "required key is missing")

    assert (problem.line, problem.field) == (3, "gate.max_attempts")


# --- files that cannot be read -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: c: d\n", 2),
        ("a: 1\nb:\n  - x\n - y\n", 4),
        ("a: [1, 2\nb: 3\n", 2),
        ("a: 1\n\tb: 2\n", 2),
        ("a: 1\n---\nb: 2\n", 2),
        ("a: 'unterminated\nb: 2\n", 3),
    ],
)
def test_invalid_yaml_reports_the_line_of_the_error(tmp_path: Path, text: str, line: int) -> None:
    problem = _read_error(tmp_path, text.encode())

    assert (problem.file, problem.line, problem.field) == ("shown/bad.yaml", line, "(file)")
    assert problem.problem.startswith("not valid YAML: ")
    assert problem.hint


def test_non_utf8_file(tmp_path: Path) -> None:
    problem = _read_error(tmp_path, "name: café\n".encode("latin-1"))

    assert (problem.file, problem.line, problem.field) == ("shown/bad.yaml", None, "(file)")
    assert problem.problem.startswith("not UTF-8 text")
    assert problem.hint == "save the file as UTF-8"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_yaml(tmp_path / "missing.yaml", "missing.yaml")

    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("missing.yaml", None, "(file)")
    assert problem.problem.startswith("cannot read")
    assert problem.hint
