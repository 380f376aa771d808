"""The ``ensemble`` model: conformance, epistemic uncertainty from the members' disagreement,
members' mean metrics, option errors, and a campaign that draws its AL batch by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamal import plugins
from streamal.config import parse_config
from streamal.errors import ConfigError
from streamal.train.ensemble import Ensemble
from streamal.train.generic import GenericMlp
from streamal.train.model_checks import check_model
from tests.helpers import peaks_space
from tests.test_models import ONE_CLASS, THREE_CLASSES

SMALL = {"hidden": [16]}


@pytest.mark.parametrize(
    ("space", "input_shape", "options"),
    [
        (ONE_CLASS, (32,), {"members": 2, "base_options": SMALL}),
        (THREE_CLASSES, (48,), {"members": 3, "base_options": SMALL, "uncertainty": "total"}),
        (peaks_space(), (8, 16), {"members": 2, "base_options": {"conv_channels": [4]}}),
    ],
    ids=["one-class", "three-classes-total", "2d-conv"],
)
def test_check_model_passes_for_the_ensemble(space, input_shape, options) -> None:
    check_model(Ensemble, space, input_shape, options=options)


def test_it_is_installed_as_a_model() -> None:
    assert plugins.load("models", "ensemble") is Ensemble


def _plugin(**options) -> Ensemble:
    return Ensemble(THREE_CLASSES, (48,), **{"members": 3, "base_options": SMALL, **options})


def _output(net, n: int = 64, seed: int = 0) -> torch.Tensor:
    x = torch.from_numpy(np.random.default_rng(seed).random((n, 48), dtype=np.float32))
    net.eval()
    with torch.no_grad():
        return net(x)


def test_identical_members_have_no_epistemic_uncertainty_and_different_ones_do() -> None:
    plugin = _plugin()
    torch.manual_seed(0)
    net = plugin.build()
    out = plugin.uncertainty(_output(net))  # three initialisations: they disagree
    assert (out["variance"] > 0).all() and (out["entropy"] > 0).all()
    for m in net.members[1:]:  # the same weights in every member: nothing to disagree on
        m.load_state_dict(net.members[0].state_dict())
    same = plugin.uncertainty(_output(net))
    np.testing.assert_allclose(same["variance"], 0.0, atol=1e-12)
    np.testing.assert_allclose(same["entropy"], 0.0, atol=1e-6)
    # the total keeps what one member predicts: generic-mlp's own entropy and mean σ²
    total = _plugin(uncertainty="total")
    one = GenericMlp(THREE_CLASSES, (48,), **SMALL)
    member = one.uncertainty(_output(net.members[0]))
    got = total.uncertainty(_output(net))
    np.testing.assert_allclose(got["entropy"], member["entropy"], rtol=1e-5)
    assert (got["variance"] > 0).all()


def test_epistemic_variance_is_the_members_spread_of_free_parameters_only() -> None:
    plugin = _plugin()
    torch.manual_seed(1)
    net = plugin.build()
    output = _output(net, n=16)
    probs, params, _ = plugin._member_predictions(output)
    # by hand: per class, the mean spread over its free targets, weighted by p̄
    mask = plugin._mask
    spread = params.var(axis=0)
    per_class = (spread @ mask.T) / mask.sum(axis=1)
    expected = (probs.mean(axis=0) * per_class).sum(axis=1)
    np.testing.assert_allclose(plugin.uncertainty(output)["variance"], expected, rtol=1e-9)


def test_metrics_are_the_members_mean_and_predict_is_their_mixture() -> None:
    plugin = _plugin()
    torch.manual_seed(2)
    net = plugin.build()
    output = _output(net, n=30)
    rng = np.random.default_rng(3)
    classes = torch.from_numpy(rng.integers(0, 3, 30))
    targets = torch.from_numpy(rng.random((30, 3), dtype=np.float32))
    per_member = [plugin.base.metrics(output[:, m], classes, targets) for m in range(3)]
    got = plugin.metrics(output, classes, targets)
    for key in per_member[0]:
        assert got[key] == pytest.approx(np.mean([p[key] for p in per_member]))
    mix = plugin.predict(output)
    members = [plugin.base.predict(output[:, m]) for m in range(3)]
    np.testing.assert_allclose(
        mix["class_probabilities"], np.mean([p["class_probabilities"] for p in members], axis=0)
    )
    params = np.stack([p["params"] for p in members])
    sigma2 = np.stack([p["params_sigma"] ** 2 for p in members])
    np.testing.assert_allclose(mix["params"], params.mean(axis=0))
    np.testing.assert_allclose(mix["params_sigma"] ** 2, sigma2.mean(axis=0) + params.var(axis=0))


def test_every_member_learns_from_its_own_loss() -> None:
    plugin = _plugin()
    torch.manual_seed(4)
    net = plugin.build()
    net.train()
    x = torch.rand(12, 48)
    classes = torch.arange(12) % 3
    targets = torch.rand(12, 3)
    loss, parts = plugin.loss(net(x), classes, targets)
    loss.backward()
    for m in net.members:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert set(parts) == {"nll", "mse", "class_loss"}


def test_a_base_without_predict_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=r"base 'tests.helpers:TinyModel' does not implement"):
        Ensemble(THREE_CLASSES, (48,), base="tests.helpers:TinyModel")


def _config(options: dict) -> dict:
    return {
        "simulator": {"name": "tests.helpers:PeaksSimulator"},
        "model": {"name": "ensemble", "options": options},
        "policy": {"name": "uncertainty-mixture", "options": {"study_size": 4}},
        "workflow": {"name": "serial", "phases": [{"samples": 4, "epochs": 1}]},
    }


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"base": "no-such-model"}, "model.options.base: unknown model"),
        ({"base_options": {"hiden": [8]}}, "model.options.base_options: hiden"),
        ({"members": 1}, "model.options.members"),
        ({"base": "ensemble"}, "model.options.base: an ensemble of ensembles"),
        ({"uncertainty": "aleatoric"}, "model.options.uncertainty"),
    ],
    ids=["unknown-base", "bad-base-option", "one-member", "nested", "bad-kind"],
)
def test_bad_options_are_one_error_naming_the_key(options, where) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_config(options), check_node=False)
    lines = str(err.value).splitlines()  # "<config>: invalid configuration", then the key
    assert len(lines) == 2 and where in lines[1], lines


def test_a_trained_ensemble_tells_the_policy_where_its_members_disagree(tmp_path) -> None:
    """The trainer trains every member (one checkpoint), the AL task reads the ensemble's
    uncertainty on the study rows, and Eqn (4) draws a batch from it."""
    from streamal.policy.uncertainty import UncertaintyMixturePolicy
    from streamal.policy.uniform import UniformPolicy
    from streamal.train.checkpoint import load_checkpoint
    from streamal.train.predict import predict_uncertainty
    from tests.helpers import PeaksSimulator, train_splits, write_splits

    sim = PeaksSimulator()
    options = {"members": 3, "base_options": {"hidden": [16]}}
    uniform = UniformPolicy(sim.space)
    splits = (("train", 40), ("val", 10), ("test", 10), ("study", 20))
    draws = {s: uniform.sample(n, np.random.default_rng(i)) for i, (s, n) in enumerate(splits)}
    rows = write_splits(tmp_path / "store.h5", sim, draws, key="p0/{split}/0")
    train_splits(
        tmp_path / "store.h5", sim, rows, tmp_path / "T0", "ensemble", options, 3, batch_size=16
    )
    state = load_checkpoint(str(tmp_path / "T0" / "best.pt"))["model"]
    assert {k.split(".")[1] for k in state if k.startswith("members.")} == {"0", "1", "2"}
    got = predict_uncertainty(
        str(tmp_path / "store.h5"),
        rows["study"],
        "ensemble",
        options,
        sim.space.to_dict(),
        sim.output_shape,
        str(tmp_path / "T0" / "best.pt"),
    )
    assert set(got) == {"variance", "entropy"}
    n = len(rows["study"])
    assert all(v.shape == (n,) and (v >= 0).all() and v.max() > 0 for v in got.values())
    policy = UncertaintyMixturePolicy(sim.space, study_size=n // len(sim.space.classes))
    policy.fit(*draws["study"], got, model="ensemble")
    classes, params = policy.sample_total(6, np.random.default_rng(0))
    sim.space.check(classes, params)  # inside the classes' boxes
