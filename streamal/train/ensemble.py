"""``ensemble``: a deep ensemble of any model plugin, for epistemic uncertainty.

``members`` copies of the ``base`` model, each from its own random initialisation, train side
by side in one network on the same mini-batches (one DDP training: on a multi-GPU node every
rank trains all members on its share of each batch). Its output stacks the members' outputs,
``(b, members, ...)``.

What the ensemble reports:

* **uncertainty** (for the active-learning policies, the standard keys): with ``uncertainty:
  epistemic`` (default) only what the members disagree on — ``variance``: the variance of the
  members' predicted parameters (each divided by its range, so in [0, 1] units, averaged over
  the parameters free in a class and weighted by the mean class probability, as
  ``generic-mlp`` weights its own variance), ``entropy``: the mutual information between the
  prediction and the member (BALD: entropy of the mean class probabilities minus the mean of
  the members' entropies, 0 ≤ I ≤ log K). With ``uncertainty: total`` each adds what the
  members predict themselves: the mean of their σ², and the entropy of the mean probabilities.
  Both come from the base's :meth:`~streamal.train.model.ModelPlugin.predict`, which the base
  must implement.
* **metrics**: the mean of the members' own metrics, the score of one base model trained on
  these samples (what a single-model baseline is compared with); ``best.pt`` is picked by the
  base's selection score of those means.
* **predict**: the mixture of the members — mean class probabilities, mean parameters, and σ²
  = mean of the members' σ² plus the variance of their means.

The cost is ``members`` trainings: one network ``members`` times as wide in FLOPs and memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from streamal import plugins
from streamal.data.space import ParameterSpace
from streamal.errors import ConfigError, PluginError
from streamal.plugins import PluginOptions
from streamal.train.model import ModelPlugin
from streamal.train.targets import free_mask, regression_scale

_NO_PREDICT = (
    "{name!r} does not implement predict(), from which the ensemble reads each member's "
    "probabilities and parameters"
)


def _predicts(model: type) -> bool:
    """Whether a model plugin class implements :meth:`ModelPlugin.predict`."""
    return getattr(model, "predict", ModelPlugin.predict) is not ModelPlugin.predict


class EnsembleOptions(PluginOptions):
    """``model.options`` of ``ensemble``."""

    base: str = Field(
        "generic-mlp", description="the member model: an installed model's name or module:Class"
    )
    base_options: dict[str, Any] = Field(
        default_factory=dict, description="the member model's options"
    )
    members: int = Field(5, ge=2, le=64, description="members, each from its own initialisation")
    uncertainty: Literal["epistemic", "total"] = Field(
        "epistemic",
        description="what variance and entropy report: the members' disagreement (epistemic) "
        "or that plus what each member predicts (total)",
    )

    @field_validator("base")
    @classmethod
    def _base_is_a_model_with_predict(cls, name: str) -> str:
        try:
            base = plugins.load("models", name)
        except PluginError as exc:
            raise ValueError(str(exc)) from None
        if isinstance(base, type) and issubclass(base, Ensemble):
            raise ValueError("an ensemble of ensembles; give the member model")
        if isinstance(base, type) and issubclass(base, ModelPlugin) and not _predicts(base):
            raise ValueError(_NO_PREDICT.format(name=name))
        return name

    @field_validator("base_options")
    @classmethod
    def _options_of_the_base(cls, options: dict[str, Any], info: ValidationInfo) -> dict:
        if "base" not in info.data:  # the base itself was refused
            return options
        model = getattr(plugins.load("models", info.data["base"]), "Options", PluginOptions)
        try:
            model.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where + ': ' if where else ''}{first['msg']}") from None
        return options


class Ensemble(ModelPlugin):
    """``members`` copies of a base model; epistemic uncertainty from their disagreement."""

    name = "ensemble"
    Options = EnsembleOptions
    uncertainties = frozenset({"variance", "entropy"})
    options: EnsembleOptions

    def __init__(self, space: ParameterSpace, input_shape: Sequence[int], **options: Any) -> None:
        super().__init__(space, input_shape, **options)
        o = self.options
        self.base: ModelPlugin = plugins.load("models", o.base)(
            space, input_shape, **o.base_options
        )
        if not _predicts(type(self.base)):  # a factory plugin's model, known only now
            raise ConfigError(f"model {self.name!r}: base {_NO_PREDICT.format(name=o.base)}")
        self.members = o.members
        names, low, high = regression_scale(space)
        self._span = high - low
        self._mask = free_mask(space, names).astype(np.float64)  # (K, T)

    def build(self) -> Any:
        import torch
        from torch import nn

        nets = [self.base.build() for _ in range(self.members)]

        class Members(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.members = nn.ModuleList(nets)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.stack([m(x) for m in self.members], dim=1)

        return Members()

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        return self.base.encode_inputs(inputs)

    def encode_targets(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        return self.base.encode_targets(classes, params)

    def loss(self, output: Any, classes: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        """The mean of the members' losses (each member's gradient is its own loss's)."""
        total, parts = None, {}
        for m in range(self.members):
            loss, p = self.base.loss(output[:, m], classes, targets)
            total = loss if total is None else total + loss
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v / self.members
        return total / self.members, parts

    def metrics(self, output: Any, classes: Any, targets: Any) -> dict[str, float]:
        """The mean of the members' metrics (one base model's expected score)."""
        out: dict[str, float] = {}
        for m in range(self.members):
            for k, v in self.base.metrics(output[:, m], classes, targets).items():
                out[k] = out.get(k, 0.0) + v / self.members
        return out

    def selection_score(self, metrics: dict[str, float]) -> float:
        return self.base.selection_score(metrics)

    def _member_predictions(self, output: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per member: class probabilities ``(M, n, K)``, parameters and σ ``(M, n, T)``,
        the parameters and σ divided by each target's range."""
        probs, params, sigmas = [], [], []
        n = output.shape[0]
        for m in range(self.members):
            p = self.base.predict(output[:, m])
            probs.append(p.get("class_probabilities", np.ones((n, 1))))
            params.append(np.asarray(p["params"], dtype=np.float64) / self._span)
            sigmas.append(np.asarray(p["params_sigma"], dtype=np.float64) / self._span)
        return np.stack(probs), np.stack(params), np.stack(sigmas)

    def uncertainty(self, output: Any) -> dict[str, np.ndarray]:
        probs, params, sigmas = self._member_predictions(output)
        mean_prob = probs.mean(axis=0)  # (n, K)
        var = params.var(axis=0)  # (n, T): the members' disagreement
        if self.options.uncertainty == "total":
            var = var + (sigmas**2).mean(axis=0)
        per_class = (var @ self._mask.T) / np.maximum(self._mask.sum(axis=1), 1.0)  # (n, K)
        variance = (mean_prob * per_class).sum(axis=1)

        def entropy(p: np.ndarray) -> np.ndarray:
            return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)

        total = entropy(mean_prob)
        information = total - entropy(probs).mean(axis=0)
        chosen = total if self.options.uncertainty == "total" else information
        return {
            "variance": np.maximum(variance, 0.0),
            "entropy": np.clip(chosen, 0.0, None),
        }

    def predict(self, output: Any) -> dict[str, np.ndarray]:
        probs, params, sigmas = self._member_predictions(output)
        out = {
            "params": params.mean(axis=0) * self._span,
            "params_sigma": np.sqrt((sigmas**2).mean(axis=0) + params.var(axis=0)) * self._span,
        }
        if len(self.space.classes) > 1:
            out["class_probabilities"] = probs.mean(axis=0)
        return out
