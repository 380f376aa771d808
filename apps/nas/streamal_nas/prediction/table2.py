"""Parametric learning-curve families of PENGUIN's Table 2, with bounds for fitting.

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

import numpy as np

from .fitting import Curve

__all__ = ["table2_curves"]

INF = math.inf


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
