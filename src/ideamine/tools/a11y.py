"""Static accessibility checks of every HTML page a running service serves → A11yAudit.

This is a *static subset* of WCAG 2.1 AA, not a full audit: it reads the served HTML (no
rendering, no computed styles, no script, no keyboard or screen-reader walk-through) and checks
what markup alone decides: the page language (3.1.1), a title (2.4.2), text alternatives of
images (1.1.1), labels of form controls (1.3.1, 4.1.2), names of links and buttons (2.4.4,
4.1.2), heading levels that do not skip (1.3.1) and the contrast of colours set inline in a
``style`` attribute (1.4.3, 4.5:1). Pages are found from ``/`` by following same-origin links.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from ideamine.tools.service import Service, http_client, timed_check

__all__ = ["RULES", "STANDARD", "a11y_audit", "audit_page", "checks_made", "contrast_ratio"]

STANDARD = "WCAG 2.1 AA (static subset)"
SCOPE = (
    "Static checks of the served HTML only (language, title, text alternatives, form labels, "
    "link and button names, heading order, contrast of inline colours). Not a full WCAG 2.1 AA "
    "audit: nothing is rendered, computed CSS, keyboard use and screen readers are not tested."
)
RULES = {
    "html-lang": ("3.1.1", "serious"),
    "document-title": ("2.4.2", "serious"),
    "image-alt": ("1.1.1", "critical"),
    "form-label": ("1.3.1, 4.1.2", "critical"),
    "link-name": ("2.4.4", "serious"),
    "button-name": ("4.1.2", "critical"),
    "heading-order": ("1.3.1", "moderate"),
    "color-contrast": ("1.4.3", "serious"),
}
_HOW = {
    "html-lang": "<html> has a non-empty lang attribute",
    "document-title": "the page has a non-empty <title>",
    "image-alt": "every <img> and image input has an alt attribute",
    "form-label": "every input, select and textarea has a label (wrapping, for=, aria-label)",
    "link-name": "every link has text or an aria-label",
    "button-name": "every button has text or an aria-label",
    "heading-order": "no heading is more than one level deeper than the one before it",
    "color-contrast": "inline style colours reach 4.5:1 against their inline background",
}
_UNLABELLED_INPUTS = {"hidden", "submit", "button", "reset", "image"}
_HEX = re.compile(r"^#([0-9a-f]{3}|[0-9a-f]{6})$")
_RGB = re.compile(r"^rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)")
_NAMED = {"black": (0, 0, 0), "white": (255, 255, 255)}


class _Page(HTMLParser):
    """Collects what the rules need in one pass over the markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.title = ""
        self.images: list[dict[str, str | None]] = []
        self.controls: list[tuple[dict[str, str | None], bool]] = []  # (attributes, in a label)
        self.label_for: set[str] = set()
        self.headings: list[int] = []
        self.named: list[tuple[str, str, str]] = []  # (tag, accessible name, href)
        self.styles: list[str] = []
        self.links: list[str] = []
        self._in_title = False
        self._labels = 0
        self._open: list[list[str]] = []  # [tag, text, aria-label, href] of open a/button

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("style"):
            self.styles.append(str(a["style"]))
        if tag == "html":
            self.lang = (a.get("lang") or "").strip()
        elif tag == "title":
            self._in_title = True
        elif tag == "img" or (tag == "input" and a.get("type") == "image"):
            self.images.append(a)
            for opened in self._open:
                opened[1] += a.get("alt") or ""
        elif tag == "label":
            self._labels += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        elif tag in ("input", "select", "textarea"):
            if tag != "input" or (a.get("type") or "text") not in _UNLABELLED_INPUTS:
                self.controls.append((a, self._labels > 0))
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.headings.append(int(tag[1]))
        if tag in ("a", "button"):
            label = a.get("aria-label") or a.get("aria-labelledby") or a.get("title") or ""
            self._open.append([tag, "", label, a.get("href") or ""])
            if tag == "a" and a.get("href"):
                self.links.append(str(a["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "label":
            self._labels = max(self._labels - 1, 0)
        elif tag in ("a", "button") and self._open and self._open[-1][0] == tag:
            opened, text, label, href = self._open.pop()
            self.named.append((opened, (label or text).strip(), href))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        for opened in self._open:
            opened[1] += data


def audit_page(url: str, html: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The checks of one page (``rule``, ``criterion``, ``passed``, ``checked``) and its
    violations (``rule``, ``page``, ``detail``, ``impact``)."""
    page = _Page()
    page.feed(html)
    page.close()
    problems: dict[str, list[str]] = {rule: [] for rule in RULES}
    checked = {rule: 1 for rule in RULES}
    if not page.lang:
        problems["html-lang"].append("<html> has no lang attribute")
    if not page.title.strip():
        problems["document-title"].append("the page has no <title> text")
    checked["image-alt"] = len(page.images)
    problems["image-alt"] += [f"<img src={i.get('src')!r}> has no alt" for i in page.images
                              if i.get("alt") is None]  # fmt: skip
    checked["form-label"] = len(page.controls)
    problems["form-label"] += [_unlabelled(a) for a, wrapped in page.controls
                               if not wrapped and not _labelled(a, page.label_for)]  # fmt: skip
    checked["link-name"] = sum(1 for tag, _, _ in page.named if tag == "a")
    checked["button-name"] = len(page.named) - checked["link-name"]
    for tag, name, href in page.named:
        if not name:
            rule = "link-name" if tag == "a" else "button-name"
            problems[rule].append(f"<{tag}{f' href={href!r}' if href else ''}> has no text")
    checked["heading-order"] = len(page.headings)
    problems["heading-order"] += _skipped_levels(page.headings)
    checked["color-contrast"] = len(page.styles)
    problems["color-contrast"] += [p for style in page.styles if (p := _contrast_problem(style))]
    return _report(url, problems, checked)


def _report(
    url: str, problems: dict[str, list[str]], checked: dict[str, int]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    checks: list[dict[str, object]] = [
        {"rule": rule, "criterion": RULES[rule][0], "passed": not problems[rule],
         "checked": checked[rule]}
        for rule in RULES
    ]  # fmt: skip
    violations: list[dict[str, object]] = [
        {"rule": rule, "page": url, "detail": detail, "impact": RULES[rule][1]}
        for rule in RULES
        for detail in problems[rule]
    ]
    return checks, violations


def checks_made() -> list[dict[str, str]]:
    """The rules every page is checked against: ``rule``, WCAG ``criterion``, ``how``."""
    return [{"rule": rule, "criterion": RULES[rule][0], "how": _HOW[rule]} for rule in RULES]


def _labelled(attrs: dict[str, str | None], label_for: set[str]) -> bool:
    if attrs.get("aria-label") or attrs.get("aria-labelledby") or attrs.get("title"):
        return True
    return bool(attrs.get("id")) and attrs.get("id") in label_for


def _unlabelled(attrs: dict[str, str | None]) -> str:
    return f"form control name={attrs.get('name')!r} has no label"


def _skipped_levels(levels: Sequence[int]) -> list[str]:
    """One problem per heading that goes more than one level deeper than the one before."""
    problems = []
    previous = 0
    for level in levels:
        if level > previous + 1:
            problems.append(f"<h{level}> follows {f'<h{previous}>' if previous else 'no heading'}")
        previous = level
    return problems


def _contrast_problem(style: str) -> str:
    """A problem when an inline style sets text and background colours below 4.5:1."""
    declared = dict(
        (name.strip().lower(), value.strip().lower())
        for name, _, value in (part.partition(":") for part in style.split(";"))
        if value
    )
    text = _colour(declared.get("color", ""))
    back = _colour(declared.get("background-color", declared.get("background", "")))
    if text is None or back is None:
        return ""
    ratio = contrast_ratio(text, back)
    return f"inline style {style!r} has contrast {ratio:.2f}:1 < 4.5:1" if ratio < 4.5 else ""


def _colour(value: str) -> tuple[int, int, int] | None:
    """An sRGB triple from ``#rgb``, ``#rrggbb``, ``rgb(…)`` or black/white; else None."""
    if value in _NAMED:
        return _NAMED[value]
    if _HEX.match(value):
        digits = value[1:] if len(value) == 7 else "".join(c * 2 for c in value[1:])
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    found = _RGB.match(value)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def contrast_ratio(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    """WCAG 2.1's contrast ratio of two sRGB colours (1 to 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(v) for v in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


async def a11y_audit(
    service: Service, *, start: Sequence[str] = ("/",), max_pages: int = 20, limit_s: float = 60
) -> dict[str, object]:
    """Audit every HTML page reachable from ``start`` by same-origin links (at most
    ``max_pages``).

    Returns:
        The A11yAudit ``{"standard", "scope", "pages": [{"url", "checks"}], "violations",
        "evidence"}``; no page at all is reported as a violation of its own (nothing served).
    """

    async def run() -> dict[str, Any]:
        pages: list[dict[str, object]] = []
        violations: list[dict[str, object]] = []
        async with http_client(service.base_url) as client:
            for url, html in await _crawl(client, service.base_url, start, max_pages):
                checks, found = audit_page(url, html)
                pages.append({"url": url, "checks": checks})
                violations += found
        if not pages:
            detail = "the service serves no HTML page"
            violations.append({"rule": "page", "page": "/", "detail": detail, "impact": "critical"})
        return {"pages": pages, "violations": violations, "_failed": bool(violations)}

    result, envelope = await timed_check(run, service, tool="a11y-static", limit=limit_s)
    found = result or {"pages": [], "violations": []}
    return {"standard": STANDARD, "scope": SCOPE, **found, "evidence": envelope}


async def _crawl(
    client: httpx.AsyncClient, base: str, start: Sequence[str], limit: int
) -> list[tuple[str, str]]:
    """(path, html) of every HTML page reachable from ``start`` on the same origin."""
    queue, seen = list(start), set(start)
    pages: list[tuple[str, str]] = []
    while queue and len(pages) < limit:
        path = queue.pop(0)
        try:
            response = await client.get(path)
        except httpx.HTTPError:
            continue
        if response.status_code != 200 or "html" not in response.headers.get("content-type", ""):
            continue
        pages.append((path, response.text))
        parser = _Page()
        parser.feed(response.text)
        for href in parser.links:
            target = urlsplit(urljoin(base + path, href))
            if f"{target.scheme}://{target.netloc}" == base and target.path not in seen:
                seen.add(target.path)
                queue.append(target.path)
    return pages
