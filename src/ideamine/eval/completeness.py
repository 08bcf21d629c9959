"""Completeness: the generated workspace holds no placeholder code.

A placeholder is a ``TODO``/``FIXME`` marker in any text file, a function whose body (after
its docstring) is only ``pass`` or ``...``, or a ``raise NotImplementedError``. A workspace
with none scores 1, any other 0 (the ChatDev paper's per-software definition); the findings
say where.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Placeholder", "completeness", "find_placeholders"]

_MARKER = re.compile(r"\b(TODO|FIXME)\b")
_SKIPPED_DIRS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules", ".venv"}
_TEXT_SUFFIXES = {
    ".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".html", ".css",
    ".js", ".ts", ".tsx", ".jsx", ".sh", ".sql", ".dockerfile", "",
}  # fmt: skip
_MAX_BYTES = 2_000_000  # a generated text file beyond this is not read (reported as such)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placeholder:
    """One placeholder: workspace-relative file, 1-based line, kind and the line's text."""

    file: str
    line: int
    kind: str
    text: str

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "text": self.text}


def completeness(workspace: Path) -> dict[str, object]:
    """``{"score": 1.0 or 0.0, "files": N, "placeholders": [...]}`` for ``workspace``."""
    files = list(_text_files(workspace))
    found = [p for path in files for p in find_placeholders(workspace, path)]
    return {
        "score": 0.0 if found or not files else 1.0,
        "files": len(files),
        "placeholders": [p.to_json() for p in found],
    }


def find_placeholders(root: Path, path: Path) -> list[Placeholder]:
    """The placeholders of one file (``root`` makes the reported path relative)."""
    name = path.relative_to(root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []  # binary content: no code to complete
    found = [
        Placeholder(file=name, line=number, kind=match.group(1), text=line.strip()[:200])
        for number, line in enumerate(text.splitlines(), start=1)
        if (match := _MARKER.search(line))
    ]
    if path.suffix == ".py":
        found += _python_placeholders(name, text)
    return sorted(found, key=lambda p: (p.line, p.kind))


def _python_placeholders(name: str, text: str) -> list[Placeholder]:
    try:
        tree = ast.parse(text, filename=name)
    except SyntaxError as exc:
        # Not a placeholder, but not complete code either: executability reports it too.
        return [Placeholder(file=name, line=exc.lineno or 1, kind="syntax error", text=str(exc))]
    lines = text.splitlines()
    found = []
    for node in ast.walk(tree):
        kind = _placeholder_kind(node)
        if kind is not None:
            line = getattr(node, "lineno", 1)
            found.append(Placeholder(file=name, line=line, kind=kind, text=lines[line - 1].strip()))
    return found


def _placeholder_kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        body = node.body
        if body and _is_docstring(body[0]):
            body = body[1:]
        if all(_is_empty_statement(s) for s in body):  # only a docstring counts, too
            return "empty body"
    if isinstance(node, ast.Raise) and node.exc is not None:
        raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
            return "NotImplementedError"
    return None


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _is_empty_statement(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and statement.value.value is Ellipsis
    )


def _text_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if any(part in _SKIPPED_DIRS for part in relative) or not path.is_file():
            continue
        if path.suffix.lower() in _TEXT_SUFFIXES and path.stat().st_size <= _MAX_BYTES:
            yield path
