"""The uncertainty-weighted Gaussian-mixture policy, the paper's Eqn (4).

Given a study set S = {x̄ₙ} (an equally spaced grid per class, see :class:`SweepPolicy`) and
weights wₙ from the current model, the next batch is drawn from

    p(k, x) ∝ p_X(x) · Σ_{n ∈ class k} wₙ · N(x; x̄ₙ, diag τₖ²)      for x in class k's box,

with p_X uniform over the box. Sampling is exact and needs no rejection loop: component n is
picked with probability ∝ wₙ·Zₙ, where Zₙ is the mass of its (normalised) Gaussian inside the
box, and the point is drawn from that Gaussian truncated to the box (``scipy.stats.truncnorm``,
dimension by dimension). The class is a discrete dimension of the same space, so classes the
model is unsure about receive more samples.

The policy owns its study set (:meth:`~UncertaintyMixturePolicy.study_set`) and needs the
model's ``variance``, plus its ``entropy`` when ``entropy_weight`` > 0; :meth:`fit` turns those
predictions into the weights below.

Weights: wₙ = (1 − m)·(σ̂²ₙ)^γ/Σ(σ̂²)^γ + m·Hₙ^γ/ΣH^γ, with σ̂² the regression head's
variance, H the classifier's entropy, m = ``entropy_weight`` (ALBAND used m = ½; Eqn (4) is
m = 0) and γ = ``weight_power`` (1: the paper's weights). Early in a campaign the classifier's
entropy is high almost everywhere (the normalised entropy of a 3-class model varies by about
2× over the space), so the weights barely move samples towards the decision boundaries;
γ > 1 sharpens them towards the most uncertain study points.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field
from scipy.special import ndtr
from scipy.stats import truncnorm

from streamal.config import MAX_SAMPLES
from streamal.data.space import ParameterSpace
from streamal.errors import ParameterError
from streamal.plugins import PluginOptions
from streamal.policy.base import Policy
from streamal.policy.uniform import SweepPolicy, _separated


class UncertaintyMixtureOptions(PluginOptions):
    entropy_weight: float = Field(0.5, ge=0, le=1, description="m in the weight mix")
    tau_factor: float = Field(1.0, gt=0, description="τ = study-set spacing × tau_factor")
    study_size: int = Field(
        100, gt=0, le=MAX_SAMPLES, description="study points per class (at most 1e8)"
    )
    weight_power: float = Field(
        1.0, gt=0, description="γ: weights ∝ uncertainty^γ (1: the paper's Eqn 4)"
    )


def _normalised(u: np.ndarray, power: float) -> np.ndarray:
    """u^γ / Σu^γ, computed relative to max(u) so large γ cannot overflow; uniform if all 0."""
    top = u.max() if len(u) else 0.0
    if top <= 0:
        return np.full(len(u), 1 / max(len(u), 1))
    v = (u / top) ** power
    return v / v.sum()


def mixture_weights(
    variance: np.ndarray,
    entropy: np.ndarray | None,
    entropy_weight: float,
    power: float = 1.0,
) -> np.ndarray:
    """wₙ = (1 − m)·(σ̂²)^γ/Σ(σ̂²)^γ + m·H^γ/ΣH^γ (each part normalised to sum 1)."""
    variance = np.asarray(variance, dtype=np.float64)
    if np.any(~np.isfinite(variance)) or np.any(variance < 0):
        raise ParameterError("study-set variances must be finite and >= 0")
    if power <= 0:
        raise ParameterError(f"weight power must be > 0 (got {power})")
    w = (1 - entropy_weight) * _normalised(variance, power)
    if entropy_weight > 0:
        if entropy is None:
            raise ParameterError("entropy_weight > 0 needs the classifier entropy")
        h = np.clip(np.asarray(entropy, dtype=np.float64), 0, None)
        w = w + entropy_weight * _normalised(h, power)
    return w


class UncertaintyMixturePolicy(Policy):
    """Eqn (4): sample where the model is uncertain, exactly, inside each class's box.

    Call :meth:`fit` with the model's predictions on the study set before :meth:`sample`.

    Attributes:
        study_classes_: Class of each study point of the last :meth:`fit`.
        weights_: Weight wₙ of each study point of the last :meth:`fit`
            (:func:`mixture_weights`); None before the first.
    """

    name = "uncertainty-mixture"
    Options = UncertaintyMixtureOptions
    optional_needs = {"entropy": "entropy_weight: 0"}

    def __init__(self, space: ParameterSpace, **options) -> None:
        super().__init__(space, **options)
        self.study_classes_: np.ndarray | None = None
        self.weights_: np.ndarray | None = None

    @classmethod
    def needs_for(cls, options: BaseModel) -> frozenset[str]:
        """``variance``, and ``entropy`` when ``entropy_weight`` > 0."""
        return frozenset({"variance"} | ({"entropy"} if options.entropy_weight > 0 else set()))

    @classmethod
    def study_rows_for(cls, options: BaseModel, n_classes: int) -> int:
        """``study_size`` grid points per class."""
        return options.study_size * n_classes

    def _study_set(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The equally spaced study set: ``study_size`` grid points per class."""
        return SweepPolicy(self.space).sample(self.options.study_size, rng)

    def tau(self, class_index: int) -> np.ndarray:
        """Spread per free dimension: the study-grid spacing times ``tau_factor``."""
        c = self.space.classes[class_index]
        per_dim = max(1, int(np.ceil(self.options.study_size ** (1 / len(c.free)) - 1e-9)))
        return (c.high - c.low) / per_dim * self.options.tau_factor

    def _fit(
        self, classes: np.ndarray, params: np.ndarray, predictions: dict[str, np.ndarray]
    ) -> None:
        """Weights from the predictions (:func:`mixture_weights`), then the mixture."""
        options = self.options
        weights = mixture_weights(
            predictions["variance"],
            predictions.get("entropy"),
            options.entropy_weight,
            options.weight_power,
        )
        self._set_mixture(classes, params, weights)

    def _set_mixture(self, classes: np.ndarray, params: np.ndarray, weights: np.ndarray) -> None:
        """Component n at ``params[n]`` of class ``classes[n]``, weight wₙ."""
        classes = np.asarray(classes, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        if len(classes) != len(weights) or len(params) != len(classes):
            raise ParameterError("classes, params and weights need the same length")
        if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
            raise ParameterError("weights must be finite, >= 0 and not all 0")
        self.study_classes_ = classes
        self.weights_ = weights
        self.means_: list[np.ndarray] = []
        self.taus_: list[np.ndarray] = []
        mass = np.empty(len(classes))
        for k, c in enumerate(self.space.classes):
            rows = np.flatnonzero(classes == k)
            mu = np.asarray(params)[rows][:, self.space.free_indices(k)]
            tau = self.tau(k)
            self.means_.append(mu)
            self.taus_.append(tau)
            z = np.prod(ndtr((c.high - mu) / tau) - ndtr((c.low - mu) / tau), axis=1)
            mass[rows] = weights[rows] * z
        self.component_prob_ = mass / mass.sum()
        self.component_row_ = np.empty(len(classes), dtype=np.int64)
        for k in range(len(self.space.classes)):
            rows = np.flatnonzero(classes == k)
            self.component_row_[rows] = np.arange(len(rows))

    def class_probabilities(self) -> np.ndarray:
        """Probability of each class under the fitted mixture."""
        self._check_fitted()
        return np.bincount(
            self.study_classes_, weights=self.component_prob_, minlength=len(self.space.classes)
        )

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ParameterError(
                f"policy {self.name!r}: call fit(study classes, params, predictions) first"
            )

    def _truncated(self, k: int, components: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.space.classes[k]
        mu, tau = self.means_[k][components], self.taus_[k]
        a, b = (c.low - mu) / tau, (c.high - mu) / tau
        return truncnorm.rvs(a, b, loc=mu, scale=tau, size=mu.shape, random_state=rng)

    def _draw(self, k: int, components: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Full vectors drawn from the given components of class ``k``, constraints respected.

        A separation constraint (e.g. tetragonal ``|a − c| > 0.001``) cuts a slab of almost no
        mass out of the box; the few draws inside it are redrawn from the same component,
        which samples the mixture restricted to the allowed set exactly.
        """
        c = self.space.classes[k]
        free = self._truncated(k, components, rng)
        for _ in range(100):
            bad = ~_separated(c, free)
            if not bad.any():
                return self.space.complete(k, free)
            free[bad] = self._truncated(k, components[bad], rng)
        raise ParameterError(f"class {c.name}: could not satisfy {dict(c.min_separation)}")

    def _sample_total(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples in all; the class of each follows the mixture (Eqn 4 over classes)."""
        picks = rng.choice(len(self.component_prob_), size=n, p=self.component_prob_)
        classes_out, params_out = [], []
        for k in range(len(self.space.classes)):
            comps = self.component_row_[picks[self.study_classes_[picks] == k]]
            if len(comps) == 0:
                continue
            classes_out.append(np.full(len(comps), k))
            params_out.append(self._draw(k, comps, rng))
        return np.concatenate(classes_out), np.concatenate(params_out)

    def _sample(self, n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n_per_class`` samples of every class, each class's points from its own mixture."""
        classes_out, params_out = [], []
        for k in range(len(self.space.classes)):
            rows = np.flatnonzero(self.study_classes_ == k)
            p = self.component_prob_[rows]
            p = p / p.sum() if p.sum() > 0 else np.full(len(rows), 1 / len(rows))
            comps = rng.choice(len(rows), size=n_per_class, p=p)
            classes_out.append(np.full(n_per_class, k))
            params_out.append(self._draw(k, comps, rng))
        return np.concatenate(classes_out), np.concatenate(params_out)
