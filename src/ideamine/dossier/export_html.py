"""HTML export: one self-contained, offline page (inline CSS and SVG, no script, no URL).

Every value from the run is escaped by Jinja2's autoescape. The only text marked safe is the
package's own stylesheet (inside ``<style>``, where HTML escaping would break it).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ideamine.dossier.charts import cost_chart, gantt_chart

__all__ = ["render_html"]


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("ideamine.dossier", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


@cache
def _css() -> Markup:
    text = (resources.files("ideamine.dossier") / "templates" / "dossier.css").read_text("utf-8")
    if "</" in text:  # never let the stylesheet close its <style> element
        raise ValueError("dossier.css must not contain '</'")
    return Markup(text)


def _list(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def render_html(document: Mapping[str, object]) -> str:
    """The dossier as an HTML page (UTF-8 text)."""
    costs = document.get("costs")
    by_phase = costs.get("by_phase") if isinstance(costs, Mapping) else None
    return (
        _environment()
        .get_template("dossier.html.j2")
        .render(
            d=document,
            css=_css(),
            gantt=gantt_chart(_list(document.get("phases"))),
            cost=cost_chart(_list(by_phase)),
        )
    )
