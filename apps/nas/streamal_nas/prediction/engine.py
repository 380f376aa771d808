"""PENGUIN prediction engine: parametric modelling (Alg. 1) and prediction analyzer (Alg. 2).

Usage from a training loop (DeepHyper-style)::

    engine = PredictionEngine(PredictionConfig(e_pred=20, epochs_per_iteration=0.5))
    job = engine.job("cand-7")
    for epoch in (0.5, 1.0, 1.5, ...):
        job.record(epoch, validate(model))
        if job.stopped():
            break
    job.decision.fitness  # FIT_P on convergence, fit_V when e_pred was reached

Decoupled use (the engine as a separate task reading records): see :mod:`.task`.

Paper ambiguities and how they are resolved (quotes from Rorabaugh et al., TPDS 2022):

* Alg. 2 line 6 reads "if FIT_P is a valid fitness value then exit" and line 7 "if last N
  fit_V in H are within t"; the text (Conditions 2 and 3) says the prediction must be valid
  and "The N most recent fitness predictions are all within the threshold t of their mean".
  We follow the text: exit when FIT_P is *not* valid; test the last N predictions fit_P
  against their mean (the authors' code uses the median; the paper says mean).
* Line 3 "if e <= N * E then exit" is applied literally. "The N most recent fitness
  predictions" are the last N entries of H that hold one: entries before C_min points or
  whose fit failed hold none and are skipped, as in the authors' code (Alg. 1 line 2
  initialises fit_P to 0, which we do not count as a prediction); fewer than N: exit.
* Line 4 "if e = e_pred then return fit_V" is applied as ``e >= e_pred`` (float epochs).
* With several curves, Alg. 1 (one function F) is run per curve and the fit with the lowest
  residual sum of squares gives fit_P; with one curve (the default, the paper's
  ``a - b^(c-x)``) this is exactly Alg. 1.
* Never-learning networks: the paper stops them through the same analyzer ("This NN is
  correctly classified by PENGUIN as a never-learn", Fig. 8a). :class:`.NeverLearningRule`
  is an optional, off-by-default addition for flat curves whose noisy predictions do not
  settle within t.

``variant="penguin-code"`` follows the authors' code where it differs from the text, as we
read TauferLab/PENGUIN at its last commit (cdfca69, March 2022: ``PENGUIN_Main.py``,
``PredictionAnalyzer.analyzePrediction``, ``analyzerThresholdFunctions``), replayed one
record at a time:

* First fit on C_min - 1 points: ``startIndex = C_min - 1`` and iteration i fits
  ``curveFitX[0:i]``, so with C_min = 3 the first fit uses 2 points (underdetermined for
  ``a - b^(c-x)``; SciPy's bounded solver accepts it). See
  :meth:`.PredictionConfig.first_fit_points`.
* No "e <= N * E" wait (Alg. 2 line 3): the test runs once the window holds N predictions.
* The window-clearing rule: a prediction outside ``valid_range`` ([0, 100], the code's
  ``fitnessLowerBound``/``fitnessUpperBound``) empties the window (``aValues =
  np.array([])``) instead of entering it; a failed fit leaves the window as it is. The
  window is the last N valid predictions since the last invalid one.
* Median centre (``withinNumberThreshold``): converged when every prediction in the window
  is within t of their median.
* Default curve ``a - b^(c-x)`` with the code's default bounds, a <= 200
  (``exp_base_a200``; the paper variant keeps the a <= 102.5 of the 2021 ``CurveFit.py``).
  Predictions of a fit whose a exceeds 100 are typically above 100, hence invalid, hence
  clear the window.
* Unchanged: the prediction is f(e_pred * r) (the code's ``predictedFitness``) and at
  e_pred the observed fitness is returned, not converged.

``direction="minimize"`` (a loss or an MSE as fitness) keeps both algorithms and changes
three things: the curves must be decreasing (default ``a + b^(c-x)``, the mirror of the
paper's function and the code's ``lossDefaultFn``; its asymptote a is the predicted loss
floor), the tolerance is t percent of the centre's magnitude (|p - centre| <= t/100 *
|centre|, as the code's ``withinPercentThreshold``), and the never-learning rule stops
curves that stay at or above its level.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .config import PredictionConfig
from .decision import Decision, StopReason
from .fitting import Curve, FitResult, fit_curve

__all__ = ["HistoryEntry", "PredictionEngine", "PredictionJob", "analyze_records"]

Selection = Literal["single", "min-rss", "failed", "insufficient-data"]


@dataclass(frozen=True)
class HistoryEntry:
    """One tuple of the fitness history H: ``<M, e, fit_V, fit_P>`` plus how fit_P was made.

    Attributes:
        epoch: e.
        fitness: fit_V, the observed fitness.
        prediction: fit_P, predicted fitness at e_pred (``None``: no successful fit).
        curve: Name of the curve that gave ``prediction``.
        params: Its fitted parameters.
        selection: ``"single"`` (one curve), ``"min-rss"`` (lowest residual among several),
            ``"failed"`` (every fit failed), ``"insufficient-data"`` (fewer than C_min).
        fits: Every fit attempted at this epoch.
    """

    epoch: float
    fitness: float
    prediction: float | None
    curve: str | None
    params: tuple[float, ...] | None
    selection: Selection
    fits: tuple[FitResult, ...] = ()


class PredictionJob:
    """Fitness history and stop decision of one candidate; the training loop consults it.

    Create through :meth:`PredictionEngine.job`. Call :meth:`record` after each validation
    and stop training when :meth:`stopped` is true; records after the decision are ignored.

    Attributes:
        candidate_id: The candidate (M).
        config: Engine parameters.
        decision: The decision once made, else ``None``.
    """

    def __init__(
        self, candidate_id: str, config: PredictionConfig, curves: Sequence[Curve] | None = None
    ) -> None:
        self.candidate_id = candidate_id
        self.config = config
        self._curves = tuple(curves) if curves is not None else config.resolved_curves()
        self._history: list[HistoryEntry] = []
        self.decision: Decision | None = None

    def __repr__(self) -> str:
        return (
            f"PredictionJob({self.candidate_id!r}, records={len(self._history)}, "
            f"decision={self.decision!r})"
        )

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """The fitness history H, one entry per recorded epoch."""
        return tuple(self._history)

    def stopped(self) -> bool:
        """Whether the engine has decided (training may stop)."""
        return self.decision is not None

    def record(self, epoch: float, fitness: float) -> Decision | None:
        """Add the fitness observed at ``epoch``, predict (Alg. 1) and analyze (Alg. 2).

        Args:
            epoch: Training epoch of the validation; strictly increasing per job.
            fitness: Observed fitness fit_V (non-finite values are kept in the history but
                not fitted).

        Returns:
            The decision once made (also on later calls), else ``None``.

        Raises:
            ValueError: ``epoch`` is not finite or not after the previous epoch.
        """
        if self.decision is not None:
            return self.decision
        e, fit_v = float(epoch), float(fitness)
        if not math.isfinite(e):
            raise ValueError(f"epoch must be finite, got {epoch!r}")
        if self._history and e <= self._history[-1].epoch:
            raise ValueError(
                f"candidate {self.candidate_id!r}: epoch {e} must be after the previous "
                f"epoch {self._history[-1].epoch}"
            )
        self._history.append(self._predict(e, fit_v))
        self.decision = self._analyze(e) or self._never_learning(e)
        return self.decision

    # -- Alg. 1 ----------------------------------------------------------------------------
    def _predict(self, e: float, fit_v: float) -> HistoryEntry:
        """Alg. 1 lines 2-9: insert h_e, fit each curve on the rescaled history, predict."""
        cfg = self.config
        r = cfg.rescale
        epochs = np.array([h.epoch for h in self._history] + [e]) * r
        values = np.array([h.fitness for h in self._history] + [fit_v]) * cfg.fitness_scale
        attempts: list[tuple[Curve, FitResult]] = []
        for curve in self._curves:
            need = cfg.first_fit_points(curve)
            if epochs.size >= need:  # line 4: |H| >= C_min (C_min - 1 in the code)
                min_points = None if cfg.variant == "paper" else need
                res = fit_curve(curve, epochs, values, max_nfev=cfg.max_nfev, min_points=min_points)
                attempts.append((curve, res))
        if not attempts:
            return HistoryEntry(e, fit_v, None, None, None, "insufficient-data")
        fits = tuple(res for _, res in attempts)
        best: tuple[float, FitResult, float] | None = None
        for curve, res in attempts:
            if not res.ok or res.params is None:
                continue
            with np.errstate(all="ignore"):
                fit_p = float(curve(cfg.e_pred * r, *res.params)) / cfg.fitness_scale  # line 8
            rss = res.rss if res.rss is not None else math.inf
            if math.isfinite(fit_p) and (best is None or rss < best[0]):
                best = (rss, res, fit_p)
        if best is None:
            return HistoryEntry(e, fit_v, None, None, None, "failed", fits)
        _, res, fit_p = best
        selection: Selection = "single" if len(self._curves) == 1 else "min-rss"
        return HistoryEntry(e, fit_v, fit_p, res.curve, res.params, selection, fits)

    # -- Alg. 2 ----------------------------------------------------------------------------
    def _analyze(self, e: float) -> Decision | None:
        """Alg. 2: decide on convergence or e_pred; ``None`` means keep training."""
        cfg = self.config
        paper = cfg.variant == "paper"
        n = cfg.n_predictions
        h_e = self._history[-1]
        if paper and e <= n * cfg.epochs_per_iteration:  # line 3
            return None
        if e >= cfg.e_pred:  # line 4: return the actual fitness fit_V
            return self._decide(e, "max-epochs", h_e.fitness, converged=False)
        fit_p = h_e.prediction  # line 5: FIT_P <- fit_P of epoch e
        if fit_p is None or not self._valid(fit_p):  # line 6 (Condition 2)
            return None
        window = self._window()
        if len(window) < n:
            return None
        preds = np.array(window, dtype=float)
        centre = float(preds.mean()) if paper else float(np.median(preds))
        band = cfg.tolerance
        if cfg.direction == "minimize":
            band = cfg.tolerance / 100.0 * abs(centre)
        if np.all(np.abs(preds - centre) <= band):  # line 7 (Condition 3)
            return self._decide(e, "converged", fit_p, converged=True)  # line 8
        return None  # line 9

    def _valid(self, prediction: float) -> bool:
        lo, hi = self.config.valid_range
        return lo <= prediction <= hi

    def _window(self) -> list[float]:
        """The last N predictions Condition 3 tests (see the module notes per variant)."""
        n = self.config.n_predictions
        if self.config.variant == "paper":
            return [h.prediction for h in self._history if h.prediction is not None][-n:]
        window: list[float] = []
        for h in self._history:
            if h.prediction is None:
                continue  # a failed fit leaves the window as it is
            if self._valid(h.prediction):
                window.append(h.prediction)
            else:
                window.clear()  # the window-clearing rule
        return window[-n:]

    def _never_learning(self, e: float) -> Decision | None:
        rule = self.config.never_learning
        if rule is None or e < rule.min_epoch or e >= self.config.e_pred:
            return None
        sign = 1.0 if self.config.direction == "maximize" else -1.0  # minimize: a ceiling
        observed = np.array([h.fitness for h in self._history], dtype=float)
        if not np.all(sign * observed[np.isfinite(observed)] <= sign * rule.floor):
            return None
        latest = self._latest_prediction()
        pred = None if latest is None else latest.prediction
        if pred is not None and not sign * pred <= sign * rule.floor:
            return None
        value = self._history[-1].fitness if pred is None else pred
        return self._decide(e, "never-learning", value, converged=False)

    def _latest_prediction(self) -> HistoryEntry | None:
        for h in reversed(self._history):
            if h.prediction is not None:
                return h
        return None

    def _decide(self, e: float, reason: StopReason, value: float, *, converged: bool) -> Decision:
        latest = self._latest_prediction()
        return Decision(
            candidate=self.candidate_id,
            stop_epoch=e,
            reason=reason,
            fitness=float(value),
            predicted_fitness=None if latest is None else latest.prediction,
            actual_fitness=self._history[-1].fitness,
            converged=converged,
            curve=None if latest is None else latest.curve,
            params=None if latest is None else latest.params,
        )


class PredictionEngine:
    """Hands out one :class:`PredictionJob` per candidate, all sharing one configuration.

    Args:
        config: Engine parameters; default: the paper's (N=3, t=0.5, E=0.5, e_pred=20,
            ``a - b^(c-x)``, accuracy in percent).
    """

    def __init__(self, config: PredictionConfig | None = None) -> None:
        self.config = config if config is not None else PredictionConfig()
        self._curves = self.config.resolved_curves()
        self._jobs: dict[str, PredictionJob] = {}

    def job(self, candidate_id: str) -> PredictionJob:
        """The job of ``candidate_id`` (created on first use)."""
        job = self._jobs.get(candidate_id)
        if job is None:
            job = PredictionJob(candidate_id, self.config, self._curves)
            self._jobs[candidate_id] = job
        return job

    @property
    def jobs(self) -> Mapping[str, PredictionJob]:
        """Jobs by candidate id."""
        return dict(self._jobs)

    def decisions(self) -> dict[str, Decision]:
        """Decisions made so far, by candidate id."""
        return {k: j.decision for k, j in self._jobs.items() if j.decision is not None}

    def analyze(self, records: Mapping[str, Iterable[tuple[float, float]]]) -> dict[str, Decision]:
        """Replay ``records`` on fresh jobs; see :func:`analyze_records`."""
        return analyze_records(records, self.config)


def analyze_records(
    records: Mapping[str, Iterable[tuple[float, float]]],
    config: PredictionConfig | None = None,
) -> dict[str, Decision]:
    """Decide on every candidate from its full training record (pure function).

    Each candidate's ``(epoch, fitness)`` pairs are sorted by epoch (a repeated epoch keeps
    its last value) and replayed through a fresh :class:`PredictionJob`, so the result equals
    the decision the incremental job reaches; records after the decision are ignored.

    Args:
        records: ``{candidate: [(epoch, fitness), ...]}``.
        config: Engine parameters (default: :class:`PredictionConfig`).

    Returns:
        ``{candidate: Decision}`` for the candidates decided so far; candidates still
        training (no decision yet) are absent.
    """
    engine = PredictionEngine(config)
    out: dict[str, Decision] = {}
    for candidate, pairs in records.items():
        by_epoch = {float(e): float(f) for e, f in pairs}
        job = engine.job(str(candidate))
        for e in sorted(by_epoch):
            if job.record(e, by_epoch[e]) is not None:
                break
        if job.decision is not None:
            out[str(candidate)] = job.decision
    return out
