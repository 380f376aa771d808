"""Parametric learning-curve families (PENGUIN, Table 2) and their least-squares fit.

Table 2 of Rorabaugh et al. (TPDS 2022), "adapted from Viering and Loog", lists the
formulas and their trend only. The paper gives no bounds or initial values except for its
default function: "the parametric function f(x) = a - b^(c-x), b >= 1 shares these
properties". For that function we use the bounds and initial values of the authors' PENGUIN
code (``CurveFit.py``: p0 = (10, 1.001, 100), bounds (0.5, 1, 0)..(102.5, inf, inf)). For
the other functions the bounds and initial values below are ours: they restrict each family
to the stated trend, for fitness in percent (increasing: accuracy in [0, 100]) and epochs
rescaled so that the first datapoint is x = 1 ("we multiply the epoch values ... by a
rescaling factor r = 1/E ... in which the first epoch value is 1", Sec. 3.2.1).

Names follow Viering and Loog (POW2, EXP3, VAP3, MMF4, WBL4, ...); decreasing variants
(for loss-like fitness) carry a ``_dec`` suffix.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import curve_fit

from streamal.errors import ConfigError, PluginError

__all__ = [
    "CURVES",
    "DEFAULT_CURVE",
    "Curve",
    "FitResult",
    "check_curve",
    "fit_curve",
    "get_curve",
    "register_curve",
    "table2_curves",
]

INF = math.inf
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
    if n < curve.n_params:
        return FitResult(
            curve.name,
            False,
            n_points=n,
            error=f"{n} usable points, {curve.n_params} needed",
        )
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


# -- Table 2 -------------------------------------------------------------------------------
# Every function is vectorised over x; parameters are scalars.
def _pow2(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.power(x, b)


def _pow3(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(x, b) + c


def _exp_base(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - np.power(b, c - x)


def _log2(x: np.ndarray, a: float, c: float) -> np.ndarray:
    return a * np.log(x) + c


def _exp3(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.exp(b * x) + c


def _vap3(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return np.exp(a + b / x + c * np.log(x))


def _mmf4(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    xd = np.power(x, d)
    return (a * b + c * xd) / (b + xd)


def _wbl4(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return c - b * np.exp(-a * np.power(x, d))


def _exp4(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return c - np.exp(-a * np.power(x, d) + b)


def _expp3(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return c - np.exp(np.power(x - b, a))


def _pow4(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return c - np.power(-a * x + b, -d)


def _ilog2(x: np.ndarray, a: float, c: float) -> np.ndarray:
    return c - a / np.log(x)


def _expd3(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return c - (c - a) * np.exp(-b * x)


def _pow2_dec(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.power(x, -b)


def _pow3_dec(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(x, -b) + c


def _log2_dec(x: np.ndarray, a: float, c: float) -> np.ndarray:
    return -a * np.log(x) + c


def _exp3_dec(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.exp(-b * x) + c


def _exp2_dec(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.exp(-b * x)


def _lin2_dec(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return -a * x + b


def table2_curves() -> tuple[Curve, ...]:
    """The 19 functions of PENGUIN's Table 2 (10 increasing, 9 decreasing)."""
    big = 1e4  # generous scale limit for loss-like (decreasing) fitness
    return (
        Curve("pow2", "a*x^b", _pow2, (10.0, 0.5), ((0.0, 0.0), (200.0, 5.0))),
        Curve(
            "pow3",
            "a*x^b + c",
            _pow3,
            (-50.0, -1.0, 50.0),
            ((-200.0, -5.0, 0.0), (0.0, 0.0, 200.0)),
        ),
        Curve(
            "exp_base",
            "a - b^(c - x)",
            _exp_base,
            (10.0, 1.001, 100.0),
            ((0.5, 1.0, 0.0), (102.5, INF, INF)),
            x_min=None,
        ),
        Curve("log2", "a*log(x) + c", _log2, (10.0, 10.0), ((0.0, -200.0), (200.0, 200.0))),
        Curve(
            "exp3",
            "a*e^(b*x) + c",
            _exp3,
            (-50.0, -0.5, 50.0),
            ((-1000.0, -10.0, 0.0), (0.0, 0.0, 200.0)),
            x_min=None,
        ),
        Curve(
            "vap3",
            "e^(a + b/x + c*log(x))",
            _vap3,
            (4.0, -1.0, 0.0),
            ((-10.0, -50.0, -5.0), (10.0, 0.0, 5.0)),
        ),
        Curve(
            "mmf4",
            "(a*b + c*x^d)/(b + x^d)",
            _mmf4,
            (0.0, 1.0, 50.0, 1.0),
            ((-200.0, 1e-6, 0.0, 1e-3), (200.0, 1e6, 200.0, 10.0)),
        ),
        Curve(
            "wbl4",
            "c - b*e^(-a*x^d)",
            _wbl4,
            (0.5, 50.0, 50.0, 1.0),
            ((0.0, 0.0, 0.0, 1e-3), (50.0, 1000.0, 200.0, 10.0)),
        ),
        Curve(
            "exp4",
            "c - e^(-a*x^d + b)",
            _exp4,
            (0.5, 4.0, 50.0, 1.0),
            ((0.0, -20.0, 0.0, 1e-3), (50.0, 20.0, 200.0, 10.0)),
        ),
        Curve(
            "expp3",
            "c - e^((x - b)^a)",
            _expp3,
            (-1.0, 0.0, 50.0),
            ((-10.0, -100.0, 0.0), (0.0, 0.5, 200.0)),
        ),
        Curve(
            "pow4",
            "c - (-a*x + b)^(-d)",
            _pow4,
            (-1.0, 1.0, 50.0, 0.5),
            ((-100.0, 1e-6, 0.0, 1e-3), (0.0, 100.0, 200.0, 10.0)),
        ),
        Curve(
            "ilog2", "c - a/log(x)", _ilog2, (10.0, 50.0), ((0.0, 0.0), (200.0, 400.0)), x_min=1.0
        ),
        Curve(
            "expd3",
            "c - (c - a)*e^(-b*x)",
            _expd3,
            (10.0, 0.5, 50.0),
            ((0.0, 0.0, 0.0), (200.0, 10.0, 200.0)),
            x_min=None,
        ),
        Curve(
            "pow2_dec",
            "a*x^(-b)",
            _pow2_dec,
            (1.0, 0.5),
            ((0.0, 0.0), (big, 5.0)),
            trend="decreasing",
        ),
        Curve(
            "pow3_dec",
            "a*x^(-b) + c",
            _pow3_dec,
            (1.0, 0.5, 0.0),
            ((0.0, 0.0, -big), (big, 5.0, big)),
            trend="decreasing",
        ),
        Curve(
            "log2_dec",
            "-a*log(x) + c",
            _log2_dec,
            (1.0, 1.0),
            ((0.0, -big), (big, big)),
            trend="decreasing",
        ),
        Curve(
            "exp3_dec",
            "a*e^(-b*x) + c",
            _exp3_dec,
            (1.0, 0.5, 0.0),
            ((0.0, 0.0, -big), (big, 10.0, big)),
            trend="decreasing",
            x_min=None,
        ),
        Curve(
            "exp2_dec",
            "a*e^(-b*x)",
            _exp2_dec,
            (1.0, 0.5),
            ((0.0, 0.0), (big, 10.0)),
            trend="decreasing",
            x_min=None,
        ),
        Curve(
            "lin2_dec",
            "-a*x + b",
            _lin2_dec,
            (0.1, 1.0),
            ((0.0, -big), (big, big)),
            trend="decreasing",
            x_min=None,
        ),
    )


DEFAULT_CURVE = "exp_base"
"""The paper's choice: f(x) = a - b^(c - x) (Sec. 4.1.4)."""

CURVES: dict[str, Curve] = {c.name: c for c in table2_curves()}
"""Registry of known curves by name; extend with :func:`register_curve`."""


def register_curve(curve: Curve, *, replace: bool = False) -> Curve:
    """Add a user-supplied curve to :data:`CURVES` after :func:`check_curve`.

    Args:
        curve: The curve to add.
        replace: Allow replacing a registered curve of the same name.

    Returns:
        The registered curve.

    Raises:
        PluginError: The name is taken (and ``replace`` is false) or the curve is malformed.
    """
    if curve.name in CURVES and not replace:
        raise PluginError(f"curve {curve.name!r} is already registered; pass replace=True")
    check_curve(curve)
    CURVES[curve.name] = curve
    return curve


def get_curve(curve: str | Curve) -> Curve:
    """Resolve a curve name from :data:`CURVES` (a :class:`Curve` is returned as is)."""
    if isinstance(curve, Curve):
        return curve
    try:
        return CURVES[curve]
    except KeyError:
        raise PluginError(
            f"unknown curve {curve!r}; registered: {', '.join(sorted(CURVES))}"
        ) from None


def check_curve(curve: Curve, x: Sequence[float] | None = None) -> None:
    """Conformance check: ``fn`` maps an array of ``x`` to finite values of the same shape.

    Evaluated at ``p0`` on ``x`` (default: 1, 1.5, ..., 40 restricted to the domain).

    Raises:
        PluginError: The curve does not satisfy the interface.
    """
    xs = np.arange(1.0, 40.5, 0.5) if x is None else np.asarray(x, dtype=float)
    if curve.x_min is not None:
        xs = xs[xs > curve.x_min]
    try:
        with np.errstate(all="ignore"):
            ys = np.asarray(curve.fn(xs, *curve.p0), dtype=float)
    except Exception as exc:  # any failure is a plugin error
        raise PluginError(f"curve {curve.name!r}: fn(x, *p0) raised {exc!r}") from exc
    if ys.shape != xs.shape:
        raise PluginError(
            f"curve {curve.name!r}: fn(x, *p0) has shape {ys.shape}, expected {xs.shape}"
        )
    if not np.all(np.isfinite(ys)):
        raise PluginError(f"curve {curve.name!r}: fn(x, *p0) is not finite on x={xs.tolist()}")
