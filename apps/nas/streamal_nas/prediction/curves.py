"""Registry of named learning curves: PENGUIN's Table 2 (:mod:`.table2`), the two default
curves of the authors' code that Table 2 lacks, and user curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from streamal.errors import PluginError

from .fitting import Curve
from .table2 import table2_curves

__all__ = [
    "CODE_CURVE",
    "CURVES",
    "DEFAULT_CURVE",
    "MINIMIZE_CURVE",
    "check_curve",
    "get_curve",
    "register_curve",
]

DEFAULT_CURVE = "exp_base"
"""The paper's choice: f(x) = a - b^(c - x) (Sec. 4.1.4), with a <= 102.5."""

CODE_CURVE = "exp_base_a200"
"""The same function with the bounds of the authors' 2022 code (a <= 200)."""

MINIMIZE_CURVE = "exp_base_dec"
"""Its mirror for loss-like fitness: f(x) = a + b^(c - x), the authors' ``lossDefaultFn``."""


def _exp_base(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - np.power(b, c - x)


def _exp_base_dec(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a + np.power(b, c - x)


def code_curves() -> tuple[Curve, ...]:
    """The default curves of the authors' code that Table 2 does not list.

    * ``exp_base_a200``: ``a - b^(c - x)`` with the p0 and bounds of the code's command line
      (``PENGUIN_Main.py``: p0 "10,1.001,100", bounds "0.5,1.0,0.0" .. "200,inf,inf").
    * ``exp_base_dec``: ``a + b^(c - x)``, b >= 1 (``FunctionIndex.lossDefaultFn``), the
      paper's function mirrored about its asymptote a, for a decreasing fitness such as a
      loss. The code gives it no bounds; ours keep the asymptote in [0, 1e4] and leave c free
      (c >= 0 would force an excess over a of at least 1/b at x = 1, too large for losses
      below 1).
    """
    inf = math.inf
    return (
        Curve(
            CODE_CURVE,
            "a - b^(c - x)",
            _exp_base,
            (10.0, 1.001, 100.0),
            ((0.5, 1.0, 0.0), (200.0, inf, inf)),
            x_min=None,
        ),
        Curve(
            MINIMIZE_CURVE,
            "a + b^(c - x)",
            _exp_base_dec,
            (0.0, 1.1, 0.0),
            ((0.0, 1.0, -inf), (1e4, inf, inf)),
            trend="decreasing",
            x_min=None,
        ),
    )


CURVES: dict[str, Curve] = {c.name: c for c in (*table2_curves(), *code_curves())}
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
