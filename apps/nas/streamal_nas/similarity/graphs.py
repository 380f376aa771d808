"""Genome -> labelled DAG, the graphs the similarity engine compares.

Node attribute ``op`` is the label: ``input``, ``phase_input``, ``conv``, ``phase_output``,
``pool``, ``output``.
"""

from __future__ import annotations

import networkx as nx

from ..genome import MacroGenome, PhaseDAG

__all__ = ["genome_graph", "phase_graph"]


def phase_graph(dag: PhaseDAG, prefix: str = "") -> nx.DiGraph:
    """Labelled DAG of one decoded phase: ``in`` -> active ``n<i>`` nodes -> ``out``.

    An inactive phase (removed from the network) gives an empty graph.
    """
    g = nx.DiGraph()
    if not dag.is_active:
        return g

    def name(i: int) -> str:
        if i == 0:
            return f"{prefix}in"
        return f"{prefix}out" if i == dag.output else f"{prefix}n{i}"

    g.add_node(name(0), op="phase_input")
    for i in dag.active:
        g.add_node(name(i), op="conv")
    g.add_node(name(dag.output), op="phase_output")
    g.add_edges_from((name(s), name(t)) for s, t in dag.edges())
    return g


def genome_graph(genome: MacroGenome) -> nx.DiGraph:
    """Whole-network labelled DAG with explicit ``input`` and ``output`` nodes.

    ``input`` -> phase ``p0`` -> ``pool<p>`` -> phase ``p<p>`` -> ... -> ``output`` over the
    active phases only.
    """
    if not isinstance(genome, MacroGenome):
        raise TypeError(f"genome must be a MacroGenome, got {type(genome).__name__}")
    g = nx.DiGraph()
    g.add_node("input", op="input")
    prev = "input"
    for p, dag in enumerate(genome.decode()):
        if not dag.is_active:
            continue
        if prev != "input":
            g.add_node(f"pool{p}", op="pool")
            g.add_edge(prev, f"pool{p}")
            prev = f"pool{p}"
        g.update(phase_graph(dag, prefix=f"p{p}."))
        g.add_edge(prev, f"p{p}.in")
        prev = f"p{p}.out"
    g.add_node("output", op="output")
    g.add_edge(prev, "output")
    return g
