"""Reading artifact content: paths, lists of records, strings with their locations, thinness.

Artifacts are JSON values (mappings, lists, strings, numbers). A *path* is dotted
(``scalability.targets.p95_latency_ms``); a segment ending in ``[]`` walks every element of a
list (``stories[].persona_id``, ``requirements[].story_ids[]``). Locations in reasons are
written the same way with indexes: ``UserStories.stories[3].persona_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeGuard

__all__ = [
    "PLACEHOLDERS",
    "at",
    "entries",
    "is_number",
    "listed",
    "pool",
    "records",
    "snake",
    "strings",
    "thinness",
    "walk",
    "word_count",
]

# Text that fills a field without saying anything.
PLACEHOLDERS = frozenset(
    {"tbd", "todo", "tba", "n/a", "na", "none", "null", "unknown", "-", "...", "?", "xxx"}
)
_WORD = re.compile(r"[\w$%€£'’-]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def pool(artifacts: Mapping[str, Any], upstream: Mapping[str, Any]) -> dict[str, Any]:
    """Every artifact a guard may read by type; this attempt's win over earlier phases'."""
    return {**upstream, **artifacts}


def snake(type_name: str) -> str:
    """``UserStories`` → ``user_stories``, ``OpenAPI`` → ``open_api``."""
    return _CAMEL.sub("_", type_name).lower()


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def word_count(text: str) -> int:
    """Words in ``text`` (numbers and symbols such as ``$5,000`` count as words)."""
    return len(_WORD.findall(text))


def at(value: object, path: str) -> Any:
    """The value at dotted ``path`` inside ``value`` (digits index lists), or None."""
    current: Any = value
    for part in path.split(".") if path else ():
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif _is_list(current) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def walk(value: object, path: str, where: str) -> Iterator[tuple[str, Any]]:
    """``(location, value)`` for every value at ``path`` (``[]`` walks lists) under ``value``.

    ``where`` is the location of ``value`` itself (usually its artifact type).
    """
    if not path:
        yield where, value
        return
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    key = head[:-2] if many else head
    inner, here = value, where
    if key:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return
        inner, here = value[key], f"{where}.{key}"
    if not many:
        yield from walk(inner, rest, here)
    elif _is_list(inner):
        for index, element in enumerate(inner):
            yield from walk(element, rest, f"{here}[{index}]")


def listed(value: object, path: str) -> list[Any]:
    """The values at ``path`` (see :func:`walk`), without their locations."""
    return [found for _, found in walk(value, path, "")]


def records(value: object, key: str) -> list[Mapping[str, Any]]:
    """The mappings in the list at ``value[key]`` (other elements are skipped)."""
    found = at(value, key)
    if not _is_list(found):
        return []
    return [item for item in found if isinstance(item, Mapping)]


def entries(content: object) -> list[Mapping[str, Any]]:
    """The reports in an artifact: its ``items`` when fanned in by concat, else itself."""
    if not isinstance(content, Mapping):
        return []
    items = content.get("items")
    if _is_list(items) and set(content) == {"items"}:
        return [item for item in items if isinstance(item, Mapping)]
    return [content]


def strings(value: object, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its location, in document order."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield from strings(inner, f"{where}.{key}")
    elif _is_list(value):
        for index, inner in enumerate(value):
            yield from strings(inner, f"{where}[{index}]")


def thinness(value: object, *, min_chars: int, min_items: int) -> str | None:
    """Why ``value`` says too little to count as present, or None when it is substantive.

    Thin means: null; a string that is blank, a placeholder (``TBD``, ``n/a``…) or shorter than
    ``min_chars`` characters; a list with fewer than ``min_items`` substantive elements; a
    mapping none of whose values is substantive. Numbers and booleans are never thin.
    """
    if value is None:
        return "is null"
    if isinstance(value, str):
        return _thin_text(value, min_chars)
    if isinstance(value, Mapping):
        full = [k for k, v in value.items() if thinness(v, min_chars=1, min_items=1) is None]
        return None if full else f"is an object with no content ({len(value)} empty keys)"
    if _is_list(value):
        full = [v for v in value if thinness(v, min_chars=1, min_items=1) is None]
        if len(full) < min_items:
            return f"has {len(full)} substantive item(s), fewer than {min_items}"
    return None


def _thin_text(text: str, min_chars: int) -> str | None:
    stripped = text.strip()
    if not stripped:
        return "is blank"
    if stripped.lower().rstrip(".") in PLACEHOLDERS or stripped in PLACEHOLDERS:
        return f"is the placeholder {stripped!r}"
    if len(stripped) < min_chars:
        return f"has {len(stripped)} characters, fewer than {min_chars}"
    return None


def _is_list(value: object) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)
