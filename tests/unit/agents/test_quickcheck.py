"""The quick output check: it never says yes where jsonschema says no, it does say yes to the
outputs of the common schemas, and a schema beyond it gets no check."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ideamine.agents.builtin import validate_output
from ideamine.agents.quickcheck import compile_check
from ideamine.errors import OutputSchemaError
from ideamine.jsonschemas import Draft202012Validator

NAMES = ["a", "b", "value", "score"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5, -1.5]),
    st.sampled_from(["", "a", "ab", "abc", "x1", "ü"]),
)
instances = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from([*NAMES, "other"]), inner, max_size=4),
    ),
    max_leaves=12,
)
type_names = st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null"])


def _keywords(child: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Schemas of one to three keywords (more would reject nearly every instance drawn)."""
    whole = st.integers(0, 3)
    bound = st.sampled_from([-1, 0, 1, 1.5, 2])
    values: dict[str, st.SearchStrategy[Any]] = {
        "type": st.one_of(type_names, st.lists(type_names, min_size=1, max_size=3)),
        "required": st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
        "properties": st.dictionaries(st.sampled_from(NAMES), child, max_size=3),
        "additionalProperties": st.one_of(st.just(False), child),
        "minProperties": whole,
        "maxProperties": whole,
        "items": child,
        "minItems": whole,
        "maxItems": whole,
        "minLength": whole,
        "maxLength": whole,
        "pattern": st.sampled_from(["^a", "b$", "[0-9]", "ü"]),
        "minimum": bound,
        "maximum": bound,
        "exclusiveMinimum": bound,
        "exclusiveMaximum": bound,
        "enum": st.lists(scalars, min_size=1, max_size=4),
        "const": scalars,
        "description": st.just("annotations never fail an instance"),
        "format": st.sampled_from(["date", "email"]),
    }
    chosen = st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=3, unique=True)
    return chosen.flatmap(lambda names: st.fixed_dictionaries({n: values[n] for n in names}))


schemas = st.recursive(st.just({}) | st.just(True), _keywords, max_leaves=6)


@settings(max_examples=1500, deadline=None)
@given(schemas, instances)
def test_a_yes_is_never_a_no_of_jsonschema(schema: Any, instance: Any) -> None:
    check = compile_check(schema)

    assert check is not None  # every keyword drawn here is in the subset
    if check(instance):
        assert Draft202012Validator(schema).is_valid(instance), (schema, instance)


@settings(max_examples=600, deadline=None)
@given(schemas, instances)
def test_on_json_values_it_is_sure_of_every_valid_instance(schema: Any, instance: Any) -> None:
    """Floats that are whole numbers against ``integer`` and containers in ``enum`` or
    ``const`` are left to jsonschema; every other valid instance gets its yes here (else the
    quick path would rarely be taken)."""
    if _left_to_jsonschema(schema, instance):
        return
    check = compile_check(schema)

    assert check is not None
    assert check(instance) == Draft202012Validator(schema).is_valid(instance), (schema, instance)


def _left_to_jsonschema(schema: Any, instance: Any) -> bool:
    text = repr(schema)
    whole_floats = "integer" in text and _has(instance, lambda x: isinstance(x, float))
    containers = ("enum" in text or "const" in text) and _has(
        instance, lambda x: isinstance(x, list | dict)
    )
    return whole_floats or containers


def _has(instance: Any, test: Any) -> bool:
    if test(instance):
        return True
    if isinstance(instance, dict):
        return any(_has(item, test) for item in instance.values())
    if isinstance(instance, list):
        return any(_has(item, test) for item in instance)
    return False


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"type": "number"}, True, False),  # a boolean is no number
        ({"type": "integer"}, False, False),
        ({"type": "integer"}, 2.0, False),  # jsonschema's yes, but not sure here
        ({"type": "boolean"}, 0, False),
        ({"enum": [1, "a"]}, True, False),  # True is not 1
        ({"enum": [True]}, 1, False),
        ({"enum": [1]}, 1.0, True),  # 1.0 is 1
        ({"const": None}, False, False),
        ({"const": 0}, False, False),
        ({"enum": [[1]]}, [1], False),  # containers: left to jsonschema
        ({"pattern": "b$"}, "ab", True),  # a search, not a match from the start
        ({"pattern": "^a"}, "ba", False),
        ({"minimum": 1}, True, True),  # bounds apply to numbers only
        ({"maxLength": 1}, "ü", True),  # code points, not bytes
        ({"required": ["a"]}, ["a"], True),  # applies to objects only
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
        ({"exclusiveMinimum": 1}, 1, False),
    ],
)
def test_edges_where_a_reading_could_differ(schema: Any, instance: Any, expected: bool) -> None:
    check = compile_check(schema)

    assert check is not None
    assert check(instance) is expected
    if expected:
        assert Draft202012Validator(schema).is_valid(instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        (
            {"type": "object", "required": ["value"], "properties": {"value": {"type": "object"}}},
            {"value": {"t00001": 1}},
        ),
        ({"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 2}}, ["ab"]),
        ({"type": "object", "additionalProperties": False, "properties": {"a": True}}, {"a": 1}),
        ({"enum": ["low", "high"], "title": "level"}, "high"),
        ({"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1}, 0.5),
    ],
)
def test_common_schemas_get_a_yes(schema: dict[str, Any], instance: object) -> None:
    check = compile_check(schema)

    assert check is not None and check(instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}},
        {"allOf": [{"type": "string"}]},
        {"type": "object", "patternProperties": {"^a": {"type": "string"}}},
        {"type": "array", "items": [{"type": "string"}]},  # the old tuple form
        {"type": "array", "uniqueItems": True},
        {"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}},
        {"type": "string", "pattern": "("},
        {"type": "mystery"},
        {"minLength": -1},
        False,
    ],
)
def test_a_schema_beyond_the_subset_gets_no_check(schema: object) -> None:
    assert compile_check(schema) is None


def test_validation_still_names_problems_the_quick_check_was_unsure_of() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}

    validate_output("Agent", schema, {"n": 2.0})  # jsonschema's yes, after the quick "unsure"
    with pytest.raises(OutputSchemaError, match="n: 4 is greater than the maximum of 3"):
        validate_output("Agent", schema, {"n": 4})
