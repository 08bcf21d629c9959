"""design_consistency (aesthetic): the style guide, assets and motion use the design system.

The mean of six measured shares over DesignSystem, StyleGuide, VisualAssets and the upstream
UXFlows:

* palette: colour tokens that are valid hex colours, and StyleGuide.color_usage entries whose
  token exists in ``tokens.color`` with the same hex value;
* logo colours: hex colours in VisualAssets.logo_svg that are palette colours;
* type scale: adjacent steps of ``typography.scale`` (h1 ≥ h2 ≥ h3 ≥ body ≥ small) in order;
* spacing scale: adjacent steps of ``spacing`` (xs ≤ s ≤ m ≤ l ≤ xl) in order;
* motion: transitions whose easing is defined and whose duration is within the longest
  defined duration;
* components: ``used_in`` screen ids that exist in UXFlows.screens.

A share with nothing to check counts as 1 (nothing is inconsistent). Passes at ``min_score``
(0.85, SPEC §1); feeds rubric ``consistency``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.colors import hex_colors, parse_hex, pixels
from ideamine.knowledge.guards.reading import at, is_number, listed, pool, records
from ideamine.knowledge.guards.settings import NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, fraction, scored, shown

__all__ = ["check_design_consistency", "share"]

KEYS = {"min_score": NUMBER}
TYPE_STEPS = ("h1", "h2", "h3", "h4", "body", "small")
SPACE_STEPS = ("xxs", "xs", "s", "m", "l", "xl", "xxl")


def share(name: str, bad: Sequence[str], total: int, what: str) -> Check:
    """A check scoring the share of ``total`` items not in ``bad`` (1 when there are none)."""
    return Check(
        name=name,
        score=fraction(total - len(bad), total) if total else 1.0,
        problem=f"{len(bad)} of {total} {what}: {shown(list(bad))}" if bad else "",
        note=f"{total} {name} checked" if total else "",
    )


def check_design_consistency(given: GuardInput) -> GuardReport:
    """The design_consistency guard."""
    cfg = settings("design_consistency", given.config, KEYS)
    known = pool(given.artifacts, given.upstream)
    tokens = _mapping(at(known.get("DesignSystem"), "tokens"))
    palette = {str(k): str(v).lower() for k, v in _mapping(tokens.get("color")).items()}
    checks = [
        _palette(known.get("StyleGuide"), palette),
        _logo(known.get("VisualAssets"), palette),
        _scale("type scale", _mapping(at(tokens, "typography.scale")), TYPE_STEPS, descending=True),
        _scale("spacing", _mapping(tokens.get("spacing")), SPACE_STEPS, descending=False),
        _motion(_mapping(at(known.get("DesignSystem"), "motion"))),
        _screens(known.get("DesignSystem"), known.get("UXFlows")),
    ]
    return scored(
        "design_consistency",
        checks,
        rubrics=("consistency",),
        min_score=cfg.number("min_score", 0.85),
        severity="medium",
        kind="quality",
        also_failed=not tokens,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _palette(guide: object, palette: Mapping[str, str]) -> Check:
    uses = records(guide, "color_usage")
    bad = [
        f"{u.get('token')} {u.get('hex')}"
        for u in uses
        if palette.get(str(u.get("token"))) != str(u.get("hex", "")).lower()
    ]
    bad += [f"token {t} {v!r} is no hex colour" for t, v in palette.items() if parse_hex(v) is None]
    total = len(uses) + len(palette)
    return share("palette", bad, total, "colours are not valid design tokens")


def _logo(assets: object, palette: Mapping[str, str]) -> Check:
    svg = at(assets, "logo_svg")
    used = hex_colors(svg) if isinstance(svg, str) else []
    bad = [c for c in used if c not in palette.values()]
    return share("logo colours", bad, len(used), "logo colours are not palette tokens")


def _scale(name: str, scale: Mapping[str, Any], steps: Sequence[str], *, descending: bool) -> Check:
    sizes = [(step, pixels(scale[step])) for step in steps if step in scale]
    bad = []
    for (big, first), (small, second) in itertools.pairwise(sizes):
        if first is None or second is None:
            bad.append(f"{big}/{small} not a length")
        elif (first < second) if descending else (first > second):
            bad.append(f"{big} {scale[big]} vs {small} {scale[small]}")
    return share(name, bad, max(0, len(sizes) - 1), f"{name} steps out of order")


def _motion(motion: Mapping[str, Any]) -> Check:
    easings = set(_mapping(motion.get("easings")))
    durations = [float(v) for v in _mapping(motion.get("durations_ms")).values() if is_number(v)]
    longest = max(durations, default=None)
    bad = []
    for t in records(motion, "transitions"):
        duration = t.get("duration_ms")
        if easings and t.get("easing") not in easings:
            bad.append(f"{t.get('name')} easing {t.get('easing')!r} undefined")
        elif longest is not None and is_number(duration) and duration > longest:
            bad.append(f"{t.get('name')} {duration} ms > {longest:g} ms")
    total = len(records(motion, "transitions"))
    return share("motion", bad, total, "transitions break the motion tokens")


def _screens(system: object, flows: object) -> Check:
    screens = {str(s) for s in listed(flows, "screens[].id")}
    if not screens:
        return share("components", [], 0, "")
    used = [
        (str(c.get("name")), str(s))
        for c in records(system, "components")
        for s in c.get("used_in") or ()
    ]
    bad = sorted({f"{name} → {screen}" for name, screen in used if screen not in screens})
    return share(
        "components", bad, len(used), "component uses name screens UXFlows does not define"
    )
