"""The model plugin contract: check_model, generic-mlp, units from the parameter space."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamal import plugins
from streamal.data.space import ClassSpace, ParameterSpace, unit_suffix
from streamal.errors import ConfigError, ParameterError
from streamal.train.generic import INITIAL_VARIANCE, GenericMlp
from streamal.train.model import ModelPlugin
from streamal.train.model_checks import check_model
from streamal.train.targets import free_mask, metric_name, regression_scale
from tests.helpers import TinyModel, _peaks_simulator_class, peaks_space

ONE_CLASS = ParameterSpace(
    ("x", "y"), (ClassSpace("only", {"x": (0.0, 2.0), "y": (-1.0, 1.0)}),), units={"x": "m/s"}
)

# Three classes with different free parameters, tied ones (to a parameter and to constants)
# and a separation constraint, like crystal systems.
THREE_CLASSES = ParameterSpace(
    ("a", "c", "alpha"),
    (
        ClassSpace("cubic", {"a": (2.5, 5.5)}, {"c": "a", "alpha": 90.0}),
        ClassSpace(
            "tetragonal",
            {"a": (3.5, 4.5), "c": (3.5, 4.5)},
            {"alpha": 90.0},
            min_separation={("a", "c"): 0.001},
        ),
        ClassSpace("trigonal", {"a": (3.5, 4.5), "alpha": (30.0, 120.0)}, {"c": "a"}),
    ),
    units={"a": "Å", "c": "Å", "alpha": "°"},
)


# --- check_model passes for the built-in models ------------------------------------------


@pytest.mark.parametrize(
    ("space", "input_shape", "options"),
    [
        (ONE_CLASS, (32,), {}),
        (THREE_CLASSES, (48,), {"dropout": 0.1}),
        (peaks_space(), (8, 16), {}),
        (peaks_space(), (8, 16), {"conv_channels": [4], "standardize": False}),
        (THREE_CLASSES, (256,), {"conv_channels": [4, 8], "hidden": [32]}),
    ],
    ids=["one-class-1d", "three-classes-tied", "2d-output", "2d-conv", "1d-conv"],
)
def test_check_model_passes_for_generic_mlp(space, input_shape, options) -> None:
    check_model(GenericMlp, space, input_shape, options=options)


def test_generic_mlp_is_installed_and_declares_its_uncertainties() -> None:
    assert plugins.load("models", "generic-mlp") is GenericMlp
    assert GenericMlp.uncertainties == frozenset({"variance", "entropy"})
    assert ModelPlugin.uncertainties == frozenset()


def test_check_model_passes_for_the_trainer_test_model() -> None:
    check_model(TinyModel, peaks_space(), (64,))


def test_the_example_model_passes_check_model() -> None:
    """``examples/models/linear_model.py``, which the contract and the README point to."""
    root = Path(__file__).resolve().parents[1] / "examples"
    sys.path[:0] = [str(root / "models"), str(root / "simulators")]
    try:
        from linear_model import LinearModel
        from peak_simulator import PeakSimulator
    finally:
        del sys.path[:2]
    sim = PeakSimulator(64)
    check_model(LinearModel, sim.space, sim.output_shape)
    assert "mae_width_m" in _metric_names(LinearModel, sim)


def _metric_names(model_cls, sim) -> set[str]:
    import torch

    plugin = model_cls(sim.space, sim.output_shape)
    net = plugin.build()
    classes = np.array([0, 1])
    params = np.array([[0.5, 0.02], [0.5, 0.07]])
    x = torch.from_numpy(plugin.encode_inputs(sim.simulate(classes, params)))
    y = torch.from_numpy(plugin.encode_targets(classes, params))
    with torch.no_grad():
        return set(plugin.metrics(net(x), torch.from_numpy(classes), y))


def test_model_modules_do_not_import_torch() -> None:
    code = (
        "import sys, streamal.train.model, streamal.train.generic, streamal.train.targets\n"
        "assert 'torch' not in sys.modules, 'torch imported at import time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- check_model fails, naming the property ------------------------------------------------


class _UndeclaredKey(GenericMlp):
    name = "undeclared-key"

    def uncertainty(self, output):
        return {**super().uncertainty(output), "mutual_information": np.zeros(len(output))}


class _NanVariance(GenericMlp):
    name = "nan-variance"

    def uncertainty(self, output):
        out = super().uncertainty(output)
        out["variance"][0] = np.nan
        return out


class _NegativeEntropy(GenericMlp):
    name = "negative-entropy"

    def uncertainty(self, output):
        out = super().uncertainty(output)
        out["entropy"] = out["entropy"] - 1.0
        return out


class _EntropyInBits(GenericMlp):
    name = "entropy-in-bits"

    def uncertainty(self, output):
        out = super().uncertainty(output)
        out["entropy"] = np.full(len(output), 3.0)  # > log(2) nats
        return out


class _DeclaresNone(GenericMlp):
    name = "declares-none"
    uncertainties = frozenset()


class _DeclaresButRaises(GenericMlp):
    name = "declares-but-raises"

    def uncertainty(self, output):
        return ModelPlugin.uncertainty(self, output)


class _MissingKey(GenericMlp):
    name = "missing-key"

    def uncertainty(self, output):
        return {"variance": super().uncertainty(output)["variance"]}


class _WrongShape(GenericMlp):
    name = "wrong-shape"

    def uncertainty(self, output):
        return {k: v[:, None] for k, v in super().uncertainty(output).items()}


class _NanLoss(GenericMlp):
    name = "nan-loss"

    def loss(self, output, classes, targets):
        total, parts = super().loss(output, classes, targets)
        return total * float("nan"), parts


class _DetachedLoss(GenericMlp):
    name = "detached-loss"

    def loss(self, output, classes, targets):
        total, parts = super().loss(output, classes, targets)
        return total.detach(), parts


class _PartWithGradient(GenericMlp):
    name = "part-with-gradient"

    def loss(self, output, classes, targets):
        total, parts = super().loss(output, classes, targets)
        return total, {**parts, "total": total}


class _VectorPart(GenericMlp):
    name = "vector-part"

    def loss(self, output, classes, targets):
        total, parts = super().loss(output, classes, targets)
        return total, {**parts, "per_sample": output.detach().sum(dim=1)}


class _TensorMetric(GenericMlp):
    name = "tensor-metric"

    def metrics(self, output, classes, targets):
        return {**super().metrics(output, classes, targets), "mse": output.sum()}


class _Float64Inputs(GenericMlp):
    name = "float64-inputs"

    def encode_inputs(self, inputs):
        return super().encode_inputs(inputs).astype(np.float64)


class _BatchStatistics(GenericMlp):
    name = "batch-statistics"

    def encode_inputs(self, inputs):
        x = np.asarray(inputs, dtype=np.float32)
        return (x - x.mean(axis=0)).astype(np.float32)


class _UnusedParameter(GenericMlp):
    name = "unused-parameter"

    def build(self):
        from torch import nn

        net = super().build()
        net.spare = nn.Linear(2, 2)
        return net


class _RandomRebuild(GenericMlp):
    name = "random-rebuild"

    def build(self):
        import torch

        net = super().build()
        net.register_buffer("offset", torch.randn(()), persistent=False)
        forward = net.forward
        net.forward = lambda x: forward(x) + net.offset
        return net


@pytest.mark.parametrize(
    ("plugin_cls", "message"),
    [
        (_UndeclaredKey, r"returned keys \['entropy', 'mutual_information', 'variance'\]"),
        (_NanVariance, r"uncertainty\(\)\['variance'\] has NaN"),
        (_NegativeEntropy, r"uncertainty\(\)\['entropy'\] has negative values"),
        (_EntropyInBits, r"exceeds log\(2\)"),
        (_DeclaresNone, r"returned keys \['entropy', 'variance'\] but the class declares "),
        (_DeclaresButRaises, r"declares uncertainties \['entropy', 'variance'\] but .* raises"),
        (_MissingKey, r"returned keys \['variance'\]"),
        (_WrongShape, r"has shape \(8, 1\), not \(8,\)"),
        (_NanLoss, r"loss is nan, not finite"),
        (_DetachedLoss, r"loss has no gradient"),
        (_PartWithGradient, r"loss parts must be detached"),
        (_VectorPart, r"loss parts\['per_sample'\] must be a Python float, got Tensor"),
        (_TensorMetric, r"metrics\['mse'\] must be a Python float, got Tensor"),
        (_Float64Inputs, r"encode_inputs returned dtype float64"),
        (_BatchStatistics, r"encode_inputs of a row depends on the other rows"),
        (_UnusedParameter, r"parameter 'spare.weight' gets no gradient"),
        (_RandomRebuild, r"built again .* gives a different output"),
    ],
    ids=lambda v: v.name if isinstance(v, type) else "",
)
def test_check_model_fails_naming_the_property(plugin_cls, message) -> None:
    with pytest.raises(AssertionError, match=message):
        check_model(plugin_cls, peaks_space(), (16,))


def test_a_model_declaring_no_uncertainty_and_raising_passes() -> None:
    class _NoUncertainty(_DeclaresButRaises):
        name = "no-uncertainty"
        uncertainties = frozenset()

    check_model(_NoUncertainty, peaks_space(), (16,))


# --- generic-mlp: targets, options, uncertainty --------------------------------------------


def test_regression_targets_cover_every_free_parameter_scaled_to_unit_range() -> None:
    names, low, high = regression_scale(THREE_CLASSES)
    assert names == ["a", "c", "alpha"]
    assert list(low) == [2.5, 2.5, 30.0] and list(high) == [5.5, 5.5, 120.0]
    assert free_mask(THREE_CLASSES, names).tolist() == [
        [True, False, False],
        [True, True, False],
        [True, False, True],
    ]
    model = GenericMlp(THREE_CLASSES, (16,))
    params = np.array([[2.5, 2.5, 90.0], [4.5, 3.5, 90.0], [4.0, 4.0, 120.0]])
    y = model.encode_targets(np.array([0, 1, 2]), params)
    assert y.dtype == np.float32 and y.shape == (3, 3)
    assert np.allclose(y, [[0, 0, 2 / 3], [2 / 3, 1 / 3, 2 / 3], [0.5, 0.5, 1]])


def test_generic_mlp_uncertainty_one_class_has_zero_entropy() -> None:
    import torch

    model = GenericMlp(ONE_CLASS, (8,))
    net = model.build().eval()
    with torch.no_grad():
        out = model.uncertainty(net(torch.from_numpy(model.encode_inputs(np.ones((5, 8))))))
    assert set(out) == GenericMlp.uncertainties
    assert np.all(out["entropy"] == 0) and np.all(out["variance"] > 0)
    assert np.allclose(out["variance"], 1 / 12, rtol=0.5)  # starts near a uniform prior's


def test_generic_mlp_standardises_each_sample() -> None:
    x = np.stack([np.arange(6.0), 10 + 3 * np.arange(6.0)]).astype(np.float32)
    enc = GenericMlp(ONE_CLASS, (6,)).encode_inputs(x)
    assert np.allclose(enc[0], enc[1], atol=1e-6) and np.allclose(enc.mean(axis=1), 0, atol=1e-6)
    flat = GenericMlp(ONE_CLASS, (2, 3), standardize=False).encode_inputs(x)
    assert flat.shape == (2, 2, 3) and np.array_equal(flat.reshape(2, 6), x)


@pytest.mark.parametrize(
    ("input_shape", "options", "message"),
    [
        (
            (2, 3, 4),
            {"conv_channels": [4]},
            r"conv_channels needs a 1-D .* input_shape \(2, 3, 4\)",
        ),
        ((8,), {"conv_channels": [4, 4, 4, 4]}, r"use at most 3 conv_channels"),
    ],
)
def test_generic_mlp_options_that_cannot_fit_the_input_name_it(
    input_shape, options, message
) -> None:
    with pytest.raises(ConfigError, match=message):
        GenericMlp(ONE_CLASS, input_shape, **options)


def test_generic_mlp_refuses_unknown_options() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="hiden"):
        GenericMlp(ONE_CLASS, (8,), hiden=[4])


def test_generic_mlp_learns_the_peaks_problem() -> None:
    """600 Adam steps on one Gaussian peak: the centre MAE ends far below the
    prior's (predicting the mean), the width's too, the class is found and the predicted
    variance shrinks with the errors."""
    import torch

    torch.manual_seed(0)
    sim = _peaks_simulator_class()()
    rng = np.random.default_rng(0)
    space = sim.space

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        classes = rng.integers(0, 2, n)
        params = np.concatenate(
            [
                space.complete(int(k), rng.uniform(space.classes[k].low, space.classes[k].high))
                for k in classes
            ]
        )
        return classes, params, sim.simulate(classes, params)

    model = GenericMlp(space, sim.output_shape, hidden=[64, 64])
    c_train, p_train, x_train = draw(512)
    c_test, p_test, x_test = draw(256)
    x, c, y = (
        torch.from_numpy(model.encode_inputs(x_train)),
        torch.from_numpy(c_train),
        torch.from_numpy(model.encode_targets(c_train, p_train)),
    )
    net = model.build()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    # one thread, as a one-core trainer rank: a second one only contends on a busy machine
    # (steps of this size took 10x longer with two)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(600):
            idx = torch.from_numpy(np.random.default_rng(step).integers(0, len(x), 64))
            loss, _ = model.loss(net(x[idx]), c[idx], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    y_test = model.encode_targets(c_test, p_test)
    with torch.no_grad():
        out = net(torch.from_numpy(model.encode_inputs(x_test)))
    metrics = model.metrics(out, torch.from_numpy(c_test), torch.from_numpy(y_test))
    prior = np.abs(p_test - p_train.mean(axis=0)).mean(axis=0)  # centre, width (all samples)
    wide = c_test == 1
    prior_width = np.abs(p_test[wide, 1] - p_train[c_train == 1, 1].mean()).mean()
    assert metrics["mae_centre"] < 0.2 * prior[0], (metrics, prior)
    assert metrics["mae_width"] < 0.5 * prior_width, (metrics, prior_width)
    assert metrics["accuracy"] > 0.95, metrics
    # the variance head learned too: from a uniform prior's σ² down to the errors' scale
    variance = model.uncertainty(out)["variance"]
    assert np.median(variance) < 0.1 * INITIAL_VARIANCE, np.median(variance)
    assert set(metrics) == {"class_loss", "accuracy", "nll", "mse", "mae_centre", "mae_width"}


# --- units from the parameter space ---------------------------------------------------------


def test_metric_names_carry_units_from_the_space() -> None:
    assert [metric_name(THREE_CLASSES, "mae", p) for p in ("a", "c", "alpha")] == [
        "mae_a_A",
        "mae_c_A",
        "mae_alpha_deg",
    ]
    assert metric_name(ONE_CLASS, "mae", "x") == "mae_x_m_per_s"
    assert metric_name(ONE_CLASS, "mae", "y") == "mae_y"
    assert metric_name(peaks_space(), "rmse", "centre") == "rmse_centre"
    assert [unit_suffix(u) for u in ("Å", "°", "µm", "1/Å", "%", "", " eV ")] == [
        "A",
        "deg",
        "um",
        "1_per_A",
        "pct",
        "",
        "eV",
    ]


def test_generic_mlp_metrics_are_named_with_units() -> None:
    import torch

    model = GenericMlp(THREE_CLASSES, (16,))
    classes = np.array([0, 1, 2, 1])
    params = np.array([[3.0, 3.0, 90.0], [4.0, 3.6, 90.0], [4.0, 4.0, 60.0], [3.9, 4.1, 90.0]])
    y = torch.from_numpy(model.encode_targets(classes, params))
    out = model.build().eval()(torch.from_numpy(model.encode_inputs(np.ones((4, 16)))))
    metrics = model.metrics(out.detach(), torch.from_numpy(classes), y)
    assert {"mae_a_A", "mae_c_A", "mae_alpha_deg", "accuracy", "class_loss", "mse"} <= set(metrics)
    # a parameter no sample of the split has free is left out, not reported as NaN
    only_cubic = model.metrics(out.detach()[:1], torch.from_numpy(classes[:1]), y[:1])
    assert "mae_a_A" in only_cubic and "mae_c_A" not in only_cubic


def test_space_units_round_trip_and_old_dicts_still_load() -> None:
    data = THREE_CLASSES.to_dict()
    assert data["units"] == {"a": "Å", "c": "Å", "alpha": "°"}
    again = ParameterSpace.from_dict(data)
    assert again == THREE_CLASSES and again.unit("alpha") == "°"
    del data["units"]
    old = ParameterSpace.from_dict(data)
    assert old.units == {} and old.unit("a") == ""
    assert THREE_CLASSES.subset(["trigonal"]).units == THREE_CLASSES.units
    with pytest.raises(ParameterError, match=r"units name unknown parameters \['b'\]"):
        ParameterSpace(THREE_CLASSES.param_names, THREE_CLASSES.classes, {"b": "Å"})
    with pytest.raises(ParameterError, match="unknown parameter 'b'"):
        THREE_CLASSES.unit("b")
