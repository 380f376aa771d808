"""The reference multitask CNN: symmetry class logits + lattice parameters with log σ².

Architecture (ALBAND, widths/depth configurable)::

    [Conv1d(k) → LeakyReLU(0.1) → MaxPool(2)] × depth  (channels 16, 32, ...; first stride 1,
    later stride 2, kernel 3 then 4) → Linear(→hidden) → LeakyReLU
        → class head: n_classes logits
        → regression head: T values + 1 log σ² (``variance: shared``, the default)
                           or T values + T log σ² (``variance: per_parameter``)

Loss = cross-entropy + mean(‖y − ŷ‖² / σ² + log σ²) (the paper's heteroscedastic term, Eqn 6),
with one σ² shared by the targets; with ``variance: per_parameter`` the same term per target,
mean over the batch of ``Σ_j ((y_j − ŷ_j)² / σ_j² + log σ_j²)``.

Inputs: each pattern less its smooth background (SNIP through pybaselines, option
``background``; a measured pattern's background then does not move the pattern the network
sees, while a simulated one, which has none, is left as it is), then min-max scaled to [0, 1].

Targets: every parameter that is free in some class in play, scaled by the union of its
range over those classes, ``y = (x − low) / (high − low)``
(:func:`streamal.train.targets.regression_scale`). For the paper's three classes with
E2-like ranges this is the reference's ``[a − 3.5, c − 3.5, (α − 30)/90]``; the scale is kept
so metrics report mean absolute errors in the space's units, named by
:func:`streamal.train.targets.metric_name` (``mae_a_A``, ``mae_alpha_deg`` for
:func:`streamal_diffraction.spaces.parameter_space`).

Uncertainty: ``variance``, per sample: the shared σ², or (per parameter) the class-probability
weighted mean over each class's free targets of σ_j² (scaled units); ``entropy`` in nats.

Predictions (:meth:`DiffractionCnn.predict`): with the shared σ² each parameter's σ is √σ²
times that parameter's range (:attr:`DiffractionCnn.uncertainty_note` says so); per parameter,
√σ_j² times target j's range.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from streamal.data.space import ParameterSpace
from streamal.plugins import PluginOptions
from streamal.train.model import ModelPlugin
from streamal.train.targets import free_mask, metric_name, regression_scale

__all__ = ["CnnOptions", "DiffractionCnn", "regression_scale"]


class CnnOptions(PluginOptions):
    """``model.options`` of ``diffraction-cnn``."""

    channels: list[int] = Field(
        default=[16, 32],
        min_length=1,
        description="output channels of each Conv1d layer (each followed by max-pooling by 2)",
    )
    kernels: list[int] = Field(
        default=[3, 4],
        min_length=1,
        description="kernel size of each conv layer (the last one repeats for the rest)",
    )
    hidden: int = Field(256, gt=0, description="width of the dense layer before the two heads")
    negative_slope: float = Field(0.1, ge=0, description="negative slope of every LeakyReLU")
    variance: Literal["shared", "per_parameter"] = Field(
        "shared",
        description="the regression head's log σ²: one shared by every target (the paper's), "
        "or one per target (Eqn 6 per parameter; predict() then gives each its own σ)",
    )
    background: Literal["snip", "none"] = Field(
        "snip",
        description="smooth background removed from each pattern before scaling: 'snip' "
        "(pybaselines' SNIP, half-window background_window points; a measured pattern's "
        "background then costs the model nothing) or 'none' (min-max scaling only)",
    )
    background_window: int = Field(
        20,
        ge=2,
        description="SNIP's largest half-window (grid points): wider than a peak, narrower "
        "than the background's slowest wiggle",
    )


def remove_background(patterns: np.ndarray, half_window: int) -> np.ndarray:
    """``patterns`` ``(..., L)`` less each one's SNIP baseline (pybaselines'
    ``Baseline.snip``, decreasing windows up to ``half_window`` points), as float32."""
    from pybaselines import Baseline

    rows = np.asarray(patterns, dtype=np.float64).reshape(-1, patterns.shape[-1])
    fitter = Baseline(x_data=np.arange(rows.shape[-1], dtype=np.float64))
    out = np.empty_like(rows)
    for i, row in enumerate(rows):
        out[i] = row - fitter.snip(row, max_half_window=half_window, decreasing=True)[0]
    return out.reshape(patterns.shape).astype(np.float32)


class DiffractionCnn(ModelPlugin):
    """Symmetry class + lattice parameters from a time-of-flight Bragg profile."""

    name = "diffraction-cnn"
    Options = CnnOptions
    uncertainties = frozenset({"variance", "entropy"})
    options: CnnOptions

    def __init__(self, space: ParameterSpace, input_shape, **options: Any) -> None:
        super().__init__(space, input_shape, **options)
        self.target_names, self.low, self.high = regression_scale(space)
        self.target_index = [space.param_names.index(p) for p in self.target_names]
        self.mask = free_mask(space, self.target_names)
        self.n_variances = len(self.target_names) if self.per_parameter else 1

    @property
    def per_parameter(self) -> bool:
        """Whether the head predicts one log σ² per target (else one shared)."""
        return self.options.variance == "per_parameter"

    @property
    def uncertainty_note(self) -> str | None:
        """How :meth:`predict`'s σ are made, for whoever shows them (``None``: one each)."""
        if self.per_parameter:
            return None
        return (
            "one shared variance: σ per parameter is the shared σ scaled by each parameter's range"
        )

    def build(self) -> Any:
        import torch
        from torch import nn

        o = self.options
        layers: list[nn.Module] = []
        cin, length = 1, self.input_shape[-1]
        for i, cout in enumerate(o.channels):
            k = o.kernels[min(i, len(o.kernels) - 1)]
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv1d(cin, cout, k, stride=stride),
                nn.LeakyReLU(o.negative_slope),
                nn.MaxPool1d(2),
            ]
            length = ((length - k) // stride + 1) // 2
            cin = cout
        n_classes, n_targets = len(self.space.classes), len(self.target_names)
        n_variances = self.n_variances

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = nn.Sequential(
                    *layers,
                    nn.Flatten(),
                    nn.Linear(cin * length, o.hidden),
                    nn.LeakyReLU(o.negative_slope),
                )
                self.classify = nn.Linear(o.hidden, n_classes)
                self.regress = nn.Linear(o.hidden, n_targets + n_variances)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                h = self.features(x.unsqueeze(1) if x.dim() == 2 else x)
                return torch.cat([self.classify(h), self.regress(h)], dim=1)

        return Net()

    @property
    def input_encoding(self) -> str:
        """How :meth:`encode_inputs` normalises a pattern, in words (``model.json``)."""
        scaled = "min-max scaled to [0, 1]: (y − min y) / (max y − min y)"
        if self.options.background == "none":
            return f"each pattern {scaled}"
        return (
            f"each pattern's SNIP background (half-window {self.options.background_window} "
            f"points) subtracted, then {scaled}"
        )

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Each pattern's smooth background removed (option ``background``), then min-max
        scaled to [0, 1]."""
        x = np.asarray(inputs, dtype=np.float32)
        if self.options.background == "snip":
            x = remove_background(x, self.options.background_window)
        lo = x.min(axis=-1, keepdims=True)
        span = x.max(axis=-1, keepdims=True) - lo
        return (x - lo) / np.where(span > 0, span, 1.0)

    def encode_targets(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        y = (np.asarray(params)[:, self.target_index] - self.low) / (self.high - self.low)
        return y.astype(np.float32)

    def _split(self, output):
        """``(logits, values, log σ²)``: log σ² is ``(n,)`` shared, ``(n, T)`` per parameter."""
        k, t = len(self.space.classes), len(self.target_names)
        log_var = output[:, k + t :] if self.per_parameter else output[:, -1]
        return output[:, :k], output[:, k : k + t], log_var

    def loss(self, output, classes, targets):
        import torch.nn.functional as F

        logits, y_hat, log_var = self._split(output)
        ce = F.cross_entropy(logits, classes)
        sq_each = (targets - y_hat) ** 2
        sq = sq_each.sum(dim=1)
        if self.per_parameter:  # Eqn 6 per target
            nll = (sq_each * (-log_var).exp() + log_var).sum(dim=1).mean()
        else:
            nll = (sq * (-log_var).exp() + log_var).mean()
        parts = {"class_loss": ce, "nll": nll, "mse": sq.mean()}
        return ce + nll, {k: v.detach() for k, v in parts.items()}

    def metrics(self, output, classes, targets) -> dict[str, float]:
        import torch.nn.functional as F

        logits, y_hat, log_var = self._split(output)
        out = {
            "class_loss": float(F.cross_entropy(logits, classes)),
            "accuracy": float((logits.argmax(dim=1) == classes).float().mean()),
            "mse": float(((targets - y_hat) ** 2).sum(dim=1).mean()),  # Eqn (7)
        }
        err = (y_hat - targets).abs().detach().cpu().numpy() * (self.high - self.low)
        for j, p in enumerate(self.target_names):
            out[metric_name(self.space, "mae", p)] = float(err[:, j].mean())
        return out

    def uncertainty(self, output) -> dict[str, np.ndarray]:
        import torch

        logits, _, log_var = self._split(output)
        p = torch.softmax(logits, dim=1)
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)
        variance = log_var.exp()
        if self.per_parameter:  # per sample: mean over each class's free targets, p-weighted
            mask = torch.as_tensor(self.mask, dtype=variance.dtype, device=variance.device)
            per_class = (variance @ mask.T) / mask.sum(dim=1).clamp_min(1.0)  # (n, K)
            variance = (p * per_class).sum(dim=1)
        return {
            "variance": variance.detach().cpu().numpy(),
            "entropy": entropy.detach().cpu().numpy(),
        }

    def predict(self, output) -> dict[str, np.ndarray]:
        """Class probabilities, lattice parameters and their σ in the space's units."""
        import torch

        logits, y_hat, log_var = self._split(output.detach().cpu().double())
        span = self.high - self.low
        sigma = (0.5 * log_var).exp().numpy()
        return {
            "class_probabilities": torch.softmax(logits, dim=1).numpy(),
            "params": y_hat.numpy() * span + self.low,
            "params_sigma": (sigma if self.per_parameter else sigma[:, None]) * span,
        }
