"""Completeness on hand-made workspaces: each kind of placeholder is caught, by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ideamine.eval.completeness import completeness


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SOUND = {
    "backend/app/main.py": 'def add(a: int, b: int) -> int:\n    """Sum."""\n    return a + b\n',
    "backend/tests/test_main.py": "def test_add():\n    assert 1 + 1 == 2\n",
    "README.md": "# A sound app\n",
}


def test_a_workspace_without_placeholders_is_complete(tmp_path: Path) -> None:
    report = completeness(write(tmp_path, SOUND))
    assert report == {"score": 1.0, "files": 3, "placeholders": []}


@pytest.mark.parametrize(
    ("text", "kind", "line"),
    [
        ("x = 1\n# TODO: handle refunds\n", "TODO", 2),
        ("def f():\n    return 1  # FIXME later\n", "FIXME", 2),
        ("def f():\n    pass\n", "empty body", 1),
        ("async def f():\n    ...\n", "empty body", 1),
        ('def f():\n    """Does things."""\n', "empty body", 1),
        ('class A:\n    def f(self):\n        """Doc."""\n        pass\n', "empty body", 2),
        ("def f():\n    raise NotImplementedError\n", "NotImplementedError", 2),
        ("def f():\n    x = 1\n    raise NotImplementedError('soon')\n", "NotImplementedError", 3),
    ],
)
def test_each_placeholder_is_caught(tmp_path: Path, text: str, kind: str, line: int) -> None:
    write(tmp_path, {**SOUND, "backend/app/orders.py": text})
    report = completeness(tmp_path)
    assert report["score"] == 0.0
    assert [(p["file"], p["line"], p["kind"]) for p in report["placeholders"]] == [
        ("backend/app/orders.py", line, kind)
    ]


def test_markers_count_in_any_text_file_and_git_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, {**SOUND, "frontend/app.js": "// TODO wire the form\n"})
    write(tmp_path, {".git/COMMIT_EDITMSG": "TODO in git's own files does not count\n"})
    found = completeness(tmp_path)["placeholders"]
    assert [(p["file"], p["kind"]) for p in found] == [("frontend/app.js", "TODO")]


def test_words_that_merely_contain_a_marker_and_real_bodies_pass(tmp_path: Path) -> None:
    text = (
        "TODOS = ['not a marker']\n"
        "def f(x):\n    if x:\n        pass\n    return x\n"
        "class Empty(Exception):\n    pass\n"
    )
    assert completeness(write(tmp_path, {**SOUND, "backend/app/a.py": text}))["score"] == 1.0


def test_code_that_does_not_parse_is_not_complete(tmp_path: Path) -> None:
    report = completeness(write(tmp_path, {**SOUND, "backend/app/bad.py": "def f(:\n"}))
    assert report["score"] == 0.0
    assert report["placeholders"][0]["kind"] == "syntax error"


def test_an_empty_workspace_is_not_complete(tmp_path: Path) -> None:
    assert completeness(tmp_path) == {"score": 0.0, "files": 0, "placeholders": []}
