"""PENGUIN engine parameters (Table 4 of the paper) and the optional never-learning rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from streamal.errors import ConfigError

from .curves import CODE_CURVE, DEFAULT_CURVE, MINIMIZE_CURVE, get_curve
from .fitting import Curve

__all__ = ["Direction", "NeverLearningRule", "PredictionConfig", "Variant", "prediction_config"]

Variant = Literal["paper", "penguin-code"]
"""Which PENGUIN the engine follows: the paper's text, or the authors' code where they differ."""

Direction = Literal["maximize", "minimize"]
"""Whether fitness rises as a network learns (accuracy) or falls (a loss, an MSE)."""


@dataclass(frozen=True)
class NeverLearningRule:
    """Optional early stop for flat curves at chance level (not in the paper's Alg. 2).

    Fires at the first record with ``epoch >= min_epoch`` at which every observed fitness so
    far is ``<= floor`` and the latest prediction, if any, is also ``<= floor``. With
    ``direction="minimize"`` the rule inverts: ``floor`` is a ceiling, and the rule fires when
    they all are ``>= floor``. It is consulted only when Alg. 2 did not stop the job and
    before ``e_pred``.

    Args:
        floor: Fitness at or below which (at or above which, when minimizing) a network is
            taken not to learn, in the fitness units (e.g. a little above chance: 2 for
            CIFAR-100 accuracy in percent; a little below ln(100) = 4.6 for its cross-entropy).
        min_epoch: Earliest epoch at which the rule may fire.
    """

    floor: float
    min_epoch: float = 2.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.floor):
            raise ConfigError(f"never_learning.floor must be finite, got {self.floor}")
        if not self.min_epoch > 0:
            raise ConfigError(f"never_learning.min_epoch must be > 0, got {self.min_epoch}")


@dataclass(frozen=True)
class PredictionConfig:
    """PENGUIN engine parameters (Table 4) plus fitting options.

    Args:
        n_predictions: N, "the number of most recent fitness predictions to consider".
        tolerance: t, "how much variability is tolerated to establish convergence": in
            fitness units when maximizing (points of accuracy in percent), in percent of
            the centre's magnitude when minimizing (0.5: 0.5 % of the mean loss).
        epochs_per_iteration: E, "the number of epochs per iteration"; epochs are rescaled
            by r = 1/E before fitting.
        e_pred: "the epoch in the future for which PENGUIN predicts NN fitness; also, the
            maximum number of epochs an NN will train".
        curves: Curve names (see ``CURVES``) or :class:`Curve` objects, all of the
            direction's trend. ``None`` (filled in at construction): the paper's
            ``a - b^(c-x)`` (``exp_base``, a <= 102.5); for ``variant="penguin-code"``
            the same function with the code's a <= 200 (``exp_base_a200``); when minimizing
            its mirror ``a + b^(c-x)`` (``exp_base_dec``).
        valid_range: Inclusive range of valid fitness predictions (Condition 2). ``None``
            (filled in at construction): [0, 100] when maximizing, [0, inf) when minimizing.
        fitness_scale: Multiplier applied to fitness before fitting (and undone on the
            prediction), so that bounds calibrated for percent apply; 100 for accuracy in
            [0, 1]. The authors' code calls it ``yshift``.
        c_min: Minimum number of datapoints before fitting; ``None``: each curve's number
            of parameters ("equal to the degrees of freedom in the parametric function").
        max_nfev: Limit on function evaluations per ``curve_fit`` call; ``None``: SciPy's
            default for bounded fits (100 x number of parameters), as in the authors' code.
        never_learning: Optional :class:`NeverLearningRule`.
        variant: ``"paper"`` (the text, default) or ``"penguin-code"`` (the authors' code
            where it differs: first fit on C_min - 1 points, no N * E wait, window of valid
            predictions cleared by an invalid one, median centre, a <= 200); see
            :mod:`.engine`.
        direction: ``"maximize"`` (accuracy-like, default) or ``"minimize"`` (loss-like:
            decreasing curves, tolerance relative to the centre, never-learning ceiling).
    """

    n_predictions: int = 3
    tolerance: float = 0.5
    epochs_per_iteration: float = 0.5
    e_pred: float = 20.0
    curves: tuple[str | Curve, ...] | None = None
    valid_range: tuple[float, float] | None = None
    fitness_scale: float = 1.0
    c_min: int | None = None
    max_nfev: int | None = None
    never_learning: NeverLearningRule | None = None
    variant: Variant = "paper"
    direction: Direction = "maximize"

    def __post_init__(self) -> None:
        if self.variant not in get_args(Variant):
            raise ConfigError(f"variant must be one of {get_args(Variant)}, got {self.variant!r}")
        if self.direction not in get_args(Direction):
            raise ConfigError(
                f"direction must be one of {get_args(Direction)}, got {self.direction!r}"
            )
        maximize = self.direction == "maximize"
        if self.curves is None:
            default = DEFAULT_CURVE if self.variant == "paper" else CODE_CURVE
            object.__setattr__(self, "curves", (default if maximize else MINIMIZE_CURVE,))
        if self.valid_range is None:
            object.__setattr__(self, "valid_range", (0.0, 100.0 if maximize else math.inf))
        if self.n_predictions < 1:
            raise ConfigError(f"n_predictions (N) must be >= 1, got {self.n_predictions}")
        if not self.tolerance >= 0:
            raise ConfigError(f"tolerance (t) must be >= 0, got {self.tolerance}")
        if not self.epochs_per_iteration > 0:
            raise ConfigError(
                f"epochs_per_iteration (E) must be > 0, got {self.epochs_per_iteration}"
            )
        if not self.e_pred > self.n_predictions * self.epochs_per_iteration:
            raise ConfigError(
                f"e_pred must exceed N * E = {self.n_predictions * self.epochs_per_iteration}"
                f" (Alg. 2 line 3 precedes line 4), got {self.e_pred}"
            )
        if not self.curves:
            raise ConfigError("curves must name at least one curve")
        resolved = tuple(get_curve(c) for c in self.curves)
        names = [c.name for c in resolved]
        if len(set(names)) != len(names):
            raise ConfigError(f"curves must have distinct names, got {names}")
        trend = "increasing" if maximize else "decreasing"
        wrong = [c.name for c in resolved if c.trend != trend]
        if wrong:
            raise ConfigError(
                f"curves {wrong} are not {trend}, as direction={self.direction!r} needs; "
                f"e.g. {DEFAULT_CURVE if maximize else MINIMIZE_CURVE!r}"
            )
        lo, hi = self.valid_range
        if not lo < hi:
            raise ConfigError(f"valid_range must be (low, high) with low < high, got {lo, hi}")
        if not (self.fitness_scale > 0 and math.isfinite(self.fitness_scale)):
            raise ConfigError(f"fitness_scale must be finite and > 0, got {self.fitness_scale}")
        if self.c_min is not None and self.c_min < 1:
            raise ConfigError(f"c_min must be >= 1 or None, got {self.c_min}")
        if self.max_nfev is not None and self.max_nfev < 1:
            raise ConfigError(f"max_nfev must be >= 1, got {self.max_nfev}")

    @classmethod
    def fraction(cls, **overrides: Any) -> PredictionConfig:
        """Config for accuracy in [0, 1]: valid range [0, 1], fitting in percent, t = 0.005."""
        params: dict[str, Any] = {
            "valid_range": (0.0, 1.0),
            "fitness_scale": 100.0,
            "tolerance": 0.005,
        }
        params.update(overrides)
        return cls(**params)

    @property
    def rescale(self) -> float:
        """Epoch rescaling factor r = 1/E."""
        return 1.0 / self.epochs_per_iteration

    def first_fit_points(self, curve: Curve) -> int:
        """Datapoints in H before ``curve`` is first fitted.

        C_min is ``c_min``, else the curve's number of parameters ("equal to the degrees of
        freedom in the parametric function"). The paper fits once ``|H| >= C_min``; the
        authors' code (``variant="penguin-code"``) starts at index C_min - 1 and fits the
        points before it, i.e. on C_min - 1 points (at least 1).
        """
        c_min = curve.n_params if self.c_min is None else self.c_min
        return c_min if self.variant == "paper" else max(1, c_min - 1)

    def resolved_curves(self) -> tuple[Curve, ...]:
        """The configured curves as :class:`Curve` objects."""
        return tuple(get_curve(c) for c in self.curves)


def prediction_config(options: Mapping[str, Any]) -> PredictionConfig:
    """A :class:`PredictionConfig` from plain keyword values (lists become tuples).

    This is the form the engine's settings take across the pool boundary (see
    :func:`.task.run_prediction_engine`); ``never_learning`` may be a mapping of
    :class:`NeverLearningRule` fields; ``variant`` and ``direction`` are strings.
    """
    kw = dict(options)
    for key in ("curves", "valid_range"):
        if key in kw and kw[key] is not None:
            kw[key] = tuple(kw[key])
    rule = kw.get("never_learning")
    if isinstance(rule, Mapping):
        kw["never_learning"] = NeverLearningRule(**rule)
    return PredictionConfig(**kw)
