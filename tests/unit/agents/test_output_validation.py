"""Checking an agent's output against its schema: the errors it names, and one validator
per distinct schema however many agents (or schema objects) share it."""

from __future__ import annotations

import copy
import datetime

import pytest

from ideamine.agents import builtin
from ideamine.agents.builtin import validate_output
from ideamine.errors import OutputSchemaError

SCHEMA = {
    "type": "object",
    "required": ["value"],
    "properties": {"value": {"type": "object"}, "score": {"type": "number", "maximum": 1}},
}


def test_a_matching_output_passes() -> None:
    validate_output("FanoutAgent1", SCHEMA, {"value": {"t1": 1}, "score": 0.5})


def test_a_mismatch_names_the_agent_and_each_problem_by_its_path() -> None:
    with pytest.raises(OutputSchemaError) as caught:
        validate_output("FanoutAgent1", SCHEMA, {"value": [], "score": 3})

    text = str(caught.value)
    assert "FanoutAgent1" in text
    assert "score: 3 is greater than the maximum of 1" in text
    assert "value: [] is not of type 'object'" in text


def test_equal_schemas_share_one_validator_and_different_ones_do_not() -> None:
    copies = [copy.deepcopy(SCHEMA) for _ in range(3)]
    other = {**copy.deepcopy(SCHEMA), "required": ["score"]}

    validators = {id(builtin._validator(schema)) for schema in copies}

    assert len(validators) == 1
    assert id(builtin._validator(other)) not in validators
    with pytest.raises(OutputSchemaError, match="'score' is a required property"):
        validate_output("FanoutAgent2", other, {"value": {}})


def test_a_schema_that_is_not_json_still_checks_outputs() -> None:
    dated = {**SCHEMA, "examples": [{"since": datetime.date(2026, 11, 26)}]}  # as YAML reads

    validate_output("FanoutAgent3", dated, {"value": {}})
    with pytest.raises(OutputSchemaError, match="'value' is a required property"):
        validate_output("FanoutAgent3", dated, {})
