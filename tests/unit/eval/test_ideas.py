"""Reading and choosing ideas: clear errors naming the file and line; reproducible choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from ideamine.errors import UsageError
from ideamine.eval.ideas import read_ideas, select_ideas

SRDD = Path(__file__).parents[3].parent / "shared/data/srdd/srdd.csv"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ideas.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_become_ideas_with_file_safe_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'Name,Description,Category\nFarm Hub,"A market, for farmers.",Food/Drink\n'
    )
    [idea] = read_ideas(path)
    assert (idea.key, idea.name, idea.description, idea.row) == (
        "Food_Drink--Farm_Hub", "Farm Hub", "A market, for farmers.", 2,
    )  # fmt: skip


def test_a_name_repeated_in_a_category_gets_its_line_in_the_key(tmp_path: Path) -> None:
    text = "Name,Description,Category\nA,first idea,C\nA,second idea,C\nA,third idea,D\n"
    keys = [i.key for i in read_ideas(write(tmp_path, text))]
    assert keys == ["C--A", "C--A--line3", "D--A"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Title,Description\nx,y\n", "no Name, Category column"),
        ("Name,Description,Category\nA,,C\n", "line 2: Description is empty"),
        ("Name,Description,Category\nA,ab,C\n", "line 2: the description has 2 characters"),
        ("Name,Description,Category\n", "holds no ideas"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        read_ideas(write(tmp_path, text))
    assert str(tmp_path / "ideas.csv") in str(caught.value) and caught.value.hint


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read ideas"):
        read_ideas(tmp_path / "missing.csv")
    (tmp_path / "latin1.csv").write_bytes(
        "Name,Description,Category\nA,caf\xe9 app,C\n".encode("latin-1")
    )
    with pytest.raises(UsageError, match="cannot read ideas"):
        read_ideas(tmp_path / "latin1.csv")


def test_srdd_reads_whole_and_per_category_is_seeded() -> None:
    ideas = read_ideas(SRDD)
    assert len(ideas) == 1200 and len({i.key for i in ideas}) == 1200
    chosen = select_ideas(ideas, per_category=1, seed=0)
    assert len(chosen) == 40 and len({i.category for i in chosen}) == 40
    assert chosen == select_ideas(ideas, per_category=1, seed=0)
    assert chosen != select_ideas(ideas, per_category=1, seed=1)
    sample = select_ideas(ideas, sample=5, seed=3)
    assert len(sample) == 5 and sample == sorted(sample, key=lambda i: i.row)


def test_selection_flags_are_checked() -> None:
    ideas = read_ideas(SRDD)
    with pytest.raises(UsageError, match="exclude each other"):
        select_ideas(ideas, sample=2, per_category=1)
    with pytest.raises(UsageError, match="--sample must be at least 1"):
        select_ideas(ideas, sample=0)
    assert len(select_ideas(ideas, sample=5000)) == 1200
