"""The phase graph: cycle detection, levels, ready set and critical path. Pure functions.

A graph is a mapping from each phase to the phases it depends on. Functions that return
several phases return them in the mapping's order, so results never depend on set order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

__all__ = ["ancestors", "critical_path", "find_cycle", "levels", "ready_phases"]

Graph = Mapping[str, Sequence[str]]


def find_cycle(graph: Graph) -> list[str] | None:
    """A dependency cycle as a path that starts and ends on the same phase, or ``None``.

    Dependencies on phases that are not keys of ``graph`` are ignored (reported elsewhere).
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in graph[node]:
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def levels(graph: Graph) -> list[list[str]]:
    """Phases grouped by their longest distance from a phase with no dependencies."""
    depth: dict[str, int] = {}

    def depth_of(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((depth_of(dep) for dep in graph[node]), default=-1)
        return depth[node]

    for node in graph:
        depth_of(node)
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in graph:
        result[depth[node]].append(node)
    return result


def ready_phases(graph: Graph, passed: Collection[str], started: Collection[str]) -> list[str]:
    """Phases not yet started whose every dependency has passed."""
    return [
        node
        for node, deps in graph.items()
        if node not in started and all(dep in passed for dep in deps)
    ]


def critical_path(graph: Graph, duration: Mapping[str, float]) -> tuple[list[str], float]:
    """The longest chain by total expected duration, and that total."""
    best: dict[str, tuple[float, list[str]]] = {}

    def longest_to(node: str) -> tuple[float, list[str]]:
        if node not in best:
            before = max(
                (longest_to(dep) for dep in graph[node]),
                key=lambda item: item[0],
                default=(0.0, []),
            )
            best[node] = (before[0] + duration[node], [*before[1], node])
        return best[node]

    ends = [longest_to(node) for node in graph]
    if not ends:
        return [], 0.0
    total, path = max(ends, key=lambda item: item[0])
    return path, total


def ancestors(graph: Graph, node: str) -> list[str]:
    """Every phase ``node`` depends on, directly or not, in the graph's order."""
    seen: set[str] = set()
    stack = list(graph[node])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph[current])
    return [name for name in graph if name in seen]
