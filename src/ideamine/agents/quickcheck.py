"""A quick yes for outputs of the common schemas, before jsonschema is asked.

Every agent's output is checked against its schema, W2's 2,000 a run among them; jsonschema's
validator walks a schema through generic machinery (keyword lookups, child validators, error
iterators) and cost about 4 % of a W2 run's CPU for ``{"type": "object", "required": [...],
"properties": {...}}``. ``compile_check`` turns a schema built only of the keywords below
into plain closures.

The check answers one way only: True means the schema accepts the instance (as
``Draft202012Validator`` without a format checker judges it); False means "not sure", and the
caller validates with jsonschema, which decides and names the problems. Where this module's
reading of a keyword could differ from jsonschema's (an ``integer`` given as ``2.0``, an
``enum`` of containers), it answers False. A schema with any other keyword (``$ref``,
``allOf``, ``patternProperties``, ``uniqueItems``, ``$schema``…) gets no check at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

__all__ = ["Check", "compile_check"]

Check = Callable[[object], bool]

# keywords that never make an instance invalid (``format`` asserts nothing without a format
# checker, and the output check passes none)
_ANNOTATIONS = frozenset(
    {
        "$comment",
        "default",
        "deprecated",
        "description",
        "examples",
        "format",
        "readOnly",
        "title",
        "writeOnly",
    }
)


def compile_check(schema: object) -> Check | None:
    """The quick check of ``schema``, or None when it uses a keyword outside this module's
    subset (or a value of a form it does not take, such as a pattern that does not compile)."""
    if schema is True:
        return _anything
    if not isinstance(schema, Mapping):
        return None
    checks: list[Check] = []
    for keyword in sorted(schema, key=lambda keyword: keyword != "type"):  # type first
        if keyword in _ANNOTATIONS:
            continue
        build = _KEYWORDS.get(keyword)
        check = None if build is None else build(schema[keyword], schema)
        if check is None:
            return None
        checks.append(check)
    return _every(checks)


def _anything(instance: object) -> bool:
    return True


def _every(checks: Sequence[Check]) -> Check:
    if not checks:
        return _anything
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def every(instance: object) -> bool:
        for check in frozen:  # noqa: SIM110  (a loop: no generator to start per output)
            if not check(instance):
                return False
        return True

    return every


# -- type ---------------------------------------------------------------------------------

_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    # jsonschema also counts 2.0 an integer: answered "not sure" here
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
}


def _type(value: object, schema: Mapping[str, object]) -> Check | None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        return None
    if not all(isinstance(name, str) and name in _TYPES for name in names):
        return None
    if len(names) == 1:
        return _TYPES[names[0]]
    options = tuple(_TYPES[name] for name in names)
    return lambda x: any(option(x) for option in options)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# -- objects --------------------------------------------------------------------------------


def _required(value: object, schema: Mapping[str, object]) -> Check | None:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        return None
    names = tuple(value)
    return lambda x: not isinstance(x, dict) or all(name in x for name in names)


def _properties(value: object, schema: Mapping[str, object]) -> Check | None:
    if not isinstance(value, Mapping):
        return None
    children: dict[str, Check] = {}
    for name, child in value.items():
        check = compile_check(child)
        if check is None:
            return None
        if check is not _anything:
            children[name] = check

    def properties(x: object) -> bool:
        if not isinstance(x, dict):
            return True
        for name, check in children.items():  # noqa: SIM110  (as in `_every`)
            if name in x and not check(x[name]):
                return False
        return True

    return properties


def _additional(value: object, schema: Mapping[str, object]) -> Check | None:
    named = schema.get("properties", {})
    if not isinstance(named, Mapping):
        return None
    known = frozenset(named)
    if value is False:
        return lambda x: not isinstance(x, dict) or known.issuperset(x)
    check = compile_check(value)
    if check is None:
        return None
    return lambda x: (
        not isinstance(x, dict) or all(check(item) for key, item in x.items() if key not in known)
    )


def _count(of: type, measure: Callable[[int, int], bool]) -> Callable[..., Check | None]:
    """A builder for ``minItems`` and its kin: the keyword's value is a whole number."""

    def build(value: object, schema: Mapping[str, object]) -> Check | None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        return lambda x: not isinstance(x, of) or measure(len(x), value)  # type: ignore[arg-type]

    return build


# -- arrays ---------------------------------------------------------------------------------


def _items(value: object, schema: Mapping[str, object]) -> Check | None:
    check = compile_check(value)
    if check is None:
        return None
    return lambda x: not isinstance(x, list) or all(check(item) for item in x)


# -- strings and numbers --------------------------------------------------------------------


def _pattern(value: object, schema: Mapping[str, object]) -> Check | None:
    if not isinstance(value, str):
        return None
    try:
        compiled = re.compile(value)
    except re.error:
        return None  # jsonschema says what is wrong with it
    return lambda x: not isinstance(x, str) or compiled.search(x) is not None


def _bound(measure: Callable[[float, float], bool]) -> Callable[..., Check | None]:
    """A builder for ``minimum`` and its kin: the keyword's value is a number."""

    def build(value: object, schema: Mapping[str, object]) -> Check | None:
        if not _is_number(value):
            return None
        return lambda x: not _is_number(x) or measure(x, value)  # type: ignore[arg-type]

    return build


# -- enum and const -------------------------------------------------------------------------


def _same(expected: object, instance: object) -> bool:
    """Equal as jsonschema compares scalars (True is not 1); containers: not sure."""
    if isinstance(expected, bool) or isinstance(instance, bool):
        return expected is instance
    if _is_number(expected) and _is_number(instance):
        return expected == instance
    if isinstance(expected, str | type(None)):
        return type(expected) is type(instance) and expected == instance
    return False


def _enum(value: object, schema: Mapping[str, object]) -> Check | None:
    if not isinstance(value, list):
        return None
    options = tuple(value)
    return lambda x: any(_same(option, x) for option in options)


def _const(value: object, schema: Mapping[str, object]) -> Check | None:
    return lambda x: _same(value, x)


_KEYWORDS: dict[str, Callable[[object, Mapping[str, object]], Check | None]] = {
    "type": _type,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "minProperties": _count(dict, lambda size, bound: size >= bound),
    "maxProperties": _count(dict, lambda size, bound: size <= bound),
    "items": _items,
    "minItems": _count(list, lambda size, bound: size >= bound),
    "maxItems": _count(list, lambda size, bound: size <= bound),
    "minLength": _count(str, lambda size, bound: size >= bound),
    "maxLength": _count(str, lambda size, bound: size <= bound),
    "pattern": _pattern,
    "minimum": _bound(lambda x, bound: x >= bound),
    "maximum": _bound(lambda x, bound: x <= bound),
    "exclusiveMinimum": _bound(lambda x, bound: x > bound),
    "exclusiveMaximum": _bound(lambda x, bound: x < bound),
    "enum": _enum,
    "const": _const,
}
