"""Top-k uncertainty sampling: a model-driven policy plugin in one file.

The classic active-learning baseline ("uncertainty sampling"): ask the model about a pool of
candidates, rank them by one uncertainty, and simulate next to the ``n`` most uncertain ones.
Here the pool is the study set, an equally spaced grid of ``pool_size`` points per class, and
each chosen grid point gives one sample drawn uniformly from its neighbourhood (``radius``
times the grid spacing on either side, inside the class box), so a batch never repeats a
study point exactly. Where ``n`` exceeds the pool, the ranking is cycled.

Why plain top-k rather than top-k with batch diversity: it is the baseline every AL method is
measured against, and it is the opposite of the built-in ``uncertainty-mixture`` (which
samples in proportion to the uncertainty): a batch piles onto the few most uncertain points.
Its choice is a pure function of the predictions, so a test can check exactly that ``fit``
received them.

Use it without installing anything::

    PYTHONPATH=examples/policies python -m streamal run campaign.yaml

    policy:
      name: topk_policy:TopKUncertaintyPolicy
      options: {key: entropy, pool_size: 64}

or register it in your package's ``pyproject.toml``::

    [project.entry-points."streamal.policies"]
    topk-uncertainty = "mypackage.topk_policy:TopKUncertaintyPolicy"

The workflows need nothing else: they read :attr:`needs` (``{key}``), simulate the
:meth:`study_set`, hand :meth:`fit` the model's ``key`` on it after each training and draw the
batch with :meth:`sample_total`; ``streamal validate`` refuses a model that does not report
``key``.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from streamal.data.space import ClassSpace
from streamal.errors import ParameterError
from streamal.plugins import PluginOptions
from streamal.policy import Policy, SweepPolicy, UniformPolicy


class TopKOptions(PluginOptions):
    """``policy.options`` of the top-k policy."""

    key: str = Field("variance", min_length=1, description="the model uncertainty to rank by")
    pool_size: int = Field(64, gt=0, le=10**8, description="study points per class")
    radius: float = Field(
        0.5, gt=0, le=0.5, description="neighbourhood half-width, in grid spacings (<= 0.5)"
    )


class TopKUncertaintyPolicy(Policy):
    """Simulate next to the ``n`` study points where the model is most uncertain."""

    name = "topk-uncertainty"
    Options = TopKOptions

    @classmethod
    def needs_for(cls, options: BaseModel) -> frozenset[str]:
        return frozenset({options.key})

    @classmethod
    def study_rows_for(cls, options: BaseModel, n_classes: int) -> int:
        return options.pool_size * n_classes

    def _study_set(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return SweepPolicy(self.space).sample(self.options.pool_size, rng)

    def spacing(self, class_index: int) -> np.ndarray:
        """Grid spacing of the study set per free dimension of a class."""
        c = self.space.classes[class_index]
        per_dim = max(1, int(np.ceil(self.options.pool_size ** (1 / len(c.free)) - 1e-9)))
        return (c.high - c.low) / per_dim

    def _fit(self, classes: np.ndarray, params: np.ndarray, predictions: dict) -> None:
        scores = predictions[self.options.key]
        self.study_classes_ = classes
        self.study_params_ = params
        self.scores_ = scores
        self.ranking_ = np.argsort(-scores, kind="stable")  # most uncertain first

    def _near(self, k: int, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One full vector near each study row ``rows`` (all of class ``k``)."""
        c: ClassSpace = self.space.classes[k]
        half = self.options.radius * self.spacing(k)
        if len(rows) == 0:
            return np.empty((0, len(self.space.param_names)))
        centres = self.study_params_[rows][:, self.space.free_indices(k)]

        def draw(m: np.ndarray) -> np.ndarray:
            return np.clip(m + rng.uniform(-half, half, size=m.shape), c.low, c.high)

        free = draw(centres)
        for _ in range(100):  # separation constraints: redraw the few that violate one
            bad = np.zeros(len(free), dtype=bool)
            for (p, q), eps in c.min_separation.items():
                bad |= np.abs(free[:, c.free.index(p)] - free[:, c.free.index(q)]) <= eps
            if not bad.any():
                return self.space.complete(k, free)
            free[bad] = draw(centres[bad])
        raise ParameterError(f"class {c.name}: cannot satisfy {dict(c.min_separation)}")

    def _sample_total(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        picks = self.ranking_[np.arange(n) % len(self.ranking_)]
        classes, params = [], []
        for k in range(len(self.space.classes)):
            rows = picks[self.study_classes_[picks] == k]
            classes.append(np.full(len(rows), k))
            params.append(self._near(k, rows, rng))
        return np.concatenate(classes), np.concatenate(params)

    def _sample(self, n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        classes, params = [], []
        for k in range(len(self.space.classes)):
            ranked = self.ranking_[self.study_classes_[self.ranking_] == k]
            if len(ranked) == 0:  # no study point of this class was stored: draw uniformly
                drawn_classes, drawn = UniformPolicy(self.space).sample(n_per_class, rng)
                params.append(drawn[drawn_classes == k])
            else:
                params.append(self._near(k, ranked[np.arange(n_per_class) % len(ranked)], rng))
            classes.append(np.full(n_per_class, k))
        return np.concatenate(classes), np.concatenate(params)
