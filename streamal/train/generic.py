"""``generic-mlp``: a model for any simulator's float32 output, with no model code.

Architecture::

    input (n, *input_shape)
      → optional per-sample standardisation (zero mean, unit standard deviation)
      → optional 1-D conv front end: [Conv1d(k, same) → SiLU → MaxPool(2)] per channel count
        (1-D inputs ``(L,)``, or ``(C, L)`` with C channels)
      → flatten → MLP trunk: [Linear → SiLU → Dropout] per hidden size
      → class head: K logits                         (only when the space has K > 1 classes)
      → regression head: T means, T variances (softplus, one per target)

Targets (:func:`streamal.train.targets.regression_scale`): each parameter free in some class,
scaled to [0, 1] by the union of its range over the classes. A sample's regression loss covers
only the free parameters of its class (:func:`streamal.train.targets.free_mask`); tied ones
follow from those (:meth:`streamal.data.space.ParameterSpace.complete`).

Loss = cross-entropy (K > 1) + Gaussian negative log-likelihood
``Σ_free ½ (log σ² + (y − μ)² / σ²)``, both means over the batch.

Metrics: ``class_loss`` and ``accuracy`` (K > 1), ``nll``, ``mse`` (sum over a sample's free
targets of the squared scaled error, mean over samples) and, per target, the mean absolute
error in the parameter's unit over the samples whose class has it free
(``mae_<name>_<unit>``, ``mae_<name>`` without a unit; left out when no sample of the split
has it free).

Uncertainty: ``variance``, the class-probability-weighted mean of the predicted σ² over each
class's free targets (scaled units); ``entropy``, the class-prediction entropy in nats (0 for
a one-class space).

Predictions (:meth:`GenericMlp.predict`): class probabilities, and each target's mean and
σ = √σ² mapped back to the parameter's unit.

Example (config)::

    model:
      name: generic-mlp
      options: {hidden: [256, 256], dropout: 0.1, conv_channels: [8, 16]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt

from streamal.data.space import ParameterSpace
from streamal.errors import ConfigError
from streamal.plugins import PluginOptions
from streamal.train.model import ModelPlugin
from streamal.train.targets import free_mask, metric_name, regression_scale

INITIAL_VARIANCE = 1 / 12
"""σ² the regression head starts from: a uniform distribution's on [0, 1]."""


class GenericMlpOptions(PluginOptions):
    """``model.options`` of ``generic-mlp``."""

    hidden: list[PositiveInt] = Field(
        default=[128, 128], min_length=1, description="widths of the MLP trunk's layers"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each trunk layer")
    standardize: bool = Field(
        True, description="scale each sample to zero mean and unit standard deviation"
    )
    conv_channels: list[PositiveInt] = Field(
        default=[],
        description="1-D conv front end, channels per layer (each halves the length); "
        "empty: none. For long 1-D inputs.",
    )
    conv_kernel: PositiveInt = Field(5, description="kernel size of the conv layers")
    min_variance: float = Field(1e-6, gt=0, description="floor of the predicted σ²")


class GenericMlp(ModelPlugin):
    """Class and free parameters, with per-target variances, from any float32 output."""

    name = "generic-mlp"
    Options = GenericMlpOptions
    uncertainties = frozenset({"variance", "entropy"})
    options: GenericMlpOptions

    def _init_targets(self, space: ParameterSpace) -> None:
        """The heads' targets: class logits and the space's free parameters, scaled."""
        self.target_names, self.low, self.high = regression_scale(space)
        self.target_index = [space.param_names.index(p) for p in self.target_names]
        self.mask = free_mask(space, self.target_names)
        self.n_classes = len(space.classes)
        self.n_logits = self.n_classes if self.n_classes > 1 else 0
        self.n_targets = len(self.target_names)
        if self.n_logits == 0 and self.n_targets == 0:
            raise ConfigError(
                f"model {self.name!r}: the space has one class and no free parameter; "
                "there is nothing to learn"
            )

    def __init__(self, space: ParameterSpace, input_shape: Sequence[int], **options: Any) -> None:
        super().__init__(space, input_shape, **options)
        self._init_targets(space)
        if not self.input_shape or any(d <= 0 for d in self.input_shape):
            raise ConfigError(
                f"model {self.name!r}: input_shape must be positive, got {self.input_shape}"
            )
        o = self.options
        if o.conv_channels:
            if len(self.input_shape) > 2:
                raise ConfigError(
                    f"model {self.name!r}: conv_channels needs a 1-D (L,) or (C, L) input, "
                    f"got input_shape {self.input_shape}; use conv_channels: [] (flatten)"
                )
            length = self.input_shape[-1] // 2 ** len(o.conv_channels)
            if length < 1:
                raise ConfigError(
                    f"model {self.name!r}: {len(o.conv_channels)} conv layers halve a length "
                    f"of {self.input_shape[-1]} to nothing; use at most "
                    f"{int(math.log2(self.input_shape[-1]))} conv_channels"
                )

    def build(self) -> Any:
        import torch
        from torch import nn

        o = self.options
        front: list[nn.Module] = []
        if o.conv_channels:
            cin = self.input_shape[0] if len(self.input_shape) == 2 else 1
            if len(self.input_shape) == 1:
                front.append(nn.Unflatten(1, (1, self.input_shape[0])))
            for cout in o.conv_channels:
                front += [
                    nn.Conv1d(cin, cout, o.conv_kernel, padding=o.conv_kernel // 2),
                    nn.SiLU(),
                    nn.MaxPool1d(2),
                ]
                cin = cout
        front.append(nn.Flatten())
        front_net = nn.Sequential(*front)
        with torch.no_grad():
            width = int(front_net(torch.zeros(1, *self.input_shape)).shape[1])
        trunk: list[nn.Module] = []
        for h in o.hidden:
            trunk += [nn.Linear(width, h), nn.SiLU()]
            if o.dropout > 0:
                trunk.append(nn.Dropout(o.dropout))
            width = h
        n_logits, n_targets, floor = self.n_logits, self.n_targets, o.min_variance

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = nn.Sequential(*front_net, *trunk)
                self.classify = nn.Linear(width, n_logits) if n_logits else None
                self.regress = nn.Linear(width, 2 * n_targets) if n_targets else None
                if self.regress is not None:  # start at σ² = INITIAL_VARIANCE
                    raw = math.log(math.expm1(INITIAL_VARIANCE - floor))
                    nn.init.constant_(self.regress.bias[n_targets:], raw)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                h = self.features(x)
                heads = [head(h) for head in (self.classify, self.regress) if head is not None]
                return torch.cat(heads, dim=1)

        return Net()

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Inputs as float32 ``(n, *input_shape)``, each standardised if ``standardize``."""
        x = np.asarray(inputs, dtype=np.float32).reshape(-1, *self.input_shape)
        if not self.options.standardize:
            return x
        axes = tuple(range(1, x.ndim))
        mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
        std = x.std(axis=axes, keepdims=True, dtype=np.float64)
        return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)

    def encode_targets(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        """The targets scaled to [0, 1], ``(n, T)`` (tied ones included, not trained on)."""
        y = (np.asarray(params, dtype=np.float64)[:, self.target_index] - self.low) / (
            self.high - self.low
        )
        return y.astype(np.float32)

    def _split(self, output: Any) -> tuple[Any, Any, Any]:
        """``(logits or None, means, variances)`` of an output tensor."""
        import torch.nn.functional as F

        k, t = self.n_logits, self.n_targets
        logits = output[:, :k] if k else None
        mean = output[:, k : k + t]
        var = F.softplus(output[:, k + t :]) + self.options.min_variance
        return logits, mean, var

    def _nll(self, mean: Any, var: Any, classes: Any, targets: Any) -> tuple[Any, Any, Any]:
        """Per-sample masked Gaussian NLL and squared error, and the mask."""
        import torch

        mask = torch.as_tensor(self.mask, device=mean.device)[classes].to(mean.dtype)
        sq = (targets - mean) ** 2
        nll = (0.5 * (var.log() + sq / var) * mask).sum(dim=1)
        return nll, (sq * mask).sum(dim=1), mask

    def loss(self, output: Any, classes: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        import torch.nn.functional as F

        logits, mean, var = self._split(output)
        nll, sq, _ = self._nll(mean, var, classes, targets)
        total = nll.mean()
        parts = {"nll": total.detach(), "mse": sq.mean().detach()}
        if logits is not None:
            ce = F.cross_entropy(logits, classes)
            total = total + ce
            parts["class_loss"] = ce.detach()
        return total, parts

    def metrics(self, output: Any, classes: Any, targets: Any) -> dict[str, float]:
        import torch.nn.functional as F

        logits, mean, var = self._split(output)
        nll, sq, mask = self._nll(mean, var, classes, targets)
        out: dict[str, float] = {}
        if logits is not None:
            out["class_loss"] = float(F.cross_entropy(logits, classes))
            out["accuracy"] = float((logits.argmax(dim=1) == classes).float().mean())
        out["nll"] = float(nll.mean())
        out["mse"] = float(sq.mean())
        err = (mean - targets).abs().detach().cpu().numpy() * (self.high - self.low)
        free = mask.detach().cpu().numpy() > 0
        for j, p in enumerate(self.target_names):
            if free[:, j].any():
                out[metric_name(self.space, "mae", p)] = float(err[free[:, j], j].mean())
        return out

    def uncertainty(self, output: Any) -> dict[str, np.ndarray]:
        import torch

        logits, _, var = self._split(output)
        n = output.shape[0]
        if logits is None:
            prob = torch.ones(n, 1, dtype=output.dtype, device=output.device)
            entropy = torch.zeros(n, dtype=output.dtype, device=output.device)
        else:
            prob = torch.softmax(logits, dim=1)
            entropy = -(prob * prob.clamp_min(1e-12).log()).sum(dim=1)
        mask = torch.as_tensor(self.mask, dtype=var.dtype, device=var.device)  # (K, T)
        per_class = (var @ mask.T) / mask.sum(dim=1).clamp_min(1.0)  # (n, K)
        variance = (prob * per_class).sum(dim=1)
        return {
            "variance": variance.detach().cpu().numpy(),
            "entropy": entropy.clamp_min(0.0).detach().cpu().numpy(),
        }

    def predict(self, output: Any) -> dict[str, np.ndarray]:
        """Class probabilities (K > 1), and each target's mean and σ in the parameter's unit."""
        import torch

        logits, mean, var = self._split(output)
        span = self.high - self.low
        out = {
            "params": mean.detach().cpu().double().numpy() * span + self.low,
            "params_sigma": var.detach().cpu().double().sqrt().numpy() * span,
        }
        if logits is not None:
            out["class_probabilities"] = torch.softmax(logits.double(), dim=1).cpu().numpy()
        return out
