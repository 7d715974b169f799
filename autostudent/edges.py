"""A student's wiring as data: a spec's graphs are edge lists ``[[u, v], ...]`` (u < v, lists so
that a spec survives a JSON round trip), read the same way by the module builder
(``student``), the size counter (``sizes``) and the dashboard's drawings.

Kept apart from the generators (``spaces.graphs``, which draw graphs with networkx) so that a
Ray worker building a student imports neither networkx nor the search-space models.
"""

from __future__ import annotations

Edges = list[list[int]]


def predecessors(n: int, edges: Edges) -> list[list[int]]:
    """Sorted predecessors of each node of an oriented graph."""
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        preds[v].append(u)
    return [sorted(p) for p in preds]


def sinks(n: int, edges: Edges) -> list[int]:
    """Nodes without successors: their mean is the graph's output."""
    has_successor = {u for u, _ in edges}
    return [i for i in range(n) if i not in has_successor]
