"""responsive_design (aesthetic): every screen has a layout at every breakpoint.

Four measured shares over VisualAssets and the upstream UXFlows:

* breakpoints: the configured ``breakpoints`` (mobile, tablet, desktop) defined by name;
* ranges: adjacent breakpoints (by ``min_width_px``) that neither overlap nor leave a gap;
* layouts: (screen, breakpoint) cells with a substantive layout, over the UXFlows screens (or
  the screens the layouts list);
* columns: cells whose layout text states the breakpoint's ``columns`` (``single column`` for
  1, ``two columns`` for 2…), over the cells that state a column count.

Passes when the mean reaches ``min_score`` (1: everything holds); feeds rubric
``responsiveness``; a short layout is an issue of kind ``coverage`` for the producers of
VisualAssets.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.design import share
from ideamine.knowledge.guards.reading import is_number, listed, pool, records, thinness
from ideamine.knowledge.guards.settings import NAMES, NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, scored

__all__ = ["check_responsive_design"]

KEYS = {"breakpoints": NAMES, "min_score": NUMBER}
BREAKPOINTS = ("mobile", "tablet", "desktop")
_COUNTS = {"single": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_COLUMNS = re.compile(r"\b(single|one|two|three|four|five|six|\d+)[ -]columns?\b", re.IGNORECASE)


def check_responsive_design(given: GuardInput) -> GuardReport:
    """The responsive_design guard."""
    cfg = settings("responsive_design", given.config, KEYS)
    wanted = cfg.names("breakpoints", BREAKPOINTS)
    known = pool(given.artifacts, given.upstream)
    assets = known.get("VisualAssets")
    defined = {str(b.get("name")): b for b in records(assets, "breakpoints")}
    layouts = {str(x.get("screen_id")): x for x in records(assets, "layouts")}
    screens = [str(s) for s in listed(known.get("UXFlows"), "screens[].id")] or sorted(layouts)
    checks = [
        share(
            "breakpoints",
            [n for n in wanted if n not in defined],
            len(wanted),
            "breakpoints undefined",
        ),
        _ranges(list(defined.values())),
        _layouts(screens, layouts, wanted),
        _columns(screens, layouts, defined, wanted),
    ]
    return scored(
        "responsive_design",
        checks,
        rubrics=("responsiveness",),
        min_score=cfg.number("min_score", 1.0),
        severity="medium",
        kind="coverage",
        missing_agents=given.producers.get("VisualAssets", ()),
        also_failed=not screens,
    )


def _ranges(breakpoints: list[Mapping[str, Any]]) -> Check:
    ordered = sorted(
        (b for b in breakpoints if is_number(b.get("min_width_px"))),
        key=lambda b: b["min_width_px"],
    )
    bad = [f"{b.get('name')} has no min_width_px" for b in breakpoints if b not in ordered]
    for low, high in itertools.pairwise(ordered):
        top = low.get("max_width_px")
        if not is_number(top) or top + 1 != high["min_width_px"]:
            bad.append(
                f"{low.get('name')} ends at {top} but {high.get('name')} starts at "
                f"{high['min_width_px']}"
            )
    return share(
        "ranges", bad, max(1, len(breakpoints) - 1), "breakpoint ranges overlap or leave gaps"
    )


def _layouts(
    screens: list[str], layouts: Mapping[str, Mapping[str, Any]], wanted: tuple[str, ...]
) -> Check:
    bad = [
        f"{screen} at {name}"
        for screen in screens
        for name in wanted
        if thinness(layouts.get(screen, {}).get(name), min_chars=10, min_items=1)
    ]
    return share("layouts", bad, len(screens) * len(wanted), "screen layouts are missing")


def _columns(
    screens: list[str],
    layouts: Mapping[str, Mapping[str, Any]],
    defined: Mapping[str, Mapping[str, Any]],
    wanted: tuple[str, ...],
) -> Check:
    bad, stated = [], 0
    for screen in screens:
        for name in wanted:
            text = str(layouts.get(screen, {}).get(name, ""))
            columns = defined.get(name, {}).get("columns")
            said = _stated_columns(text)
            if said is None or not is_number(columns):
                continue
            stated += 1
            if said != columns:
                bad.append(
                    f"{screen} at {name} says {said} column(s), the breakpoint has {columns}"
                )
    return share("columns", bad, stated, "layouts disagree with their breakpoint's columns")


def _stated_columns(text: str) -> int | None:
    match = _COLUMNS.search(text)
    if match is None:
        return None
    word = match.group(1).lower()
    return int(word) if word.isdigit() else _COUNTS[word]
