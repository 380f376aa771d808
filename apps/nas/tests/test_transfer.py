"""Weight transfer: shape sequences, LP/LCS matching and in-place initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from streamal_nas.genome import MacroGenome
from streamal_nas.models import MacroNet
from streamal_nas.transfer import (
    longest_common_subsequence,
    longest_prefix,
    match_shapes,
    shape_sequence,
    transfer_weights,
)


def test_lp_and_lcs_on_hand_made_sequences() -> None:
    provider = ["A", "B", "C", "D"]
    receiver = ["A", "X", "B", "C", "D"]  # one inserted layer after the first
    assert longest_prefix(provider, receiver) == [(0, 0)]
    assert longest_common_subsequence(provider, receiver) == [(0, 0), (1, 2), (2, 3), (3, 4)]

    assert longest_prefix("ABCBDAB", "ABCBDAB") == [(i, i) for i in range(7)]
    lcs = longest_common_subsequence("ABCBDAB", "BDCABA")
    assert len(lcs) == 4  # textbook CLRS example
    assert all("ABCBDAB"[i] == "BDCABA"[j] for i, j in lcs)
    assert [i for i, _ in lcs] == sorted(i for i, _ in lcs)
    assert longest_prefix("XAB", "AB") == []
    assert longest_common_subsequence("", "AB") == []


def test_lcs_always_covers_lp() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = list(rng.integers(0, 3, size=rng.integers(0, 8)))
        b = list(rng.integers(0, 3, size=rng.integers(0, 8)))
        assert len(longest_common_subsequence(a, b)) >= len(longest_prefix(a, b))


def test_shape_sequence_leaves_bn_buffers_with_their_module() -> None:
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.BatchNorm1d(4, affine=False))
    names = [n for n, _ in shape_sequence(model)]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "2.running_mean", "2.running_var"]
    assert shape_sequence(model.state_dict())[0] == ("0.weight", (4, 1, 3))


def test_role_matching_keeps_bias_off_batchnorm_weights() -> None:
    provider = [("c.weight", (4, 1, 3)), ("c.bias", (4,)), ("bn.weight", (4,)), ("bn.bias", (4,))]
    receiver = [("c.weight", (4, 1, 3)), ("bn.weight", (4,)), ("bn.bias", (4,))]
    assert match_shapes(provider, receiver, "lcs") == [
        ("c.weight", "c.weight"),
        ("bn.weight", "bn.weight"),
        ("bn.bias", "bn.bias"),
    ]
    shape_only = match_shapes(provider, receiver, "lcs", match_role=False)
    assert len(shape_only) == 3 and ("bn.weight", "c.bias") in shape_only
    assert match_shapes(provider, receiver, "lp") == [("c.weight", "c.weight")]
    with pytest.raises(ValueError, match="method"):
        match_shapes(provider, receiver, "bfs")  # type: ignore[arg-type]


def _conv_stack(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 1
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
    return nn.Sequential(*layers)


def _randomise(model: nn.Module) -> None:
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) + (3.0 if "running_var" in name else 0.0))
            else:
                tensor.fill_(17)


def test_transfer_copies_matched_tensors_and_leaves_the_rest() -> None:
    torch.manual_seed(0)
    provider = _conv_stack([4, 8, 8])
    receiver = _conv_stack([4, 6, 8, 8])  # a different layer inserted after the first
    _randomise(provider)
    before = {k: v.clone() for k, v in receiver.state_dict().items()}

    record = transfer_weights(provider.state_dict(), receiver, method="lcs")
    after = receiver.state_dict()
    src = provider.state_dict()
    moved = record.moved
    # first conv+BN and the last conv (8->8) + BN match; 6-wide layers and 6->8 conv do not
    assert ("0.weight", "0.weight") in record.pairs
    assert ("9.weight", "6.weight") in record.pairs
    assert ("1.running_mean", "1.running_mean") in record.buffers
    assert ("10.num_batches_tracked", "7.num_batches_tracked") in record.buffers
    assert "3.weight" not in moved and "6.weight" not in moved
    for name, tensor in after.items():
        if name in moved:
            assert torch.equal(tensor, src[moved[name]]), name
        else:
            assert torch.equal(tensor, before[name]), name
    assert int(after["1.num_batches_tracked"]) == 17
    assert 0 < record.fraction < 1


def test_lp_moves_a_prefix_subset_of_lcs() -> None:
    provider, receiver = _conv_stack([4, 8, 8]), _conv_stack([4, 6, 8, 8])
    lp = transfer_weights(provider, _conv_stack([4, 6, 8, 8]), method="lp")
    lcs = transfer_weights(provider, receiver, method="lcs")
    assert set(lp.pairs) < set(lcs.pairs)
    assert [r for r, _ in lp.pairs] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_batchnorm_buffers_stay_when_only_part_of_module_matches() -> None:
    provider = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(5))
    receiver = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4))
    _randomise(provider)
    record = transfer_weights(provider, receiver)
    assert [r for r, _ in record.pairs] == ["0.weight", "0.bias"]
    assert record.buffers == ()
    assert torch.equal(receiver.state_dict()["1.running_var"], torch.ones(4))


def test_identical_macro_models_transfer_everything() -> None:
    g = MacroGenome.random(np.random.default_rng(2), 3, 4)
    a, b = MacroNet(g, 1, 10, channels=4), MacroNet(g, 1, 10, channels=4)
    record = transfer_weights(a.state_dict(), b)
    assert record.fraction == 1.0
    for name, tensor in b.state_dict().items():
        assert torch.equal(tensor, a.state_dict()[name])
