"""Registry of named learning curves: PENGUIN's Table 2 (:mod:`.table2`) plus user curves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamal.errors import PluginError

from .fitting import Curve
from .table2 import table2_curves

__all__ = ["CURVES", "DEFAULT_CURVE", "check_curve", "get_curve", "register_curve"]

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
