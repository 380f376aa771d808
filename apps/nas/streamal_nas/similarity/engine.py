"""A4NN.2's similarity engine: skip or warm-start candidates structurally close to trained ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import networkx as nx

from ..genome import MacroGenome
from .distance import (
    EditDistance,
    decomposable,
    edit_distance,
    graph_lower_bound,
    sum_distances,
)
from .graphs import genome_graph, phase_graph

__all__ = ["SimilarityDecision", "SimilarityEngine"]


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
    genome: MacroGenome
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
        decompose_phases: Sum per-phase GEDs where possible (see :mod:`.distance`).

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

    def add_trained(self, candidate_id: str, genome: MacroGenome, fitness: float) -> None:
        """Register a trained candidate (re-adding an id replaces it)."""
        order = len(self._trained)
        self._trained[candidate_id] = _Trained(candidate_id, genome, float(fitness), order)
        self._graphs_of(genome)

    def distance(self, a: MacroGenome, b: MacroGenome) -> EditDistance:
        """Cached GED between two genomes."""
        result = self._distance(a, b, bound=None)
        assert result is not None  # no bound, never pruned
        return result

    def most_similar(
        self, genome: MacroGenome, max_distance: float | None = None
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

    def decide(self, genome: MacroGenome) -> SimilarityDecision:
        """Train, skip (inherit fitness) or transfer, by the threshold rule."""
        hit = self.most_similar(genome, max_distance=self.threshold)
        if hit is None:
            return SimilarityDecision("train")
        cid, dist = hit
        if self.mode == "skip":
            return SimilarityDecision("skip", cid, dist, self._trained[cid].fitness)
        return SimilarityDecision("transfer", cid, dist)

    # -- internals ---------------------------------------------------------------------------
    def _graphs_of(self, genome: MacroGenome) -> _Graphs:
        key = genome.key()
        if key not in self._graphs:
            phases = tuple(phase_graph(d) for d in genome.decode())
            self._graphs[key] = _Graphs(genome_graph(genome), phases)
        return self._graphs[key]

    def _graph_pairs(self, a: MacroGenome, b: MacroGenome) -> list[tuple[nx.DiGraph, nx.DiGraph]]:
        ga, gb = self._graphs_of(a), self._graphs_of(b)
        if self.decompose_phases and decomposable(a, b):
            return list(zip(ga.phases, gb.phases, strict=True))
        return [(ga.whole, gb.whole)]

    def _lower_bound(self, a: MacroGenome, b: MacroGenome) -> float:
        return float(sum(graph_lower_bound(x, y) for x, y in self._graph_pairs(a, b)))

    def _distance(self, a: MacroGenome, b: MacroGenome, bound: float | None) -> EditDistance | None:
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
        result = sum_distances(parts)
        self._pairs[pair] = result
        return result
