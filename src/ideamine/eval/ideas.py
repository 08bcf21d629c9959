"""The ideas an evaluation runs on: read from a CSV file and chosen reproducibly."""

from __future__ import annotations

import csv
import dataclasses
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ideamine.errors import UsageError
from ideamine.service import MAX_IDEA_CHARS, MIN_IDEA_CHARS

__all__ = ["COLUMNS", "Idea", "read_ideas", "select_ideas"]

COLUMNS = ("Name", "Description", "Category")
"""The columns an ideas file must have (SRDD's header)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Idea:
    """One row of the ideas file. ``key`` names the idea's folder and result file."""

    key: str
    name: str
    description: str
    category: str
    row: int


def read_ideas(path: Path) -> list[Idea]:
    """Every idea in ``path``, a UTF-8 CSV with a ``Name,Description,Category`` header.

    Raises:
        UsageError: the file cannot be read, lacks a column, has an unusable row, or holds
            no ideas; the message names the file and the row.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(
                    f"{path}: no {', '.join(missing)} column",
                    hint=f"the first line must name the columns {','.join(COLUMNS)}",
                )
            ideas = [_idea(path, number, row) for number, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(
            f"cannot read ideas from {path}: {exc}", hint="pass a UTF-8 CSV file"
        ) from exc
    if not ideas:
        raise UsageError(f"{path} holds no ideas", hint="add rows below the header")
    return _unique(ideas)


def _idea(path: Path, number: int, row: dict[str, str | None]) -> Idea:
    values = {c: (row.get(c) or "").strip() for c in COLUMNS}
    for column, value in values.items():
        if not value:
            raise UsageError(f"{path}, line {number}: {column} is empty", hint="fill it in")
    description = values["Description"]
    if not MIN_IDEA_CHARS <= len(description) <= MAX_IDEA_CHARS:
        raise UsageError(
            f"{path}, line {number}: the description has {len(description):,} characters",
            hint=f"an idea has {MIN_IDEA_CHARS}–{MAX_IDEA_CHARS:,} characters",
        )
    return Idea(
        key=_key(values["Category"], values["Name"]),
        name=values["Name"],
        description=description,
        category=values["Category"],
        row=number,
    )


def _key(category: str, name: str) -> str:
    """A file-name-safe key, ``<category>--<name>``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{category}--{name}")[:120]


def _unique(ideas: Sequence[Idea]) -> list[Idea]:
    """The ideas with distinct keys: a name repeated within its category (SRDD has a few,
    with different descriptions) gets its line number added to the key."""
    seen: set[str] = set()
    found = []
    for idea in ideas:
        unique = idea
        if idea.key in seen:
            unique = dataclasses.replace(idea, key=f"{idea.key}--line{idea.row}")
        seen.add(unique.key)
        found.append(unique)
    return found


def select_ideas(
    ideas: Sequence[Idea],
    *,
    sample: int | None = None,
    per_category: int | None = None,
    seed: int = 0,
) -> list[Idea]:
    """The ideas to evaluate, in file order: all of them, a seeded random ``sample``, or a
    seeded ``per_category`` from each category. The same seed always picks the same ideas.

    Raises:
        UsageError: both ``sample`` and ``per_category`` are given, or one is below 1.
    """
    if sample is not None and per_category is not None:
        raise UsageError(
            "--sample and --per-category exclude each other", hint="choose one of them"
        )
    for flag, value in (("--sample", sample), ("--per-category", per_category)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1", hint=f"e.g. {flag} 1")
    rng = random.Random(seed)
    if sample is not None:
        chosen = rng.sample(list(ideas), min(sample, len(ideas)))
    elif per_category is not None:
        chosen = []
        for category in sorted({i.category for i in ideas}):
            members = [i for i in ideas if i.category == category]
            chosen += rng.sample(members, min(per_category, len(members)))
    else:
        chosen = list(ideas)
    return sorted(chosen, key=lambda i: i.row)
