"""brand_compliance (aesthetic): the brand is named, legible, voiced and applied.

The mean of six measured shares over StyleGuide, DesignSystem, VisualAssets and the upstream
IdeaSpec:

* name: StyleGuide.brand.name is the IdeaSpec's title;
* contrast: colour pairs (``contrast_pairs``, default text, primary, secondary and error each
  against background) whose WCAG contrast ratio reaches ``min_contrast`` (4.5, AA body text);
* voice: the brand states a voice, a tagline and a personality;
* audiences: the IdeaSpec's target users that ``tone_by_audience`` addresses;
* logo: VisualAssets lists a logo asset, and its SVG is labelled for assistive technology
  (``role="img"`` and ``aria-label``);
* guidance: the style guide has both dos and don'ts.

Passes at ``min_score`` (0.8, SPEC §1); feeds rubric ``branding``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ideamine.errors import UsageError
from ideamine.knowledge.guards.base import GuardInput, GuardReport
from ideamine.knowledge.guards.colors import contrast, parse_hex
from ideamine.knowledge.guards.design import share
from ideamine.knowledge.guards.reading import at, pool, records, thinness
from ideamine.knowledge.guards.settings import ANY, NUMBER, settings
from ideamine.knowledge.guards.verdict import Check, scored

__all__ = ["check_brand_compliance"]

KEYS = {"min_score": NUMBER, "min_contrast": NUMBER, "contrast_pairs": ANY}
PAIRS = (
    ("text", "background"),
    ("primary", "background"),
    ("secondary", "background"),
    ("error", "background"),
)


def check_brand_compliance(given: GuardInput) -> GuardReport:
    """The brand_compliance guard."""
    cfg = settings("brand_compliance", given.config, KEYS)
    known = pool(given.artifacts, given.upstream)
    guide = _mapping(known.get("StyleGuide"))
    spec = _mapping(known.get("IdeaSpec"))
    palette = _mapping(at(known.get("DesignSystem"), "tokens.color"))
    pairs = _pairs(cfg.raw.get("contrast_pairs", PAIRS), cfg.guard)
    checks = [
        _name(guide, spec),
        _contrast(palette, pairs, cfg.number("min_contrast", 4.5)),
        share(
            "voice",
            _unstated(_mapping(guide.get("brand")), ("voice", "tagline", "personality")),
            3,
            "brand traits unstated",
        ),
        _audiences(guide, spec),
        _logo(known.get("VisualAssets")),
        share("guidance", _unstated(guide, ("dos", "donts")), 2, "guidance lists empty"),
    ]
    return scored(
        "brand_compliance",
        checks,
        rubrics=("branding",),
        min_score=cfg.number("min_score", 0.8),
        severity="medium",
        kind="quality",
        also_failed=not guide,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pairs(value: object, guard: str) -> list[tuple[str, str]]:
    if isinstance(value, Sequence) and all(
        isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 for p in value
    ):
        return [(str(p[0]), str(p[1])) for p in value]
    raise UsageError(
        f"guard {guard}: config contrast_pairs is {value!r}, expected a list of [token, token]",
        hint="fix `contrast_pairs` in the guard's config in the phase YAML",
    )


def _name(guide: Mapping[str, Any], spec: Mapping[str, Any]) -> Check:
    name, title = at(guide, "brand.name"), spec.get("title")
    if not isinstance(name, str) or not name.strip():
        return Check(name="name", score=0.0, problem="StyleGuide.brand.name is missing")
    if isinstance(title, str) and name.strip().lower() != title.strip().lower():
        return Check(
            name="name",
            score=0.0,
            problem=f"brand name {name!r} is not the product title {title!r}",
        )
    return Check(name="name", score=1.0, note=f"brand {name!r}")


def _contrast(palette: Mapping[str, Any], pairs: list[tuple[str, str]], minimum: float) -> Check:
    bad, checked = [], 0
    for front, back in pairs:
        first, second = parse_hex(palette.get(front)), parse_hex(palette.get(back))
        if first is None or second is None:
            bad.append(f"{front}/{back} not both defined")
            checked += 1
            continue
        checked += 1
        ratio = contrast(first, second)
        if ratio < minimum:
            bad.append(f"{front} on {back} {ratio:.2f}:1 < {minimum:g}:1")
    return share("contrast", bad, checked, "colour pairs fail WCAG contrast")


def _unstated(section: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    return [k for k in keys if thinness(section.get(k), min_chars=3, min_items=1)]


def _audiences(guide: Mapping[str, Any], spec: Mapping[str, Any]) -> Check:
    users = [str(u) for u in spec.get("target_users") or ()]
    tones = {str(k).lower() for k in _mapping(guide.get("tone_by_audience"))}
    missed = [u for u in users if u.lower() not in tones]
    return share("audiences", missed, len(users), "target users without a tone of voice")


def _logo(assets: object) -> Check:
    named = any("logo" in str(a.get("name", "")).lower() for a in records(assets, "assets"))
    svg = str(at(assets, "logo_svg") or "")
    problems = [] if named else ["no logo asset"]
    problems += (
        []
        if 'role="img"' in svg and "aria-label=" in svg
        else ["logo SVG has no role=img and aria-label"]
    )
    return share("logo", problems, 2, "logo checks fail")
