"""Markdown export, readable on a code host (GitHub-flavoured tables and alerts).

Every value is escaped for Markdown: punctuation that would format, link or start HTML is
backslash- or entity-escaped and line breaks are folded, so artifact text cannot inject
markup or break a table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["escape_markdown", "render_markdown"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_STATUS = {"present": "✅ present", "gap": "⚠️ evidence gap", "missing": "❌ missing"}


def escape_markdown(value: object) -> str:
    """``value`` as inert Markdown text on one line."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _code(value: object) -> str:
    """Text for inside a code span: no backticks, one line."""
    return " ".join(str(value).split()).replace("`", "'")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ideamine.dossier", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["md"] = escape_markdown
    env.filters["code"] = _code
    env.globals["status"] = lambda status: _STATUS.get(str(status), str(status))
    return env


def render_markdown(document: Mapping[str, object]) -> str:
    """The dossier as a Markdown document."""
    return _environment().get_template("dossier.md.j2").render(d=document)
