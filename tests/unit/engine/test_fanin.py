"""Fan-in: merge, concat, vote and custom, always in branch-key order."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ideamine.config.model import AggregationKind
from ideamine.engine.fanin import aggregate, concat, merge, vote

# merge


def test_merge_later_branch_key_wins_a_key() -> None:
    # Inserted in reverse: the winner is decided by key order, not by mapping order.
    assert merge({"01.B": {"x": 2}, "00.A": {"x": 1}}) == {"x": 2}


def test_merge_keeps_keys_only_one_branch_has() -> None:
    assert merge({"00.A": {"a": 1}, "01.B": {"b": 2}}) == {"a": 1, "b": 2}


def test_merge_merges_nested_mappings() -> None:
    outputs = {"00.A": {"n": {"a": 1, "b": 1}}, "01.B": {"n": {"b": 2, "c": 3}}}
    assert merge(outputs) == {"n": {"a": 1, "b": 2, "c": 3}}


def test_merge_replaces_lists() -> None:
    assert merge({"00.A": {"l": [1, 2]}, "01.B": {"l": [3]}}) == {"l": [3]}


@pytest.mark.parametrize(
    ("first", "second"),
    [({"a": 1}, 5), (5, {"a": 1}), ([1], {"a": 1}), ({"a": 1}, None)],
)
def test_merge_a_later_non_mapping_replaces_the_value(first: object, second: object) -> None:
    assert merge({"00.A": {"k": first}, "01.B": {"k": second}}) == {"k": second}


def test_merge_sorts_keys_recursively() -> None:
    result = merge({"00.A": {"b": {"z": 1, "y": 2}, "a": [{"d": 1, "c": 2}]}})
    assert json.dumps(result) == '{"a": [{"c": 2, "d": 1}], "b": {"y": 2, "z": 1}}'


def test_merge_of_nothing_is_an_empty_mapping() -> None:
    assert merge({}) == {}


def test_merge_leaves_its_inputs_untouched() -> None:
    outputs = {"00.A": {"n": {"a": 1}, "l": [1]}, "01.B": {"n": {"b": 2}, "l": [2]}}
    before = copy.deepcopy(outputs)
    merge(outputs)
    assert outputs == before


# concat


def test_concat_lists_outputs_in_branch_key_order() -> None:
    outputs = {"002.00.W": "third", "001.01.T": "second", "001.00.W": "first"}
    assert concat(outputs) == {"items": ["first", "second", "third"]}


def test_concat_of_nothing() -> None:
    assert concat({}) == {"items": []}


# vote


def test_vote_picks_the_majority() -> None:
    assert vote({"00.A": "x", "01.B": "y", "02.C": "y"}) == "y"


def test_vote_tie_goes_to_the_first_branch_by_key() -> None:
    assert vote({"02.C": "c", "01.B": "b", "00.A": "a"}) == "a"


def test_vote_tie_between_groups_goes_to_the_group_of_the_first_branch() -> None:
    assert vote({"00.A": "y", "01.B": "x", "02.C": "x", "03.D": "y"}) == "y"


def test_vote_compares_by_canonical_json() -> None:
    outputs = {"00.A": {"c": 3}, "01.B": {"a": 1, "b": 2}, "02.C": {"b": 2, "a": 1}}
    assert vote(outputs) == {"a": 1, "b": 2}


def test_vote_of_nothing_is_none() -> None:
    assert vote({}) is None


# aggregate


def test_aggregate_dispatches_on_kind() -> None:
    outputs = {"01.B": {"v": 2}, "00.A": {"v": 1}}
    assert aggregate(AggregationKind.MERGE, outputs) == {"v": 2}
    assert aggregate(AggregationKind.CONCAT, outputs) == {"items": [{"v": 1}, {"v": 2}]}
    assert aggregate(AggregationKind.VOTE, outputs) == {"v": 1}


def test_custom_aggregation_receives_outputs_in_branch_key_order() -> None:
    seen: list[list[object]] = []

    def combine(values: list[object]) -> object:
        seen.append(values)
        return len(values)

    result = aggregate(AggregationKind.CUSTOM, {"01.B": "b", "00.A": "a"}, custom=combine)
    assert result == 2
    assert seen == [["a", "b"]]


def test_custom_aggregation_without_its_function_is_an_error() -> None:
    with pytest.raises(ValueError, match="custom aggregation needs its function"):
        aggregate(AggregationKind.CUSTOM, {"00.A": 1})


# invariant 4: fan-in orders by branch key, never by completion order

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=12,
)
# Small key alphabets make shared keys (and so merge conflicts and vote ties) common.
OUTPUTS = st.dictionaries(
    st.text(alphabet="0123.AB", min_size=1, max_size=4),
    JSON | st.dictionaries(st.sampled_from("abc"), JSON, max_size=3),
    max_size=6,
)


def _first_and_last(values: list[object]) -> object:
    return [values[:1], values[-1:]]


@settings(database=None, max_examples=200, deadline=None)
@given(outputs=OUTPUTS, data=st.data())
def test_fan_in_is_independent_of_completion_order(
    outputs: dict[str, object], data: st.DataObject
) -> None:
    items = data.draw(st.permutations(list(outputs.items())))
    completed = dict(items)  # the same outputs, recorded in another completion order
    for kind in AggregationKind:
        custom = _first_and_last if kind is AggregationKind.CUSTOM else None
        expected = aggregate(kind, outputs, custom=custom)
        actual = aggregate(kind, completed, custom=custom)
        # json.dumps without sort_keys also compares the key order of every mapping.
        assert json.dumps(actual) == json.dumps(expected), kind
