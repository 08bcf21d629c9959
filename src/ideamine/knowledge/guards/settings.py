"""A guard's ``config`` from the phase YAML, read with defaults and checked for typos.

Every guard names the keys it accepts and the kind of value each takes; an unknown key
(``min_precent``) or a value of the wrong kind raises :class:`~ideamine.errors.UsageError`
naming the guard, the key and what it takes, before the guard looks at any artifact, instead of
silently falling back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ideamine.errors import UsageError

__all__ = ["ANY", "COUNT", "FLAG", "NAMES", "NUMBER", "TABLE", "TEXT", "Settings", "settings"]

# The kinds of config value (see the Settings reader of the same name).
NUMBER, COUNT, FLAG, TEXT, NAMES, TABLE, ANY = (
    "number",
    "count",
    "flag",
    "text",
    "names",
    "table",
    "any",
)


def settings(guard: str, config: Mapping[str, Any], accepted: Mapping[str, str]) -> Settings:
    """``config`` of guard ``guard``, checked against ``accepted`` (key → kind of value).

    Raises:
        UsageError: ``config`` has a key the guard does not know, or a value of the wrong kind.
    """
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise UsageError(
            f"guard {guard}: unknown config key(s) {', '.join(unknown)}",
            hint=f"{guard} accepts: {', '.join(sorted(accepted)) or 'no keys'}",
        )
    read = Settings(guard=guard, raw=config)
    for key in config:
        read.check(key, accepted[key])
    return read


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Typed reads of one guard's config; each read takes SPEC §1's default."""

    guard: str
    raw: Mapping[str, Any]

    def check(self, key: str, kind: str) -> None:
        """Raise UsageError unless the value at ``key`` is of ``kind`` (ANY: unchecked)."""
        if kind == NUMBER:
            self.number(key, 0)
        elif kind == COUNT:
            self.count(key, 0)
        elif kind == FLAG:
            self.flag(key, False)
        elif kind == TEXT:
            self.text(key, "")
        elif kind == NAMES:
            self.names(key, ())
        elif kind == TABLE:
            self.table(key)

    def number(self, key: str, default: float) -> float:
        """A number (int or float, not bool)."""
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, value, "a number")
        return float(value)

    def count(self, key: str, default: int) -> int:
        """A non-negative integer."""
        value: object = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._wrong(key, value, "a non-negative integer")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A boolean."""
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self._wrong(key, value, "true or false")
        return value

    def text(self, key: str, default: str) -> str:
        """A string."""
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise self._wrong(key, value, "a string")
        return value

    def names(self, key: str, default: Sequence[str] | None = None) -> tuple[str, ...]:
        """A list of strings; required when ``default`` is None."""
        if key not in self.raw and default is None:
            raise UsageError(
                f"guard {self.guard}: config key {key} is required",
                hint=f"add `{key}: [...]` to the guard's config in the phase YAML",
            )
        value = self.raw.get(key, default)
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise self._wrong(key, value, "a list of strings")
        if not all(isinstance(item, str) and item for item in value):
            raise self._wrong(key, value, "a list of non-empty strings")
        return tuple(value)

    def table(self, key: str) -> Mapping[str, Any]:
        """A mapping with string keys (empty when absent)."""
        value = self.raw.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self._wrong(key, value, "a mapping")
        return value

    def _wrong(self, key: str, value: object, expected: str) -> UsageError:
        return UsageError(
            f"guard {self.guard}: config {key} is {value!r}, expected {expected}",
            hint=f"fix `{key}` in the guard's config in the phase YAML",
        )
