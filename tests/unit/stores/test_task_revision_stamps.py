"""Every statement that inserts a task or changes a task's status or error stamps ``revision``
itself: SQLite has no trigger doing it since migration 8, and the advance step's incremental
read (``run_changes``) sees only stamped changes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ideamine

SOURCE = Path(ideamine.__file__).parent
_TASKS = r'(?:\w+\.)?"?tasks"?'  # tasks, "tasks", main.tasks
_UPDATE = re.compile(
    rf"\bUPDATE\s+{_TASKS}(?:\s+(?:AS\s+)?(?!SET\b)\w+)?\s+SET\s+(.*)", re.I | re.S
)
_INSERT = re.compile(rf"\b(?:INSERT(?:\s+OR\s+\w+)?|REPLACE)\s+INTO\s+{_TASKS}\s*\(([^)]*)\)", re.I)
WRITES = re.compile(
    rf"\b(?:UPDATE\s+{_TASKS}\s|(?:INSERT(?:\s+OR\s+\w+)?|REPLACE)\s+INTO\s+{_TASKS}[\s(])", re.I
)
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
    """The columns an ``UPDATE tasks [AS t] SET …`` assigns (each ``column = value`` before
    ``WHERE``/``RETURNING``; a row-value ``SET (a, b) = …`` lists them) or an ``INSERT``
    lists. A stamp counts only as ``revision = ?``, a value the statement's caller passes from
    ``next_task_revision``."""
    update = _UPDATE.search(sql)
    if update:
        assigned = re.split(r"\s(?:WHERE|RETURNING|FROM)\s", update.group(1), maxsplit=1)[0]
        columns = {m.group(1).lower() for m in re.finditer(r"(\w+)\s*=(?!=)", assigned)}
        for group in re.finditer(r"\(([\w\s,]+)\)\s*=", assigned):
            columns |= {c.strip().lower() for c in group.group(1).split(",")}
        if not re.search(r"\brevision\s*=\s*(\?|%s)", assigned, re.I):
            columns.discard("revision")
        return columns
    insert = _INSERT.search(sql)
    assert insert, f"cannot read the columns of {sql!r}"
    return {column.strip().strip('"').lower() for column in insert.group(1).split(",")}


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
    unstamped = (
        "UPDATE tasks SET status = ? WHERE id = ?",
        "UPDATE tasks AS t SET error = ? WHERE t.id = ?",
        "UPDATE tasks t SET status = ? WHERE t.id = ?",
        'UPDATE "tasks" SET status = ? WHERE id = ?',
        "UPDATE main.tasks SET (status, error) = (?, ?) WHERE id = ?",
        "UPDATE tasks SET status = ?, revision = revision WHERE id = ?",
        "UPDATE tasks SET error = ?, revision = 0 WHERE id = ?",
        "INSERT INTO tasks (id, run_id, status) VALUES (?, ?, ?)",
        "INSERT OR REPLACE INTO tasks (id, status) VALUES (?, ?)",
        "REPLACE INTO tasks (id, status) VALUES (?, ?)",
    )
    for sql in unstamped:
        assert WRITES.search(sql), sql
        columns = _written_columns(sql)
        assert {"status", "error"} & columns and "revision" not in columns, sql
    stamped = "UPDATE tasks SET error = ?, revision = ? WHERE id = ? AND status = ? RETURNING id"
    assert {"error", "revision"} <= _written_columns(stamped)
    assert _written_columns("UPDATE tasks SET checkpoint = ? WHERE status = ?") == {"checkpoint"}
