"""Every statement that inserts a task or changes a task's status or error stamps ``revision``
itself: SQLite has no trigger doing it since migration 8, and the advance step's incremental
read (``run_changes``) sees only stamped changes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ideamine

SOURCE = Path(ideamine.__file__).parent
WRITES = re.compile(r"\b(UPDATE\s+tasks\s+SET|INSERT\s+INTO\s+tasks\b)", re.IGNORECASE)
STAMPED_COLUMNS = ("status", "error")


def _sql_literals() -> list[tuple[str, str]]:
    """(file, text) of every string literal under ``src/ideamine`` that writes ``tasks``
    (adjacent literals are one constant to ``ast``; an f-string's literal parts are joined)."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(
                    part.value
                    for part in node.values
                    if isinstance(part, ast.Constant) and isinstance(part.value, str)
                )
            else:
                continue
            if WRITES.search(text):
                found.append((str(path.relative_to(SOURCE)), " ".join(text.split())))
    return found


def _written_columns(sql: str) -> set[str]:
    """The columns an ``UPDATE tasks SET … WHERE`` assigns or an ``INSERT INTO tasks (…)``
    lists."""
    update = re.search(r"UPDATE\s+tasks\s+SET\s+(.*?)(\s+WHERE\s|$)", sql, re.IGNORECASE)
    if update:
        return {m.group(1).lower() for m in re.finditer(r"(\w+)\s*=", update.group(1))}
    insert = re.search(r"INSERT\s+INTO\s+tasks\s*\(([^)]*)\)", sql, re.IGNORECASE)
    assert insert, f"cannot read the columns of {sql!r}"
    return {column.strip().lower() for column in insert.group(1).split(",")}


def test_the_scan_finds_the_task_writes_it_checks() -> None:
    """Not vacuous: inserting, leasing, finishing, reclaiming, handing back and carrying."""
    writes = [sql for _, sql in _sql_literals()]
    stamped = [sql for sql in writes if set(STAMPED_COLUMNS) & _written_columns(sql)]

    assert len(stamped) >= 6
    assert any(sql.startswith("INSERT INTO tasks") for sql in stamped)
    assert {"lease_expires_at"} == _written_columns(
        "UPDATE tasks SET lease_expires_at = ? WHERE id = ?"
    )


def test_every_write_of_a_task_status_or_error_stamps_its_revision() -> None:
    unstamped = [
        f"{where}: {sql}"
        for where, sql in _sql_literals()
        if set(STAMPED_COLUMNS) & (columns := _written_columns(sql)) and "revision" not in columns
    ]

    assert unstamped == [], "these statements must also set revision (next_task_revision)"


def test_the_check_catches_a_statement_that_does_not_stamp() -> None:
    assert "revision" not in _written_columns("UPDATE tasks SET status = ? WHERE id = ?")
    assert "revision" not in _written_columns(
        "INSERT INTO tasks (id, run_id, status) VALUES (?, ?, ?)"
    )
    assert "revision" in _written_columns(
        "UPDATE tasks SET error = ?, revision = ? WHERE id = ? AND status = ?"
    )
