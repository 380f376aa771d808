"""``uncertainty-diverse``: uncertain study points that are spread out, BADGE / k-means++ style.

Scores, study set and the draw around each chosen study point are those of
``uncertainty-topk``; only the choice of the batch's study points differs. They are chosen
one at a time by uncertainty-weighted D² sampling: the first with probability ∝ its score wₙ,
each next with probability ∝ wₙ · (D²)^``diversity_power``, where D is the distance to the
nearest point chosen so far. Distances are measured in the class's box scaled to [0, 1] per
free dimension and divided by √(free dimensions), so D ≤ 1 within a class; a point of another
class counts as D = 1, the largest. A chosen point is not chosen again until every point has
been; then the choice starts over. Where that weight is 0 for every unchosen point (their
scores are 0), the next is drawn ∝ (D²)^``diversity_power``, and uniformly if that is 0 too.
``diversity_power`` 0 gives score-proportional choice without replacement, no diversity.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from streamal.policy.topk import TopKUncertaintyPolicy
from streamal.policy.uncertainty import UncertaintyMixtureOptions

__all__ = ["DiverseUncertaintyOptions", "DiverseUncertaintyPolicy"]


class DiverseUncertaintyOptions(UncertaintyMixtureOptions):
    """``policy.options`` of ``uncertainty-diverse``: those of ``uncertainty-mixture`` and
    ``diversity_power``."""

    diversity_power: float = Field(
        1.0,
        ge=0,
        allow_inf_nan=False,
        description="exponent on D² (0: score-proportional choice, no diversity)",
    )


class DiverseUncertaintyPolicy(TopKUncertaintyPolicy):
    """One sample next to each of ``n`` study points chosen uncertain and far apart.

    Call :meth:`fit` with the model's predictions on the study set before sampling.

    Attributes:
        study_classes_: Class of each study point of the last :meth:`fit`.
        weights_: Score wₙ of each study point of the last :meth:`fit` (the mixture weights of
            ``uncertainty-mixture``); None before the first.
    """

    name = "uncertainty-diverse"
    Options = DiverseUncertaintyOptions

    # Hand-written rather than sklearn.cluster.kmeans_plusplus: that one takes sample_weight
    # (probability ∝ weight · D²) but has no exponent on D², by default keeps the best of
    # 2 + log(n) sampled candidates per step instead of the sampled one, takes no
    # numpy Generator and cannot choose more points than it is given.
    def _choose(self, rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` of the study ``rows`` by score-weighted D² sampling, starting over past
        ``len(rows)``."""
        classes = self.study_classes_[rows]
        score = self.weights_[rows]
        unit = self._unit(rows)
        power = self.options.diversity_power
        picks = np.empty(n, dtype=np.int64)
        for i in range(n):
            if i % len(rows) == 0:  # a new round: nothing chosen, every point at D = 1
                d2 = np.ones(len(rows))
                taken = np.zeros(len(rows), dtype=bool)
            spread = d2**power
            for weight in (score * spread, spread, np.ones(len(rows))):
                prob = np.where(taken, 0.0, weight)
                total = prob.sum()
                if total > 0:
                    break
            j = rng.choice(len(rows), p=prob / total)
            picks[i] = rows[j]
            taken[j] = True
            dist = ((unit - unit[j]) ** 2).sum(axis=1)
            dist[classes != classes[j]] = 1.0
            d2 = np.minimum(d2, dist)
        return picks

    def _unit(self, rows: np.ndarray) -> np.ndarray:
        """Study points in their class's unit box over √(free dimensions), zero-padded to the
        most free dimensions of any class, ``(len(rows), max free)``."""
        classes = self.study_classes_[rows]
        unit = np.zeros((len(rows), max(len(c.free) for c in self.space.classes)))
        for k in np.unique(classes):
            c = self.space.classes[k]
            at = classes == k
            span = np.where(c.high > c.low, c.high - c.low, 1.0)
            free = self.means_[k][self.component_row_[rows[at]]]
            unit[at, : len(c.free)] = (free - c.low) / span / np.sqrt(len(c.free))
        return unit
