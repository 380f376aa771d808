"""A parametric learning curve and its bounded least-squares fit (``scipy.optimize.curve_fit``).

The curves themselves (PENGUIN's Table 2) are in :mod:`.table2`; the registry of named
curves is in :mod:`.curves`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import curve_fit

from streamal.errors import ConfigError

__all__ = ["Curve", "FitResult", "Trend", "fit_curve"]

Trend = Literal["increasing", "decreasing"]


@dataclass(frozen=True)
class Curve:
    """A parametric function ``fn(x, *params)`` with bounds and initial values for fitting.

    Attributes:
        name: Registry key.
        formula: Human-readable formula in ``x`` and the parameter letters.
        fn: Vectorised ``fn(x: ndarray, *params) -> ndarray``.
        p0: Initial parameter values passed to ``curve_fit``.
        bounds: ``(lower, upper)`` parameter bounds passed to ``curve_fit``.
        trend: ``"increasing"`` (accuracy-like) or ``"decreasing"`` (loss-like).
        x_min: Only points with ``x > x_min`` are fitted (``None``: all points); e.g. 0 for
            functions of ``log(x)`` or ``x**b``.
    """

    name: str
    formula: str
    fn: Callable[..., np.ndarray]
    p0: tuple[float, ...]
    bounds: tuple[tuple[float, ...], tuple[float, ...]]
    trend: Trend = "increasing"
    x_min: float | None = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        n = len(self.p0)
        if n == 0 or len(lo) != n or len(hi) != n:
            raise ConfigError(
                f"curve {self.name!r}: p0 and both bounds need one value per parameter, got "
                f"p0={self.p0}, bounds={self.bounds}"
            )
        for i, (p, low, high) in enumerate(zip(self.p0, lo, hi, strict=True)):
            if not low < high or not low <= p <= high:
                raise ConfigError(
                    f"curve {self.name!r}: parameter {i} needs lower < upper and p0 within "
                    f"them, got p0={p}, bounds=({low}, {high})"
                )
        if self.trend not in ("increasing", "decreasing"):
            raise ConfigError(
                f"curve {self.name!r}: trend must be 'increasing' or 'decreasing', "
                f"got {self.trend!r}"
            )

    @property
    def n_params(self) -> int:
        """Degrees of freedom; PENGUIN's C_min for this function."""
        return len(self.p0)

    def __call__(self, x: np.ndarray | float, *params: float) -> np.ndarray:
        """Evaluate the function at ``x`` (rescaled epochs)."""
        return self.fn(np.asarray(x, dtype=float), *params)


@dataclass(frozen=True)
class FitResult:
    """Outcome of fitting one curve; failures are recorded, never raised.

    Attributes:
        curve: Name of the fitted curve.
        ok: Whether ``curve_fit`` returned finite parameters.
        params: Fitted parameters (``None`` when the fit failed).
        rss: Residual sum of squares on the fitted points (``None`` when failed).
        n_points: Number of datapoints used.
        error: Why the fit failed (``None`` when ok).
    """

    curve: str
    ok: bool
    params: tuple[float, ...] | None = None
    rss: float | None = None
    n_points: int = 0
    error: str | None = None


def fit_curve(
    curve: Curve,
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    max_nfev: int | None = None,
    min_points: int | None = None,
) -> FitResult:
    """Fit ``curve`` to ``(x, y)`` with ``scipy.optimize.curve_fit`` (bounds, p0, max_nfev).

    Points outside the curve's domain (``x <= curve.x_min``) or with non-finite values are
    left out. Any failure (too few points, no convergence within ``max_nfev`` evaluations,
    non-finite model values, an exception from ``curve.fn``) gives ``ok=False`` with the
    reason in ``error``.

    Args:
        curve: The parametric function.
        x: Rescaled epochs.
        y: Fitness values.
        max_nfev: Limit on function evaluations per fit (``None``: SciPy's default).
        min_points: Fewest usable points to fit (``None``: the curve's number of
            parameters). Fewer points than parameters give an underdetermined fit, which
            SciPy's bounded solver accepts; the authors' code makes its first fit so.

    Returns:
        The fit outcome.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        return FitResult(curve.name, False, error=f"x has {xa.size} values, y has {ya.size}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    if curve.x_min is not None:
        keep &= xa > curve.x_min
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    needed = curve.n_params if min_points is None else max(1, min_points)
    if n < needed:
        return FitResult(curve.name, False, n_points=n, error=f"{n} usable points, {needed} needed")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            popt, _ = curve_fit(
                curve.fn, xa, ya, p0=curve.p0, bounds=curve.bounds, max_nfev=max_nfev
            )
            resid = curve.fn(xa, *popt) - ya
        rss = float(np.sum(resid * resid))
    except Exception as exc:  # any failure is a failed fit, by contract
        return FitResult(curve.name, False, n_points=n, error=f"{type(exc).__name__}: {exc}")
    if not (np.all(np.isfinite(popt)) and math.isfinite(rss)):
        return FitResult(curve.name, False, n_points=n, error="non-finite parameters or fit")
    return FitResult(curve.name, True, tuple(float(p) for p in popt), rss, n)
