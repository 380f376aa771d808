"""Helpers for model plugins: regression targets scaled by the space, metric names with units.

A space's classes may have different free parameters (cubic: ``a``; tetragonal: ``a, c``) and
tie the others (``b ← a``, ``alpha ← 90``). :func:`regression_scale` picks one target per
parameter that is free in some class and scales it by the union of its range over the
classes, so every target lies in [0, 1]; :func:`free_mask` says which targets are free in
which class. :func:`metric_name` names a per-parameter metric with the parameter's unit from
the space (``mae_a_A``, ``mae_alpha_deg``; ``mae_centre`` for a parameter without a unit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamal.data.space import ParameterSpace, unit_suffix


def regression_scale(space: ParameterSpace) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, lows and highs of a space's regression targets.

    The targets are the parameters free in at least one class, in ``param_names`` order. A
    target's range is the union over the classes of its bounds, the bounds of the parameter
    it is tied to, or its tied constant; a range of zero width becomes ``(low, low + 1)``.
    ``(value - low) / (high - low)`` then lies in [0, 1] for every sample of the space.

    Args:
        space: The run's parameter space.

    Returns:
        ``(names, lows, highs)``: the target names and two float64 arrays of their length.
    """
    names = [p for p in space.param_names if any(p in c.free for c in space.classes)]
    lows, highs = [], []
    for p in names:
        values: list[float] = []
        for c in space.classes:
            if p in c.bounds:
                values += list(c.bounds[p])
            elif isinstance(c.tied.get(p), str):
                values += list(c.bounds[c.tied[p]])
            elif p in c.tied:
                values.append(float(c.tied[p]))
        lo, hi = min(values), max(values)
        lows.append(lo)
        highs.append(hi if hi > lo else lo + 1.0)
    return names, np.array(lows, dtype=np.float64), np.array(highs, dtype=np.float64)


def free_mask(space: ParameterSpace, targets: Sequence[str]) -> np.ndarray:
    """``mask[k, j]``: target ``targets[j]`` is a free parameter of class ``k``.

    Args:
        space: The run's parameter space.
        targets: Target names, e.g. the first item of :func:`regression_scale`.

    Returns:
        A bool array ``(len(space.classes), len(targets))``.
    """
    return np.array([[p in c.bounds for p in targets] for c in space.classes], dtype=bool).reshape(
        len(space.classes), len(targets)
    )


def metric_name(space: ParameterSpace, stat: str, param: str) -> str:
    """The name of a per-parameter metric: ``stat_param_unit``, or ``stat_param`` without unit.

    Args:
        space: The space that gives the parameter's unit (:attr:`ParameterSpace.units`).
        stat: What is measured, e.g. ``"mae"``.
        param: A parameter of the space.

    Example:
        ``metric_name(space, "mae", "a")`` is ``"mae_a_A"`` when ``space.units["a"] == "Å"``.
    """
    suffix = unit_suffix(space.unit(param))
    return f"{stat}_{param}_{suffix}" if suffix else f"{stat}_{param}"
