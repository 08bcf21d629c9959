"""The phase graph: cycles, levels, the ready set, the critical path and ancestors."""

from __future__ import annotations

import itertools

import pytest
from tests.unit.engine.factories import SPEC_DAG

from ideamine.engine.dag import ancestors, critical_path, find_cycle, levels, ready_phases

DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}


def _is_cycle_in(cycle: list[str], graph: dict[str, tuple[str, ...]]) -> bool:
    return all(dep in graph[node] for node, dep in itertools.pairwise(cycle))


def test_find_cycle_returns_a_closed_path() -> None:
    graph = {"a": ("c",), "b": ("a",), "c": ("b",)}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    assert _is_cycle_in(cycle, graph)


def test_find_cycle_path_follows_dependencies_from_the_first_node() -> None:
    assert find_cycle({"a": ("b",), "b": ("c",), "c": ("a",)}) == ["a", "b", "c", "a"]


def test_find_cycle_reports_only_the_cycle_not_the_path_into_it() -> None:
    graph = {"entry": ("x",), "x": ("y",), "y": ("x",)}
    assert find_cycle(graph) == ["x", "y", "x"]


def test_find_cycle_finds_a_self_dependency() -> None:
    assert find_cycle({"a": (), "b": ("b",)}) == ["b", "b"]


@pytest.mark.parametrize("graph", [{}, {"a": ()}, DIAMOND, SPEC_DAG])
def test_find_cycle_is_none_for_a_dag(graph: dict[str, tuple[str, ...]]) -> None:
    assert find_cycle(graph) is None


def test_find_cycle_ignores_unknown_dependencies() -> None:
    assert find_cycle({"a": ("ghost",), "b": ("a", "phantom")}) is None


def test_levels_of_the_spec_dag() -> None:
    grouped = levels(SPEC_DAG)
    assert len(grouped) == 12
    assert grouped[0] == ["intake"]
    assert grouped[7] == ["security", "story-loop"]
    assert grouped[8] == ["qa"]
    assert grouped[-1] == ["beta"]
    assert all(len(level) == 1 for index, level in enumerate(grouped) if index != 7)


def test_levels_use_the_longest_distance_from_a_root() -> None:
    graph = {"a": (), "b": ("a",), "c": ("b",), "d": ("a", "c")}
    assert levels(graph) == [["a"], ["b"], ["c"], ["d"]]


def test_levels_keep_the_graph_order_within_a_level() -> None:
    assert levels({"z": (), "y": (), "x": ("z", "y")}) == [["z", "y"], ["x"]]


def test_levels_of_an_empty_graph() -> None:
    assert levels({}) == []


def test_ready_phases_at_the_start_are_the_roots() -> None:
    assert ready_phases({"a": (), "b": ("a",), "c": ()}, passed=[], started=[]) == ["a", "c"]


def test_ready_phases_need_every_dependency_passed() -> None:
    assert ready_phases(DIAMOND, passed=["a", "b"], started=["a", "b", "c"]) == []
    assert ready_phases(DIAMOND, passed=["a", "b", "c"], started=["a", "b", "c"]) == ["d"]


def test_ready_phases_skip_started_phases() -> None:
    assert ready_phases(DIAMOND, passed=["a"], started=["a", "b"]) == ["c"]


def test_ready_phases_after_build_are_security_and_story_loop() -> None:
    upstream = list(SPEC_DAG)[:7]
    assert ready_phases(SPEC_DAG, passed=upstream, started=upstream) == ["security", "story-loop"]


def test_critical_path_follows_the_longest_branch() -> None:
    duration = {"a": 1.0, "b": 10.0, "c": 2.0, "d": 1.0}
    assert critical_path(DIAMOND, duration) == (["a", "b", "d"], 12.0)


def test_critical_path_switches_when_the_other_branch_is_longer() -> None:
    duration = {"a": 1.0, "b": 2.0, "c": 10.0, "d": 1.0}
    assert critical_path(DIAMOND, duration) == (["a", "c", "d"], 12.0)


def test_critical_path_may_end_before_the_last_phase() -> None:
    graph = {"a": (), "b": ("a",), "solo": ()}
    assert critical_path(graph, {"a": 1.0, "b": 1.0, "solo": 5.0}) == (["solo"], 5.0)


def test_critical_path_of_an_empty_graph() -> None:
    assert critical_path({}, {}) == ([], 0.0)


def test_critical_path_of_the_spec_dag_runs_through_security_on_a_tie() -> None:
    path, total = critical_path(SPEC_DAG, dict.fromkeys(SPEC_DAG, 1.0))
    assert total == 12.0
    assert path == [name for name in SPEC_DAG if name != "story-loop"]


def test_ancestors_are_transitive_and_in_graph_order() -> None:
    assert ancestors(DIAMOND, "d") == ["a", "b", "c"]
    assert ancestors(DIAMOND, "b") == ["a"]
    assert ancestors(DIAMOND, "a") == []


def test_ancestors_of_qa_in_the_spec_dag() -> None:
    assert ancestors(SPEC_DAG, "qa") == list(SPEC_DAG)[:9]
