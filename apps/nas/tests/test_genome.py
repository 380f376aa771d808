"""Search spaces, genome -> model decoding, cost counts and the digits dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamal_nas.data import load_digits_splits
from streamal_nas.genome import MacroGenome, bits_per_phase
from streamal_nas.models import MacroNet, build_model, count_flops, count_parameters

# NSGA-Net's nested form of one 4-node phase: node2<-1, node3<-(none), node4<-2, no skip.
NSGA_PHASE = [[1], [0, 0], [0, 1, 0], [0]]


def test_bits_per_phase_counts_connections_plus_skip() -> None:
    assert bits_per_phase(4) == 7
    assert bits_per_phase(6) == 16
    assert bits_per_phase(1) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phases": 2, "nodes": 4, "bits": (0,) * 13}, "length 13"),
        ({"phases": 1, "nodes": 4, "bits": (0, 1, 2, 0, 0, 0, 0)}, "0/1"),
        ({"phases": 0, "nodes": 4, "bits": ()}, "phases"),
        ({"phases": 1, "nodes": 0, "bits": ()}, "nodes"),
    ],
)
def test_macro_genome_validation_names_the_problem(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MacroGenome(**kwargs)


def test_vector_and_phase_list_round_trips() -> None:
    rng = np.random.default_rng(1)
    g = MacroGenome.random(rng, phases=3, nodes=5)
    vec = g.to_vector()
    assert vec.dtype == np.int8 and vec.shape == (3 * bits_per_phase(5),)
    assert MacroGenome.from_vector(vec.astype(float), 3, 5) == g
    assert MacroGenome.from_phase_lists(g.to_phase_lists()) == g
    assert MacroGenome.from_phase_lists([NSGA_PHASE]).bits == (1, 0, 0, 0, 1, 0, 0)
    with pytest.raises(ValueError, match="row 1 has 1 bits, expected 2"):
        MacroGenome.from_phase_lists([[[1], [0], [0]]])


def test_decoding_follows_nsga_net_rules() -> None:
    dag = MacroGenome.from_phase_lists([NSGA_PHASE]).decode_phase(0)
    # node 3 is isolated -> dropped; node 1 has no input -> fed by phase input (0);
    # node 4 has no output -> feeds the phase output (5).
    assert dag.active == (1, 2, 4)
    assert dag.inputs == {1: (0,), 2: (1,), 4: (2,), 5: (4,)}
    assert sorted(dag.edges()) == [(0, 1), (1, 2), (2, 4), (4, 5)]


def test_phase_without_connections_is_inactive_and_skip_bit_adds_residual() -> None:
    g = MacroGenome(3, 4, (0,) * 7 + (0,) * 6 + (1,) + (1, 0, 0, 0, 0, 0, 0))
    assert g.active_phases() == (False, False, True)  # a lone skip bit keeps it inactive
    empty = g.decode_phase(1)
    assert not empty.is_active and empty.active == () and empty.edges() == []
    skip = MacroGenome.from_phase_lists([[[1], [0, 0], [0, 1, 0], [1]]]).decode_phase(0)
    assert skip.inputs[5] == (0, 4)


def test_key_is_stable_and_distinguishes_genomes() -> None:
    g = MacroGenome.from_phase_lists([NSGA_PHASE, NSGA_PHASE])
    assert g.key() == "macro:2x4:1000100-1000100"
    assert g.key() == MacroGenome(2, 4, g.bits).key()
    assert g.mutate(np.random.default_rng(0), 1.0).key() != g.key()


def test_mutation_and_crossover() -> None:
    rng = np.random.default_rng(2)
    g = MacroGenome.random(rng, 3, 4)
    assert g.mutate(rng, 0.0) == g
    assert g.mutate(rng, 1.0).hamming(g) == len(g.bits)
    other = MacroGenome.random(rng, 3, 4)
    child = g.crossover(other, rng)
    for a, b, c in zip(g.bits, other.bits, child.bits, strict=True):
        assert c in (a, b)
        if a == b:
            assert c == a
    with pytest.raises(ValueError, match="equal shapes"):
        g.crossover(MacroGenome.random(rng, 2, 4), rng)
    with pytest.raises(ValueError, match="probability"):
        g.mutate(rng, 1.5)


def test_random_is_deterministic_by_seed() -> None:
    a = MacroGenome.random(np.random.default_rng(7), 3, 6)
    b = MacroGenome.random(np.random.default_rng(7), 3, 6)
    assert a == b


@pytest.mark.parametrize(("dims", "shape"), [(1, (1, 2806)), (2, (1, 8, 8))])
def test_macro_net_forward_shapes(dims: int, shape: tuple[int, ...]) -> None:
    g = MacroGenome.random(np.random.default_rng(4), 3, 4)
    model = MacroNet(g, in_channels=1, num_classes=3, channels=4, dims=dims)
    assert model(torch.randn(2, *shape)).shape == (2, 3)


def test_flops_positive_and_grow_with_channels() -> None:
    g = MacroGenome.random(np.random.default_rng(6), 2, 4)
    flops = [count_flops(MacroNet(g, 1, 10, channels=c), (1, 8, 8)) for c in (4, 8, 16)]
    assert flops[0] > 0
    assert flops[0] < flops[1] < flops[2]
    params = [count_parameters(MacroNet(g, 1, 10, channels=c)) for c in (4, 8)]
    assert 0 < params[0] < params[1]


def test_flops_match_hand_count() -> None:
    # One phase, node1 -> node2: channel conv 1->4, two 4->4 k3 convs on 8x8, Linear(4->10).
    model = MacroNet(MacroGenome(1, 2, (1, 0)), 1, 10, channels=4)
    expected = 2 * (4 * 1 * 9) * 64 + 2 * 2 * (4 * 4 * 9) * 64 + 2 * 4 * 10
    assert count_flops(model, (1, 8, 8)) == expected


def test_inactive_phases_are_removed_from_the_network() -> None:
    full = (1,) * 6 + (0,)
    model = MacroNet(MacroGenome(3, 4, full + (0,) * 7 + full), 1, 10, channels=4)
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 1
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # second active phase takes channels[1] (NSGA-Net truncates the channel list)
    assert model.head.in_features == 8
    bare = MacroNet(MacroGenome(2, 4, (0,) * 14), 1, 10, channels=4)
    assert bare(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert count_flops(bare, (1, 8, 8)) == 2 * 1 * 10


def test_build_model_dispatches_and_rejects_bad_dims() -> None:
    rng = np.random.default_rng(8)
    assert isinstance(build_model(MacroGenome.random(rng, 2, 3), 1, 10), MacroNet)
    with pytest.raises(ValueError, match="dims"):
        MacroNet(MacroGenome.random(rng, 2, 3), 1, 10, dims=3)  # type: ignore[arg-type]


def test_digits_splits_are_deterministic_and_standardised() -> None:
    a, b = load_digits_splits(seed=0), load_digits_splits(seed=0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.input_shape == (1, 8, 8)
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert abs(float(a.x_train.mean())) < 1e-4 and abs(float(a.x_train.std()) - 1) < 1e-3
    assert set(a.y_val.tolist()) == set(range(10))
    c = load_digits_splits(seed=1)
    assert not torch.equal(a.y_train, c.y_train)
