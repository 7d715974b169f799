"""Random graphs for the generators: draw with networkx, orient into a DAG, retry until connected.

Pure functions: the same arguments give the same edges on every machine, because every draw gets
an explicit integer seed and retries use seeds derived from it (never global random state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import networkx as nx

from autostudent.edges import Edges
from autostudent.errors import TrialFailed
from autostudent.registry import Registry

# A graph model draws an undirected graph on nodes 0..n-1 from (n, k, p, m, seed); each model
# reads the arguments it needs: WS (k, p), ER (p), BA (m).
GraphModel = Callable[[int, int, float, int, int], nx.Graph]
GRAPH_MODELS: Registry[GraphModel] = Registry("graph model")

DEFAULT_TRIES = 100


def derive_seed(seed: int, *path: object) -> int:
    """A 31-bit seed for the sub-draw named by `path` (stable across runs and Python versions)."""
    key = ":".join(str(part) for part in (seed, *path)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & 0x7FFFFFFF


def effective_ws_k(n: int, k: int) -> int:
    """WS neighbour count networkx actually uses: K < n, even (networkx joins K//2 per side), ≥ 2.

    The public NAGO code let K reach n; networkx then returns a complete graph (or raises when
    K > n), so the "small world" is silently gone. Clamping keeps the draw a ring lattice.
    """
    k = min(k, n - 1)
    return max(2, k - k % 2)


@GRAPH_MODELS.register("ws")
def _watts_strogatz(n: int, k: int, p: float, m: int, seed: int) -> nx.Graph:
    if n < 3:
        return nx.path_graph(n)
    return nx.watts_strogatz_graph(n, effective_ws_k(n, k), p, seed=seed)


@GRAPH_MODELS.register("er")
def _erdos_renyi(n: int, k: int, p: float, m: int, seed: int) -> nx.Graph:
    return nx.gnp_random_graph(n, p, seed=seed)


@GRAPH_MODELS.register("ba")
def _barabasi_albert(n: int, k: int, p: float, m: int, seed: int) -> nx.Graph:
    if n < 3:
        return nx.path_graph(n)
    return nx.barabasi_albert_graph(n, min(max(m, 1), n - 1), seed=seed)


def random_graph(
    model: str, n: int, seed: int, *, k: int = 4, p: float = 0.5, m: int = 2
) -> nx.Graph:
    """One undirected draw of `model` ("ws", "er", "ba") on n nodes; may be disconnected."""
    if n < 1:
        raise ValueError(f"a graph needs at least one node, got n={n}")
    return GRAPH_MODELS.get(model)(n, k, p, m, seed)


def orient(graph: nx.Graph) -> Edges:
    """Edges from the lower to the higher node index (so acyclic), sorted; as RandWire, NAGO."""
    return sorted([min(u, v), max(u, v)] for u, v in graph.edges())


def is_connected(graph: nx.Graph) -> bool:
    return graph.number_of_nodes() <= 1 or nx.is_connected(graph)


def connected_dag(
    model: str,
    n: int,
    seed: int,
    *,
    k: int = 4,
    p: float = 0.5,
    m: int = 2,
    tries: int = DEFAULT_TRIES,
) -> Edges:
    """Edges of the first connected draw among `seed` and seeds derived from it, oriented low→high.

    Raises TrialFailed when every draw is disconnected: the architecture cannot be built, and the
    search should record why rather than silently keep a disconnected graph (the public NAGO code
    fell through its retry loop with whatever the last draw was).
    """
    for attempt in range(tries):
        draw_seed = seed if attempt == 0 else derive_seed(seed, "retry", attempt)
        graph = random_graph(model, n, draw_seed, k=k, p=p, m=m)
        if is_connected(graph):
            return orient(graph)
    raise TrialFailed(
        f"{model} graph with n={n} (k={k}, p={p:.3g}, m={m}) stayed disconnected "
        f"after {tries} draws from seed {seed}"
    )
