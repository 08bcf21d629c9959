"""Colours: hex parsing, WCAG 2.x relative luminance and contrast ratio, CSS lengths."""

from __future__ import annotations

import re

__all__ = ["HEX", "contrast", "hex_colors", "parse_hex", "pixels"]

HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|rem|em)?\s*$")
ROOT_PX = 16.0


def parse_hex(value: object) -> tuple[int, int, int] | None:
    """``#1a2b3c`` or ``#abc`` as RGB, or None."""
    if not isinstance(value, str) or not HEX.fullmatch(value.strip()):
        return None
    digits = value.strip()[1:]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def hex_colors(text: str) -> list[str]:
    """Every hex colour in ``text``, lower case, in order."""
    return [match.lower() for match in HEX.findall(text)]


def contrast(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def pixels(value: object) -> float | None:
    """A CSS length (``16px``, ``1.5rem``, ``2em``, a bare number) in pixels, or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _LENGTH.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2) or "px"
    return number if unit == "px" else number * ROOT_PX


def _luminance(rgb: tuple[int, int, int]) -> float:
    channels = []
    for value in rgb:
        c = value / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
