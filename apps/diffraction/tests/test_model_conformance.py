"""diffraction-cnn (and generic-mlp on diffraction data) pass the model conformance check."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest

from streamal.train.generic import GenericMlp
from streamal.train.model_checks import check_model
from streamal_diffraction import ALL_CLASSES, TofDiffractionSimulator, parameter_space
from streamal_diffraction.model import DiffractionCnn


@pytest.fixture(scope="module")
def profiles() -> np.ndarray:
    """Six real profiles of the default space (two per class), for the models' encoders."""
    sim = TofDiffractionSimulator()
    classes = np.repeat(np.arange(3), 2)
    rng = np.random.default_rng(1)
    params = np.concatenate(
        [
            sim.space.complete(
                int(k), rng.uniform(sim.space.classes[k].low, sim.space.classes[k].high)
            )
            for k in classes
        ]
    )
    a = params[classes == 1, 0]
    params[classes == 1, 2] = np.where(a < 4.0, a + 0.1, a - 0.1)  # tetragonal: a != c
    return sim.simulate(classes, params)


def test_entry_point_and_declared_uncertainties() -> None:
    (ep,) = [e for e in entry_points(group="streamal.models") if e.name == "diffraction-cnn"]
    assert ep.load() is DiffractionCnn
    assert DiffractionCnn.uncertainties == frozenset({"variance", "entropy"})


def test_check_model_paper_classes(profiles: np.ndarray) -> None:
    check_model(DiffractionCnn, parameter_space("e1"), profiles.shape[1:], inputs=profiles)


def test_an_ensemble_of_diffraction_cnn_passes_the_check(profiles: np.ndarray) -> None:
    from streamal.train.ensemble import Ensemble

    options = {"base": "diffraction-cnn", "members": 2}
    check_model(
        Ensemble, parameter_space("e1"), profiles.shape[1:], options=options, inputs=profiles
    )


def test_check_model_all_seven_classes() -> None:
    check_model(DiffractionCnn, parameter_space("e2", classes=ALL_CLASSES), (512,))


def test_generic_mlp_on_diffraction_profiles(profiles: np.ndarray) -> None:
    check_model(
        GenericMlp,
        parameter_space("e2"),
        profiles.shape[1:],
        options={"conv_channels": [4, 8, 8], "hidden": [32]},
        inputs=profiles,
    )


def test_metric_names_keep_the_units_of_the_cell_parameters() -> None:
    import torch

    space = parameter_space("e1", classes=ALL_CLASSES)
    assert space.units == {"a": "Å", "b": "Å", "c": "Å", "alpha": "°", "beta": "°", "gamma": "°"}
    model = DiffractionCnn(space, (512,))
    n = len(ALL_CLASSES)
    classes = torch.arange(n)
    targets = torch.from_numpy(
        model.encode_targets(np.arange(n), np.tile([4.0, 4, 4, 90, 90, 90], (n, 1)))
    )
    out = model.build().eval()(torch.rand(n, 512)).detach()
    names = set(model.metrics(out, classes, targets))
    assert {f"mae_{p}_A" for p in "abc"} | {
        f"mae_{p}_deg" for p in ("alpha", "beta", "gamma")
    } <= names


def test_a_smooth_background_does_not_change_the_encoded_pattern(profiles: np.ndarray) -> None:
    """A measured pattern's background (a level with a slow cubic wiggle, 2–20 % of the
    strongest peak) is removed before scaling: the network sees what it was trained on."""
    space = parameter_space("e1")
    cnn = DiffractionCnn(space, profiles.shape[1:])
    plain = DiffractionCnn(space, profiles.shape[1:], background="none")
    x = np.linspace(-1.0, 1.0, profiles.shape[-1])
    peaks = profiles / profiles.max(axis=-1, keepdims=True)
    rng = np.random.default_rng(2)
    level = rng.uniform(0.02, 0.2, (len(peaks), 1))
    background = level * np.polynomial.chebyshev.chebval(x, [1.0, 0.3, -0.2, 0.25])
    clean, measured = cnn.encode_inputs(peaks), cnn.encode_inputs(peaks + background)
    assert np.abs(measured - clean).mean() < 2e-3
    assert np.abs(measured - clean).max() < 0.05
    # Without the removal the background shifts the pattern the network sees.
    assert (
        np.abs(plain.encode_inputs(peaks + background) - plain.encode_inputs(peaks)).mean() > 2e-2
    )
    # Noise-free simulated patterns (no background) are left as min-max scaling leaves them.
    assert np.abs(clean - plain.encode_inputs(peaks)).mean() < 1e-3
    assert "SNIP" in cnn.input_encoding and "SNIP" not in plain.input_encoding
