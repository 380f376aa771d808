"""Structural distance between genomes: unit-cost graph edit distance (GED) under a time bound.

Node insertion/deletion, node relabelling and edge insertion/deletion each cost 1. Exact GED
is exponential, so :func:`edit_distance` runs networkx's anytime search under a time bound
and returns the best edit path found, i.e. an *upper bound* that is exact when the search
finishes or meets the cheap lower bound (:func:`graph_lower_bound`).

Two genomes with the same phases active are compared phase by phase (by default): the
input, output and pooling nodes between phases then correspond one to one, so the sum of
per-phase GEDs is the cost of a valid edit path of the whole network graph (an upper bound
on its GED) while each search stays small. Other pairs are compared as whole graphs.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import networkx as nx

from ..genome import MacroGenome
from .graphs import genome_graph, phase_graph

__all__ = [
    "EditDistance",
    "decomposable",
    "edit_distance",
    "genome_distance",
    "graph_lower_bound",
    "sum_distances",
]


@dataclass(frozen=True)
class EditDistance:
    """Result of a bounded GED search.

    Attributes:
        value: Cost of the best edit path found (an upper bound on the GED).
        lower_bound: Cheap lower bound (label-multiset + edge-count difference).
        exact: Whether ``value`` is proven optimal (search finished or met the lower bound).
        elapsed_s: Wall time spent.
    """

    value: float
    lower_bound: float
    exact: bool
    elapsed_s: float


def graph_lower_bound(g1: nx.DiGraph, g2: nx.DiGraph) -> int:
    """Lower bound on unit-cost GED: unmatched node labels plus edge-count difference.

    Every edit path relabels, inserts or deletes at least ``max(n1, n2) - common labels``
    nodes and inserts or deletes at least ``|e1 - e2|`` edges.
    """
    c1 = Counter(op for _, op in g1.nodes(data="op"))
    c2 = Counter(op for _, op in g2.nodes(data="op"))
    common = sum((c1 & c2).values())
    nodes = max(g1.number_of_nodes(), g2.number_of_nodes()) - common
    return nodes + abs(g1.number_of_edges() - g2.number_of_edges())


def _name_mapping_cost(g1: nx.DiGraph, g2: nx.DiGraph) -> int:
    """Cost of the edit path that maps equally named nodes onto each other."""
    n1, n2 = set(g1.nodes), set(g2.nodes)
    cost = sum(g1.nodes[v].get("op") != g2.nodes[v].get("op") for v in n1 & n2)
    cost += len(n1 ^ n2)
    return cost + len(set(g1.edges) ^ set(g2.edges))


def _same_op(a: dict, b: dict) -> bool:
    return a.get("op") == b.get("op")


def edit_distance(g1: nx.DiGraph, g2: nx.DiGraph, timeout_s: float = 0.5) -> EditDistance:
    """Unit-cost graph edit distance found within ``timeout_s`` seconds.

    Starts from the name-based edit path (nodes of the same position map onto each other)
    and lets ``networkx.optimize_edit_paths`` improve on it until it finishes, reaches the
    lower bound or runs out of time.

    Args:
        g1: First graph (node attribute ``op`` is the label).
        g2: Second graph.
        timeout_s: Time bound of the search, > 0.

    Returns:
        The best distance found with its lower bound and exactness flag.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    import scipy.optimize  # noqa: F401  (networkx loads it lazily; keep that out of the bound)

    start = time.perf_counter()
    lb = graph_lower_bound(g1, g2)
    best = _name_mapping_cost(g1, g2)
    exact = best <= lb
    if not exact:
        paths = nx.optimize_edit_paths(
            g1,
            g2,
            node_match=_same_op,
            upper_bound=best,
            strictly_decreasing=True,
            timeout=timeout_s,
        )
        for _, _, cost in paths:
            best = min(best, int(round(cost)))
            if best <= lb:
                break
        exact = best <= lb or time.perf_counter() - start < timeout_s
    return EditDistance(float(best), float(lb), exact, time.perf_counter() - start)


def decomposable(a: MacroGenome, b: MacroGenome) -> bool:
    """Whether ``a`` and ``b`` can be compared phase by phase (the same phases active)."""
    return a.active_phases() == b.active_phases()


def genome_distance(
    a: MacroGenome, b: MacroGenome, timeout_s: float = 0.5, decompose_phases: bool = True
) -> EditDistance:
    """GED between two genomes' graphs (see :func:`edit_distance`).

    With ``decompose_phases`` and two genomes with the same active phases, the
    distance is the sum of per-phase GEDs, each search getting ``timeout_s / phases``.
    """
    if decompose_phases and decomposable(a, b):
        parts = [
            edit_distance(phase_graph(da), phase_graph(db), timeout_s / a.phases)
            for da, db in zip(a.decode(), b.decode(), strict=True)
        ]
        return sum_distances(parts)
    return edit_distance(genome_graph(a), genome_graph(b), timeout_s)


def sum_distances(parts: list[EditDistance]) -> EditDistance:
    """The distance along the edit path made of ``parts`` (one per phase)."""
    return EditDistance(
        value=sum(p.value for p in parts),
        lower_bound=sum(p.lower_bound for p in parts),
        exact=all(p.exact for p in parts),
        elapsed_s=sum(p.elapsed_s for p in parts),
    )
