"""Similarity engine: graph construction, bounded GED and the skip/transfer decision."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest

from streamal_nas.genome import MacroGenome
from streamal_nas.similarity import (
    SimilarityEngine,
    edit_distance,
    genome_distance,
    genome_graph,
    graph_lower_bound,
    phase_graph,
)

FULL4 = (1,) * 6 + (0,)  # 4-node phase, every connection, no skip
ZERO4 = (0,) * 7


def _one_bit(bits: tuple[int, ...], index: int) -> tuple[int, ...]:
    out = list(bits)
    out[index] ^= 1
    return tuple(out)


def test_graph_has_input_output_and_labelled_operations() -> None:
    g = genome_graph(MacroGenome(3, 4, FULL4 + ZERO4 + FULL4))
    ops = nx.get_node_attributes(g, "op")
    assert ops["input"] == "input" and ops["output"] == "output"
    assert list(ops.values()).count("conv") == 8
    assert nx.is_directed_acyclic_graph(g)
    assert nx.has_path(g, "input", "output")
    # the inactive middle phase vanishes with its pooling: p0 -> pool2 -> p2
    assert "p1.in" not in g and list(ops.values()).count("pool") == 1
    assert g.has_edge("p0.out", "pool2") and g.has_edge("pool2", "p2.in")
    assert g.number_of_edges() == 2 * 8 + 4


def test_identical_genomes_have_distance_zero() -> None:
    g = MacroGenome.random(np.random.default_rng(0), 3, 6)
    assert genome_distance(g, g).value == 0
    assert SimilarityEngine().distance(g, MacroGenome(3, 6, g.bits)).value == 0


def test_one_bit_changes_are_within_threshold() -> None:
    base = MacroGenome(3, 4, FULL4 * 3)
    skip_flip = MacroGenome(3, 4, _one_bit(base.bits, 6))  # skip bit of phase 0
    edge_flip = MacroGenome(3, 4, _one_bit(base.bits, 7 + 3))  # 1->4 in phase 1
    assert genome_distance(base, skip_flip).value == 1
    d = genome_distance(base, edge_flip)
    assert d.value == 1 and d.exact
    assert d.value <= SimilarityEngine().threshold


def test_very_different_genomes_exceed_threshold() -> None:
    skip_only = FULL4[:-1] + (1,)
    d = genome_distance(MacroGenome(3, 4, FULL4 * 3), MacroGenome(3, 4, skip_only * 3))
    assert d.exact and d.value == 3  # sanity: one skip edge per phase
    empty = genome_distance(MacroGenome(3, 4, ZERO4 * 3), MacroGenome(3, 4, FULL4 * 3))
    # input -> output against 3 full phases: 20 nodes and 29 edges more at the very least
    assert empty.lower_bound == 20 + 29
    assert empty.value >= empty.lower_bound > SimilarityEngine().threshold
    sparse = (1,) + (0,) * 6  # phase with the single connection 1 -> 2
    far = genome_distance(MacroGenome(3, 4, sparse * 3), MacroGenome(3, 4, FULL4 * 3))
    assert far.exact and far.value > SimilarityEngine().threshold


def test_phase_decomposition_upper_bounds_whole_graph_ged() -> None:
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 3:
        a = MacroGenome.random(rng, 2, 3)
        b = a.mutate(rng, 0.3)
        if a == b or not all(a.active_phases() + b.active_phases()):
            continue
        checked += 1
        split = genome_distance(a, b, timeout_s=2.0)
        whole = genome_distance(a, b, timeout_s=2.0, decompose_phases=False)
        assert whole.value <= split.value


def test_bounded_ged_agrees_with_exact_networkx_on_small_graphs() -> None:
    rng = np.random.default_rng(2)
    for _ in range(6):
        ga = phase_graph(MacroGenome.random(rng, 1, 4).decode_phase(0))
        gb = phase_graph(MacroGenome.random(rng, 1, 4).decode_phase(0))
        exact = nx.graph_edit_distance(ga, gb, node_match=lambda x, y: x["op"] == y["op"])
        d = edit_distance(ga, gb, timeout_s=5.0)
        assert d.exact and d.value == exact
        assert graph_lower_bound(ga, gb) <= exact


def test_timeout_bounds_search_on_twelve_node_pair() -> None:
    rng = np.random.default_rng(3)
    ga = phase_graph(MacroGenome.random(rng, 1, 10).decode_phase(0))
    gb = phase_graph(MacroGenome.random(rng, 1, 10).decode_phase(0))
    assert ga.number_of_nodes() == gb.number_of_nodes() == 12
    start = time.perf_counter()
    d = edit_distance(ga, gb, timeout_s=0.1)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.6
    assert not d.exact  # this pair needs far longer than 0.1 s to prove optimality
    assert d.lower_bound <= d.value < float("inf")

    engine = SimilarityEngine(timeout_s=0.1)
    a, b = MacroGenome.random(rng, 1, 10), MacroGenome.random(rng, 1, 10)
    start = time.perf_counter()
    engine.distance(a, b)
    assert time.perf_counter() - start < 0.6
    start = time.perf_counter()
    assert engine.distance(b, a) == engine.distance(a, b)  # cached, symmetric
    assert time.perf_counter() - start < 0.01


def test_engine_most_similar_and_decisions() -> None:
    engine = SimilarityEngine(threshold=2, timeout_s=0.5)
    base = MacroGenome(3, 4, FULL4 * 3)
    assert engine.most_similar(base) is None
    assert engine.decide(base).action == "train"

    engine.add_trained("far", MacroGenome(3, 4, ZERO4 * 3), fitness=0.9)
    engine.add_trained("near", MacroGenome(3, 4, _one_bit(base.bits, 6)), fitness=0.7)
    assert engine.most_similar(base) == ("near", 1.0)

    decision = engine.decide(base)
    assert decision.action == "skip" and not decision.should_train
    assert decision.provider_id == "near" and decision.inherited_fitness == 0.7

    far_query = MacroGenome(3, 4, ZERO4 * 2 + FULL4)
    assert engine.decide(far_query).action == "train"
    assert engine.most_similar(far_query, max_distance=2) is None

    transfer = SimilarityEngine(threshold=2, mode="transfer")
    transfer.add_trained("near", MacroGenome(3, 4, _one_bit(base.bits, 6)), fitness=0.7)
    decided = transfer.decide(base)
    assert decided.action == "transfer" and decided.should_train
    assert decided.provider_id == "near" and decided.inherited_fitness is None


def test_ties_go_to_higher_fitness() -> None:
    engine = SimilarityEngine()
    base = MacroGenome(3, 4, FULL4 * 3)
    engine.add_trained("low", MacroGenome(3, 4, _one_bit(base.bits, 6)), fitness=0.1)
    engine.add_trained("high", MacroGenome(3, 4, _one_bit(base.bits, 13)), fitness=0.8)
    assert engine.most_similar(base) == ("high", 1.0)


def test_lower_bound_prunes_without_searching() -> None:
    engine = SimilarityEngine(threshold=2)
    for i in range(5):
        bits = list(ZERO4 * 3)
        bits[i] = 1
        engine.add_trained(f"sparse{i}", MacroGenome(3, 4, tuple(bits)), fitness=0.5)
    assert engine.decide(MacroGenome(3, 4, FULL4 * 3)).action == "train"
    assert engine.n_searches_ == 0
    assert engine.n_pruned_ == 5


def test_engine_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="mode"):
        SimilarityEngine(mode="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s"):
        SimilarityEngine(timeout_s=0)
