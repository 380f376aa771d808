"""``uncertainty-topk``: simulate next to the study points where the model is most uncertain.

The classic pool-based baseline, built from the parts of ``uncertainty-mixture`` (Eqn (4)):
the same options, the same study set (the equally spaced sweep grid) and the same score per
study point (the mixture weight wₙ, :func:`~streamal.policy.uncertainty.mixture_weights`). A
batch of ``n`` takes the ``n`` highest-scoring study points (ties: the lower row first; past
the end of the study set the ranking starts again) and draws one sample around each from that
point's mixture component, a Gaussian of spread τ truncated to the class box, constraints
respected. So top-k is the mixture restricted to its top-n components with one draw each; the
class of each sample is the class of its study point.
"""

from __future__ import annotations

import numpy as np

from streamal.policy.base import Draw
from streamal.policy.uncertainty import UncertaintyMixturePolicy
from streamal.policy.uniform import UniformPolicy

__all__ = ["TopKUncertaintyPolicy"]


class TopKUncertaintyPolicy(UncertaintyMixturePolicy):
    """One sample next to each of the ``n`` study points with the highest weight.

    Options, needs and study set are those of ``uncertainty-mixture``; call :meth:`fit` with
    the model's predictions on the study set before sampling.

    Attributes:
        study_classes_: Class of each study point of the last :meth:`fit`.
        weights_: Score wₙ of each study point of the last :meth:`fit` (the mixture weights of
            ``uncertainty-mixture``); None before the first.
    """

    name = "uncertainty-topk"

    def choose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The study points a batch of ``n`` is drawn around, one per sample, in its order.

        ``sample_total(n, rng)`` draws around ``choose(n, rng)`` called with a generator in
        the same state.

        Args:
            n: Batch size (≥ 0).
            rng: Source of randomness (top-k uses none).

        Returns:
            Rows of :meth:`fit`'s study arrays, ``(n,)`` int64.

        Raises:
            ParameterError: Not fitted yet, or ``n`` is not an integer ≥ 0.
        """
        self._check_fitted()
        n = self._count(n, "n")
        return self._choose(np.arange(len(self.study_classes_)), n, rng)

    def class_probabilities(self) -> np.ndarray:
        """Not defined: the classes of a batch are those of the study points it is drawn around.

        Raises:
            NotImplementedError: Always; use :meth:`choose` to see a batch's study points.
        """
        raise NotImplementedError(
            f"policy {self.name!r} has no class distribution: each sample takes the class of "
            f"its study point (see choose())"
        )

    def _choose(self, rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` of the study ``rows``: the highest-weighted first, cycling past ``len(rows)``."""
        ranking = rows[np.argsort(-self.weights_[rows], kind="stable")]
        return ranking[np.arange(n) % len(ranking)]

    def _around(self, rows: np.ndarray, rng: np.random.Generator) -> Draw:
        """One draw from the mixture component of each study row, in the order of ``rows``."""
        classes = self.study_classes_[rows]
        params = np.empty((len(rows), len(self.space.param_names)))
        for k in np.unique(classes):
            at = classes == k
            params[at] = self._draw(int(k), self.component_row_[rows[at]], rng)
        return classes, params

    def _sample_total(self, n: int, rng: np.random.Generator) -> Draw:
        """``n`` samples, one around each chosen study point; classes follow the points."""
        return self._around(self.choose(n, rng), rng)

    def _sample(self, n_per_class: int, rng: np.random.Generator) -> Draw:
        """``n_per_class`` samples of every class, chosen among that class's study points."""
        classes, params = [], []
        for k in range(len(self.space.classes)):
            rows = np.flatnonzero(self.study_classes_ == k)
            if len(rows):
                params.append(self._around(self._choose(rows, n_per_class, rng), rng)[1])
            else:  # no study point of this class was stored: draw uniformly
                drawn_classes, drawn = UniformPolicy(self.space).sample(n_per_class, rng)
                params.append(drawn[drawn_classes == k])
            classes.append(np.full(n_per_class, k, dtype=np.int64))
        return np.concatenate(classes), np.concatenate(params)
