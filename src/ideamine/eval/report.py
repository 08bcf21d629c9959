"""The evaluation report as JSON, Markdown and one self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ideamine.eval.embedding import MODEL_NAME
from ideamine.eval.summary import METRICS

__all__ = ["EMBEDDING_NOTE", "render_html", "render_markdown", "write_reports"]

EMBEDDING_NOTE = (
    f"Consistency here is the cosine similarity of {MODEL_NAME} sentence embeddings (run "
    "offline); the ChatDev paper used a different embedding model, so its consistency and "
    "quality figures are not directly comparable with ours. Completeness and executability "
    "are per-software pass/fail rates in both."
)
_IDEA_HEAD = ("idea", "category", "status", "phases", *METRICS, "specificity", "valid", "s")
_HEAD = ("category", "ideas", "completed", *METRICS, "specificity", "valid", "gate pass")


def write_reports(summary: Mapping[str, Any], meta: Mapping[str, Any], out: Path) -> list[Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out``."""
    document = {"meta": dict(meta), "embedding_note": EMBEDDING_NOTE, **summary}
    files = {
        "report.json": json.dumps(document, indent=1, ensure_ascii=False) + "\n",
        "report.md": render_markdown(summary, meta),
        "report.html": render_html(summary, meta),
    }
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------- Markdown


def render_markdown(summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    overall = summary["overall"]
    lines = [
        "# IdeaMine evaluation",
        "",
        f"{summary['finished']} of {summary['ideas']} ideas finished · model "
        f"`{meta.get('model')}` · `{meta.get('command')}`",
        "",
        "## Against the published figures",
        "",
        _md_table(("system", *METRICS), _comparison(summary)),
        "",
        f"> {EMBEDDING_NOTE}",
        "",
        "## Targets",
        "",
        _md_table(
            ("target", "at least", "measured", "met"),
            [
                (t["what"], t["target"], _fmt(t["value"]), "yes" if t["met"] else "**no**")
                for t in summary["targets"]
            ],
        ),
        "",
        "## Overall",
        "",
        _md_table(("measure", "value"), [(k, _fmt(v)) for k, v in overall.items()]),
        "",
        "## By category",
        "",
        _md_table(_HEAD, _category_rows(summary)),
        "",
        "## By idea",
        "",
        _md_table(_IDEA_HEAD, _idea_rows(summary, _fmt, lambda ok: "yes" if ok else "**no**")),
    ]
    if summary["unfinished"]:
        lines += ["", "## Unfinished", ""]
        lines += [f"- `{u['key']}`: {u['problem']}" for u in summary["unfinished"]]
    return "\n".join(lines) + "\n"


def _idea_rows(
    summary: Mapping[str, Any], metric: Callable[[object], object], valid: Callable[[bool], object]
) -> list[list[object]]:
    """One row per idea; ``metric`` and ``valid`` render those cells for the format."""
    return [
        [r["name"], r["category"], r["status"], r["phases"], *(metric(r[m]) for m in METRICS),
         _fmt(r["specificity"]), valid(bool(r["valid"])), _fmt(r["wall_s"])]
        for r in summary["rows"]
    ]  # fmt: skip


def _md_table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cells(values: Sequence[object]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    return "\n".join([cells(head), cells(["---"] * len(head)), *(cells(r) for r in rows)])


def _comparison(summary: Mapping[str, Any]) -> list[list[object]]:
    overall = summary["overall"]
    ours = ["IdeaMine (this run)", *(_fmt(overall.get(m)) for m in METRICS)]
    return [ours, *([p["system"], *(_fmt(p[m]) for m in METRICS)] for p in summary["paper"])]


def _category_rows(summary: Mapping[str, Any]) -> list[list[object]]:
    return [
        [
            name,
            c["ideas"],
            _fmt(c["runs_completed_rate"]),
            *(_fmt(c[m]) for m in METRICS),
            _fmt(c["specificity"]),
            _fmt(c["validity_rate"]),
            _fmt(c["gate_pass_rate"]),
        ]
        for name, c in summary["categories"].items()
    ]


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)


# ---------------------------------------------------------------- HTML

_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px}
.meta{color:#56606b}.note{background:#fff8e1;border-left:4px solid #f2b600;padding:8px 12px}
.scroll{overflow-x:auto;background:#fff;border:1px solid #dde1e6;border-radius:6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid #eef0f2;text-align:left;white-space:nowrap}
th{background:#f0f2f5;font-weight:600}td.n{text-align:right}
tr.ours td{font-weight:600;background:#eef6ff}
.bar{display:inline-block;height:8px;background:#3a7bd5;border-radius:4px;vertical-align:middle;margin-left:6px}
.ok{color:#137333}.no{color:#b3261e;font-weight:600}
"""


def render_html(summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>IdeaMine evaluation</title><style>{_STYLE}</style></head><body><main>",
        "<h1>IdeaMine evaluation</h1>",
        f"<p class=meta>{summary['finished']} of {summary['ideas']} ideas finished · model "
        f"<code>{_e(meta.get('model'))}</code> · {_e(meta.get('finished_at'))}<br>"
        f"<code>{_e(meta.get('command'))}</code></p>",
        "<h2>Against the published figures</h2>",
        _html_table(("system", *METRICS), _comparison(summary), first_row_class="ours"),
        f"<p class=note>{_e(EMBEDDING_NOTE)}</p>",
        "<h2>Targets</h2>",
        _html_table(
            ("target", "at least", "measured", "met"),
            [
                (
                    t["what"],
                    _fmt(t["target"]),
                    _fmt(t["value"]),
                    _yes_no(bool(t["met"])),
                )
                for t in summary["targets"]
            ],
        ),
        "<h2>By category</h2>",
        _html_table(_HEAD, _category_rows(summary)),
        "<h2>By idea</h2>",
        _html_table(_IDEA_HEAD, _idea_rows(summary, _bar, _yes_no)),
    ]
    if summary["unfinished"]:
        items = "".join(
            f"<li><code>{_e(u['key'])}</code>: {_e(u['problem'])}</li>"
            for u in summary["unfinished"]
        )
        parts.append(f"<h2>Unfinished</h2><ul>{items}</ul>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


class _Raw(str):
    """Markup built here (never from data) that goes into a cell unescaped."""


def _yes_no(ok: bool) -> _Raw:
    return _Raw("<span class=ok>yes</span>" if ok else "<span class=no>no</span>")


def _bar(value: object) -> _Raw:
    width = int(max(0.0, min(1.0, float(value))) * 60) if isinstance(value, int | float) else 0
    return _Raw(f"{_e(_fmt(value))}<span class=bar style='width:{width}px'></span>")


def _html_table(
    head: Sequence[str], rows: Sequence[Sequence[object]], *, first_row_class: str = ""
) -> str:
    def cell(value: object) -> str:
        numeric = isinstance(value, int | float) or _looks_numeric(value)
        text = value if isinstance(value, _Raw) else _e(value)
        return f"<td class=n>{text}</td>" if numeric else f"<td>{text}</td>"

    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        f"<tr{f' class={first_row_class}' if i == 0 and first_row_class else ''}>"
        + "".join(cell(v) for v in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    table = f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class=scroll>{table}</div>"


def _looks_numeric(value: object) -> bool:
    return (
        isinstance(value, str)
        and not isinstance(value, _Raw)
        and value.replace(".", "", 1).isdigit()
    )


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))
