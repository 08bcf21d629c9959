"""The schema's numbered migrations (``migrations/<dialect>/NNNN_name.sql``): which ship,
how each dialect's file splits into statements, and bringing a SQLite file up to date
(PostgreSQL applies its own under an advisory lock, ``stores.postgres``)."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from ideamine.errors import SchemaTooNewError, StoreCorruptError

__all__ = [
    "apply_sqlite_migrations",
    "check_identity",
    "migrations",
    "split_statements",
    "sqlite_statements",
]


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered migrations shipped for ``dialect``, in order: (version, SQL)."""
    folder = resources.files("ideamine.stores") / "migrations" / dialect
    return sorted(
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )


def check_identity(connection: sqlite3.Connection) -> None:
    """Refuse a database that holds tables but no IdeaMine ``schema_version``."""
    tables = _tables(connection)
    if tables and "schema_version" not in tables:
        raise _not_ours(tables)


def _tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in rows}


def _not_ours(tables: set[str]) -> StoreCorruptError:
    return StoreCorruptError(
        f"the database has tables but no IdeaMine schema_version ({', '.join(sorted(tables)[:5])})",
        hint="point --store at a new file; this one was left untouched",
    )


def apply_sqlite_migrations(connection: sqlite3.Connection) -> int:
    """Bring the SQLite file on ``connection`` to the latest shipped migration in one
    ``BEGIN IMMEDIATE`` transaction; the version reached.

    Raises:
        SchemaTooNewError: the file was written by a newer IdeaMine.
        StoreCorruptError: the file holds tables but no IdeaMine ``schema_version``.
    """
    known = migrations("sqlite")
    latest = known[-1][0] if known else 0
    if _version(connection) == latest:
        return latest  # nothing to write (also lets a read-only store open)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
        " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    tables = _tables(connection)
    current = _version(connection)
    if current > latest:
        connection.execute("ROLLBACK")
        raise SchemaTooNewError(found=current, known=latest)
    if current == 0 and tables - {"schema_version"}:
        connection.execute("ROLLBACK")
        raise _not_ours(tables)
    for version, sql in known:
        if version > current:
            for statement in sqlite_statements(sql):
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    connection.execute("COMMIT")
    return max(current, latest)


def _version(connection: sqlite3.Connection) -> int:
    has_table = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has_table:
        return 0
    row = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def sqlite_statements(sql: str) -> list[str]:
    """Split a SQLite migration into statements, as SQLite itself reads them (a trigger's
    ``BEGIN … END`` body keeps its semicolons)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    statements: list[str] = []
    current = ""
    for line in lines:
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())  # an unterminated last statement fails loudly
    return statements


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements at semicolons outside ``$fn$``-quoted bodies
    (migrations hold no semicolons inside string literals)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    statements: list[str] = []
    current: list[str] = []
    quoted = False
    for part in re.split(r"(;|\$fn\$)", "\n".join(lines)):
        if part == "$fn$":
            quoted = not quoted
        if part == ";" and not quoted:
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(part)
    statements.append("".join(current).strip())
    return [statement for statement in statements if statement]
