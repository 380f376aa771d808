"""One measured pattern as a reader returns it: values, their x axis, and what the values mean."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from streamal.inference.errors import PatternError

#: Relative spread of ``x[i+1]/x[i]`` below which points count as log-spaced (constant Δx/x).
LOG_SPACED_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Measurement:
    """A 1-D pattern read from a file (or given in Python).

    Attributes:
        y: ``(n,)`` intensities.
        x: ``(n,)`` increasing positions (bin centres or points), or ``None``: the values
            are already on the model's grid, one per grid point.
        edges: ``(n + 1,)`` increasing bin edges when the file gives them (a histogram);
            ``None``: derived from ``x`` (:func:`edges_from_centres`).
        e: ``(n,)`` standard errors, if the file has them (kept for the caller; the model
            does not use them).
        unit: The axis ``x`` is on, by the name a model's input axis uses (``"tof"``,
            ``"d"``); ``None``: unknown, found by which reading covers the model's grid.
        counts: ``True``: each ``y`` is the counts of its bin (a histogram); ``False``:
            intensity per unit of ``x`` (a density, as a simulator's pattern is).
        label: Which pattern of its file (``"bank 1"``), for files that hold several.
        source: Where it was read from.
    """

    y: np.ndarray
    x: np.ndarray | None = None
    edges: np.ndarray | None = None
    e: np.ndarray | None = None
    unit: str | None = None
    counts: bool = False
    label: str = ""
    source: str = ""

    def checked(self) -> Measurement:
        """This pattern as float64 arrays, points with a non-finite x or y dropped, in
        increasing x.

        Raises:
            PatternError: Empty, mismatched lengths, x not strictly increasing (after
                sorting: repeated positions), or non-finite values without an x axis.
        """
        y = np.asarray(self.y, dtype=np.float64).reshape(-1)
        e = None if self.e is None else np.asarray(self.e, dtype=np.float64).reshape(-1)
        if e is not None and len(e) != len(y):
            raise PatternError(f"{len(y)} intensities but {len(e)} errors")
        if self.x is None:
            if not len(y):
                raise PatternError("no data points")
            if not np.isfinite(y).all():
                raise PatternError(f"{int((~np.isfinite(y)).sum())} intensities are not finite")
            return replace(self, y=y, e=e, edges=None)
        x = np.asarray(self.x, dtype=np.float64).reshape(-1)
        if len(x) != len(y):
            raise PatternError(f"{len(x)} x values but {len(y)} intensities")
        edges = None if self.edges is None else np.asarray(self.edges, dtype=np.float64)
        if edges is not None and len(edges) != len(y) + 1:
            raise PatternError(f"{len(edges)} bin edges for {len(y)} intensities (need n + 1)")
        keep = np.isfinite(x) & np.isfinite(y)
        if edges is not None and not keep.all():  # a histogram keeps its bins: zero the gaps
            y = np.where(np.isfinite(y), y, 0.0)
            keep = np.isfinite(x)
        if edges is None and not keep.all():
            x, y = x[keep], y[keep]
            e = None if e is None else e[keep]
        if len(x) < 2:
            raise PatternError(f"{len(x)} finite data point(s); need at least 2")
        if edges is not None:
            if not (np.isfinite(edges).all() and (np.diff(edges) > 0).all()):
                raise PatternError("bin edges are not finite and strictly increasing")
            return replace(self, x=x, y=y, e=e, edges=edges)
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        e = None if e is None else e[order]
        if not (np.diff(x) > 0).all():
            i = int(np.flatnonzero(np.diff(x) <= 0)[0])
            raise PatternError(f"x value {x[i]:g} appears twice; positions must differ")
        return replace(self, x=x, y=y, e=e)

    def bin_edges(self) -> np.ndarray:
        """``(n + 1,)`` bin edges: the given ones, else :func:`edges_from_centres`."""
        if self.edges is not None:
            return np.asarray(self.edges, dtype=np.float64)
        if self.x is None:
            raise PatternError("a pattern without x values has no bins")
        return edges_from_centres(np.asarray(self.x, dtype=np.float64))

    def bin_counts(self) -> np.ndarray:
        """Counts per bin: ``y`` for a histogram, ``y · width`` for a density."""
        y = np.asarray(self.y, dtype=np.float64)
        return y if self.counts else y * np.diff(self.bin_edges())


def log_spaced(x: np.ndarray) -> bool:
    """Whether positive, increasing ``x`` has a constant ratio between neighbours."""
    if len(x) < 3 or x[0] <= 0:
        return False
    step = np.diff(np.log(x))
    return bool(np.ptp(step) <= LOG_SPACED_TOLERANCE * abs(float(step.mean())))


def edges_from_centres(x: np.ndarray) -> np.ndarray:
    """Bin edges around increasing points: halfway between neighbours, in log space for
    log-spaced points (constant Δx/x, as ToF grids are) and linearly otherwise; the outer edges
    half a step beyond the ends.

    Args:
        x: ``(n,)`` strictly increasing points, ``n ≥ 2``.

    Returns:
        ``(n + 1,)`` edges.
    """
    x = np.asarray(x, dtype=np.float64)
    if log_spaced(x):
        return np.exp(edges_from_centres(np.log(x)))
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
