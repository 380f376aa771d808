"""Similarity engine (A4NN.2): skip or warm-start candidates structurally close to trained ones.

A genome is decoded into a labelled DAG (node attribute ``op``: ``input``, ``phase_input``,
``conv``, ``phase_output``, ``pool``, ``output`` for macro genomes; the chosen operation
labels for sequence genomes). Structural distance is the graph edit distance (GED) with unit
costs: node insertion/deletion, node relabelling and edge insertion/deletion each cost 1.
Exact GED is exponential, so :func:`edit_distance` runs networkx's anytime search under a
time bound and returns the best edit path found, i.e. an *upper bound* that is exact when
the search finishes or meets the cheap lower bound.

Two macro genomes with the same phases active are compared phase by phase (by default): the
input, output and pooling nodes between phases then correspond one to one, so the sum of
per-phase GEDs is the cost of a valid edit path of the whole network graph (an upper bound
on its GED) while each search stays small. Other pairs are compared as whole graphs.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import networkx as nx

from .genome import MacroGenome, PhaseDAG, SequenceGenome

__all__ = [
    "EditDistance",
    "SimilarityDecision",
    "SimilarityEngine",
    "edit_distance",
    "genome_distance",
    "genome_graph",
    "graph_lower_bound",
    "phase_graph",
]

Genome = MacroGenome | SequenceGenome


# -- genome -> graph -------------------------------------------------------------------------
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


def genome_graph(genome: Genome) -> nx.DiGraph:
    """Whole-network labelled DAG with explicit ``input`` and ``output`` nodes.

    Macro genomes: ``input`` -> phase ``p0`` -> ``pool<p>`` -> phase ``p<p>`` -> ... ->
    ``output`` over the active phases only. Sequence genomes: ``input`` -> each
    non-identity operation ``v<i>`` -> ``output`` (identity choices add no layer).
    """
    g = nx.DiGraph()
    g.add_node("input", op="input")
    prev = "input"
    if isinstance(genome, MacroGenome):
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
    elif isinstance(genome, SequenceGenome):
        for i, op in enumerate(genome.operations):
            if op.kind == "identity":
                continue
            g.add_node(f"v{i}", op=op.label)
            g.add_edge(prev, f"v{i}")
            prev = f"v{i}"
    else:
        raise TypeError(
            f"genome must be MacroGenome or SequenceGenome, got {type(genome).__name__}"
        )
    g.add_node("output", op="output")
    g.add_edge(prev, "output")
    return g


# -- distances -------------------------------------------------------------------------------
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


def _phase_pattern(genome: Genome) -> tuple[bool, ...] | None:
    return genome.active_phases() if isinstance(genome, MacroGenome) else None


def _decomposable(a: Genome, b: Genome) -> bool:
    pattern = _phase_pattern(a)
    return pattern is not None and pattern == _phase_pattern(b)


def genome_distance(
    a: Genome, b: Genome, timeout_s: float = 0.5, decompose_phases: bool = True
) -> EditDistance:
    """GED between two genomes' graphs (see :func:`edit_distance`).

    With ``decompose_phases`` and two macro genomes with the same active phases, the
    distance is the sum of per-phase GEDs, each search getting ``timeout_s / phases``.
    """
    if decompose_phases and _decomposable(a, b):
        assert isinstance(a, MacroGenome) and isinstance(b, MacroGenome)
        parts = [
            edit_distance(phase_graph(da), phase_graph(db), timeout_s / a.phases)
            for da, db in zip(a.decode(), b.decode(), strict=True)
        ]
        return _sum_distances(parts)
    return edit_distance(genome_graph(a), genome_graph(b), timeout_s)


def _sum_distances(parts: list[EditDistance]) -> EditDistance:
    return EditDistance(
        value=sum(p.value for p in parts),
        lower_bound=sum(p.lower_bound for p in parts),
        exact=all(p.exact for p in parts),
        elapsed_s=sum(p.elapsed_s for p in parts),
    )


# -- engine ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimilarityDecision:
    """What to do with a new candidate.

    Attributes:
        action: ``'train'`` (from scratch), ``'skip'`` (do not train, inherit fitness) or
            ``'transfer'`` (train, warm-started from ``provider_id``'s weights).
        provider_id: The most similar trained candidate within the threshold, if any.
        distance: Its distance.
        inherited_fitness: Provider fitness (set when ``action == 'skip'``).
    """

    action: Literal["train", "skip", "transfer"]
    provider_id: str | None = None
    distance: float | None = None
    inherited_fitness: float | None = None

    @property
    def should_train(self) -> bool:
        """Whether the candidate must be trained."""
        return self.action != "skip"


@dataclass(frozen=True)
class _Trained:
    candidate_id: str
    genome: Genome
    fitness: float
    order: int


@dataclass(frozen=True)
class _Graphs:
    whole: nx.DiGraph
    phases: tuple[nx.DiGraph, ...]


class SimilarityEngine:
    """Compares new candidates with trained ones by graph edit distance.

    A candidate whose GED to some trained network is ``<= threshold`` is *similar*. In
    ``mode='skip'`` (A4NN.2) it is not trained and inherits the provider's fitness; in
    ``mode='transfer'`` it is trained starting from the provider's weights.

    Args:
        threshold: Largest GED that counts as similar (A4NN.2 uses 2).
        timeout_s: Time bound per genome-pair GED search.
        mode: ``'skip'`` or ``'transfer'``.
        decompose_phases: Sum per-phase GEDs where possible (see module docstring).

    Attributes:
        n_searches_: GED searches run (pairs not settled by caches or lower bounds).
        n_pruned_: Pairs dismissed by lower bounds alone.
        n_inexact_: Searches that hit the time bound before proving optimality.
    """

    def __init__(
        self,
        threshold: float = 2,
        timeout_s: float = 0.5,
        mode: Literal["skip", "transfer"] = "skip",
        decompose_phases: bool = True,
    ) -> None:
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if mode not in ("skip", "transfer"):
            raise ValueError(f"mode must be 'skip' or 'transfer', got {mode!r}")
        self.threshold = threshold
        self.timeout_s = timeout_s
        self.mode = mode
        self.decompose_phases = decompose_phases
        self._trained: dict[str, _Trained] = {}
        self._graphs: dict[str, _Graphs] = {}
        self._pairs: dict[tuple[str, str], EditDistance] = {}
        self.n_searches_ = 0
        self.n_pruned_ = 0
        self.n_inexact_ = 0

    def __len__(self) -> int:
        return len(self._trained)

    def add_trained(self, candidate_id: str, genome: Genome, fitness: float) -> None:
        """Register a trained candidate (re-adding an id replaces it)."""
        order = len(self._trained)
        self._trained[candidate_id] = _Trained(candidate_id, genome, float(fitness), order)
        self._graphs_of(genome)

    def distance(self, a: Genome, b: Genome) -> EditDistance:
        """Cached GED between two genomes."""
        result = self._distance(a, b, bound=None)
        assert result is not None  # no bound, never pruned
        return result

    def most_similar(
        self, genome: Genome, max_distance: float | None = None
    ) -> tuple[str, float] | None:
        """Closest trained candidate and its distance; ties go to the higher fitness.

        Candidates are visited in order of their lower bound, and any whose lower bound
        exceeds the best distance so far (or ``max_distance``) is dismissed unsearched.

        Args:
            genome: The new candidate.
            max_distance: If given, ignore candidates farther than this.

        Returns:
            ``(candidate_id, distance)`` or ``None`` when nothing is trained (or in range).
        """
        scored = sorted(
            ((self._lower_bound(genome, rec.genome), -rec.fitness, rec.order), rec)
            for rec in self._trained.values()
        )
        best: tuple[float, _Trained] | None = None
        for (lb, _, _), rec in scored:
            bound = max_distance if best is None else best[0]
            if bound is not None and lb > bound:
                self.n_pruned_ += 1
                continue
            found = self._distance(genome, rec.genome, bound=bound)
            if found is None:
                self.n_pruned_ += 1
                continue
            d = found.value
            if best is None or d < best[0] or (d == best[0] and rec.fitness > best[1].fitness):
                best = (d, rec)
            if best[0] == 0:
                break  # nothing is closer; equal-lb ties were visited by fitness already
        if best is None or (max_distance is not None and best[0] > max_distance):
            return None
        return best[1].candidate_id, best[0]

    def decide(self, genome: Genome) -> SimilarityDecision:
        """Train, skip (inherit fitness) or transfer, by the threshold rule."""
        hit = self.most_similar(genome, max_distance=self.threshold)
        if hit is None:
            return SimilarityDecision("train")
        cid, dist = hit
        if self.mode == "skip":
            return SimilarityDecision("skip", cid, dist, self._trained[cid].fitness)
        return SimilarityDecision("transfer", cid, dist)

    # -- internals ---------------------------------------------------------------------------
    def _graphs_of(self, genome: Genome) -> _Graphs:
        key = genome.key()
        if key not in self._graphs:
            phases: tuple[nx.DiGraph, ...] = ()
            if isinstance(genome, MacroGenome):
                phases = tuple(phase_graph(d) for d in genome.decode())
            self._graphs[key] = _Graphs(genome_graph(genome), phases)
        return self._graphs[key]

    def _graph_pairs(self, a: Genome, b: Genome) -> list[tuple[nx.DiGraph, nx.DiGraph]]:
        ga, gb = self._graphs_of(a), self._graphs_of(b)
        if self.decompose_phases and _decomposable(a, b):
            return list(zip(ga.phases, gb.phases, strict=True))
        return [(ga.whole, gb.whole)]

    def _lower_bound(self, a: Genome, b: Genome) -> float:
        return float(sum(graph_lower_bound(x, y) for x, y in self._graph_pairs(a, b)))

    def _distance(self, a: Genome, b: Genome, bound: float | None) -> EditDistance | None:
        """Cached GED; ``None`` once the partial sum proves it exceeds ``bound``."""
        ka, kb = a.key(), b.key()
        if ka == kb:
            return EditDistance(0.0, 0.0, True, 0.0)
        pair = (ka, kb) if ka <= kb else (kb, ka)
        if pair in self._pairs:
            return self._pairs[pair]
        graph_pairs = self._graph_pairs(a, b)
        per_timeout = self.timeout_s / len(graph_pairs)
        lbs = [graph_lower_bound(x, y) for x, y in graph_pairs]
        parts: list[EditDistance] = []
        for i, (x, y) in enumerate(graph_pairs):
            if bound is not None and sum(p.value for p in parts) + sum(lbs[i:]) > bound:
                return None
            if nx.utils.graphs_equal(x, y):
                parts.append(EditDistance(0.0, 0.0, True, 0.0))
                continue
            self.n_searches_ += 1
            part = edit_distance(x, y, per_timeout)
            self.n_inexact_ += not part.exact
            parts.append(part)
        result = _sum_distances(parts)
        self._pairs[pair] = result
        return result
