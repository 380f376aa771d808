"""Putting a measured pattern on a model's input grid: unit conversion and count-conserving
rebinning (numpy only).

The grid is the simulator's input axis as ``model.json`` records it (``input.axis``, see
:meth:`streamal.simulation.simulator.Simulator.input_axis`): ``name``, ``unit``, the grid
``values``, optional ``aliases`` (other names files give the axis: ``["TOF"]``) and optional
``conversions`` from other axes, each ``{"unit": ..., "terms": [[power, coefficient], ...],
"aliases": [...]}`` meaning ``x = Σ coefficient·u^power`` for a value ``u`` on the other axis
(d-spacing → ToF: ``[[0, Zero], [1, difC], [2, difA], [-1, difB]]``).

A pattern is treated as a histogram: its bins (given edges, or halfway between its points)
hold counts (``y`` itself, or ``y × bin width`` for an intensity per unit x). Converting the
axis moves the edges and keeps the counts. Rebinning integrates that piecewise-constant
histogram over each grid bin, so counts are conserved; a grid value is the counts over the
covered part of its bin per unit x, the same kind of value a simulator computes. Grid bins the
data do not reach are filled (with 0, or the pattern's background) and the covered fraction is
reported; too little coverage is an error. A pattern whose points are the grid's own is taken
as it is (no resampling).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamal.inference.errors import PatternError
from streamal.inference.measurement import Measurement, edges_from_centres

#: Default least fraction of the grid's bins a pattern must cover.
MIN_COVERAGE = 0.5
#: Fill of uncovered grid bins: ``"background"`` (a low percentile of the covered values) or
#: ``"zero"``.
FILL_MODES = ("background", "zero")
#: The percentile of the covered values that stands for the background.
BACKGROUND_PERCENTILE = 10.0
#: Points this close to the grid's, in units of the grid step, are the grid's own.
SAME_GRID_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Conversion:
    """``x = Σ c·u^p`` from another axis ``u`` to the grid's."""

    name: str
    unit: str
    terms: tuple[tuple[float, float], ...]

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        out = np.zeros_like(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            for power, coef in self.terms:
                out = out + coef * u**power
        return out


@dataclass(frozen=True)
class InputGrid:
    """A model's input axis: the grid's points and bin edges, and conversions onto it.

    Attributes:
        name: Axis name (``"tof"``).
        unit: Its unit (``"µs"``).
        values: ``(L,)`` grid points.
        edges: ``(L + 1,)`` grid bin edges (:func:`edges_from_centres`).
        conversions: Other axes a pattern may be given on, by name.
        aliases: Lower-case names files use → the axis (the grid's own or a conversion's).
    """

    name: str
    unit: str
    values: np.ndarray
    edges: np.ndarray
    conversions: dict[str, Conversion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputGrid:
        """The grid of ``model.json``'s ``input.axis``.

        Raises:
            PatternError: The axis is malformed (no increasing ``values``, bad conversion).
        """
        try:
            values = np.asarray(data["values"], dtype=np.float64).reshape(-1)
            name = str(data["name"])
            aliases = {a.lower(): name for a in [name, *map(str, data.get("aliases") or [])]}
            conversions: dict[str, Conversion] = {}
            for key, conv in (data.get("conversions") or {}).items():
                terms = tuple((float(p), float(c)) for p, c in conv["terms"])
                conversions[str(key)] = Conversion(str(key), str(conv.get("unit", "")), terms)
                for alias in [str(key), *map(str, conv.get("aliases") or [])]:
                    aliases.setdefault(alias.lower(), str(key))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PatternError(f"model.json: input.axis is malformed ({exc})") from None
        if len(values) < 2 or not (np.diff(values) > 0).all():
            raise PatternError("model.json: input.axis.values must be at least 2 increasing values")
        unit = str(data.get("unit", ""))
        return cls(name, unit, values, edges_from_centres(values), conversions, aliases)

    @property
    def names(self) -> list[str]:
        """The axes a pattern may be on: the grid's own first, then the conversions'."""
        return [self.name, *self.conversions]

    def axis_named(self, unit: str) -> str | None:
        """The axis (the grid's own or a conversion's) a file's unit name means, or ``None``."""
        return self.aliases.get(unit.lower())

    def describe(self) -> str:
        """``tof 1360–18894 µs (2806 points)``."""
        lo, hi = self.values[0], self.values[-1]
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} {lo:.6g}–{hi:.6g}{unit} ({len(self.values)} points)"

    def to_grid_axis(self, x: np.ndarray, unit: str) -> np.ndarray:
        """Positions ``x`` on axis ``unit`` (a name or alias) as positions on the grid's axis.

        Raises:
            PatternError: ``unit`` is not an axis of this grid, or the conversion does not
                increase over ``x``.
        """
        axis = self.axis_named(unit)
        if axis is None:
            raise PatternError(
                f"x unit {unit!r} is not one this model reads ({', '.join(self.names)})"
            )
        if axis == self.name:
            return np.asarray(x, dtype=np.float64)
        out = self.conversions[axis](x)
        if not (np.isfinite(out).all() and (np.diff(out) > 0).all()):
            raise PatternError(
                f"x values on {unit!r} ({float(np.min(x)):g}–{float(np.max(x)):g}) do not map "
                f"increasingly onto {self.name}; are they really {unit}?"
            )
        return out


def coverage_of(edges: np.ndarray, grid_edges: np.ndarray) -> float:
    """Fraction of the grid's bins covered by the span of ``edges`` (bin by bin)."""
    lo, hi = float(edges[0]), float(edges[-1])
    covered = np.clip(np.minimum(grid_edges[1:], hi) - np.maximum(grid_edges[:-1], lo), 0, None)
    return float(np.mean(covered / np.diff(grid_edges)))


def rebin(
    edges: np.ndarray, counts: np.ndarray, grid_edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate a histogram over other bins, conserving counts.

    The counts are spread evenly within each source bin (a piecewise-constant density); a
    target bin gets the counts of the parts of the source bins it overlaps.

    Args:
        edges: ``(n + 1,)`` increasing source bin edges.
        counts: ``(n,)`` counts per source bin.
        grid_edges: ``(m + 1,)`` increasing target bin edges.

    Returns:
        ``(counts, covered)``: ``(m,)`` counts per target bin and ``(m,)`` the length of each
        target bin that the source covers (0 outside the data).
    """
    edges = np.asarray(edges, dtype=np.float64)
    grid_edges = np.asarray(grid_edges, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=np.float64))])
    at = np.interp(grid_edges, edges, cumulative)  # constant beyond the ends: nothing added
    lo, hi = edges[0], edges[-1]
    covered = np.clip(np.minimum(grid_edges[1:], hi) - np.maximum(grid_edges[:-1], lo), 0, None)
    return np.diff(at), covered


@dataclass(frozen=True)
class PlacedPattern:
    """A pattern on a model's grid.

    Attributes:
        values: ``(L,)`` the pattern on the grid, intensity per unit x (float64).
        coverage: Fraction of the grid's bins the data covered (1.0 without an axis).
        unit: The axis the pattern was read on (``None`` without an axis).
        resampled: Whether it was rebinned (``False``: on the grid's own points already).
        covered: ``(L,)`` fraction of each grid bin the data cover (the counts a bin holds
            are ``values × bin width × covered``; 0: a filled bin).
    """

    values: np.ndarray
    coverage: float
    unit: str | None
    resampled: bool
    covered: np.ndarray | None = None


def _unit_of(m: Measurement, grid: InputGrid, unit: str | None) -> str:
    """The axis ``m`` is on: given (it must be one of the grid's), else the reader's if the
    grid knows it, else the one under which the data cover most of the grid."""
    if unit:
        axis = grid.axis_named(unit)
        if axis is None:
            raise PatternError(
                f"x unit {unit!r} is not one this model reads ({', '.join(grid.names)})"
            )
        return axis
    if m.unit and grid.axis_named(m.unit) is not None:
        return str(grid.axis_named(m.unit))
    edges = m.bin_edges()
    best, best_cover = grid.name, -1.0
    for name in grid.names:
        try:
            cover = coverage_of(grid.to_grid_axis(edges, name), grid.edges)
        except PatternError:
            continue
        if cover > best_cover:
            best, best_cover = name, cover
    return best


def place_on_grid(
    m: Measurement,
    grid: InputGrid | None,
    length: int,
    *,
    unit: str | None = None,
    min_coverage: float = MIN_COVERAGE,
    fill: str = "background",
) -> PlacedPattern:
    """``m`` as the model's input: converted to the grid's axis and rebinned onto it.

    Args:
        m: The pattern.
        grid: The model's input axis; ``None``: the pattern must have ``length`` values.
        length: Points of the model's input.
        unit: The axis ``m.x`` is on, overriding the reader's (``None``: the reader's, else
            the axis under which the data cover most of the grid).
        min_coverage: Least fraction of the grid's bins the data must cover.
        fill: Uncovered bins: ``"background"`` or ``"zero"``.

    Raises:
        PatternError: The data cover less than ``min_coverage`` of the grid, the unit is not
            one the model reads, or (without an axis) the length differs.
    """
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    m = m.checked()
    if grid is None or m.x is None:
        if len(m.y) != length:
            where = "the model has no input axis" if grid is None else "the pattern has no x"
            raise PatternError(
                f"{len(m.y)} values; {where}, so a pattern must have exactly {length} values"
            )
        return PlacedPattern(m.y.copy(), 1.0, None, False, np.ones(len(m.y)))
    chosen = _unit_of(m, grid, unit)
    x = grid.to_grid_axis(m.x, chosen)
    edges = grid.to_grid_axis(m.bin_edges(), chosen)
    if (
        len(x) == len(grid.values)
        and np.max(np.abs(x - grid.values) / np.diff(grid.edges)) <= SAME_GRID_TOLERANCE
    ):  # on the grid's points already: no resampling
        as_is = not m.counts and chosen == grid.name  # else: its bins' counts per grid unit
        values = m.y.copy() if as_is else m.bin_counts() / np.diff(edges)
        return PlacedPattern(values, 1.0, chosen, False, np.ones(len(values)))
    counts, covered = rebin(edges, m.bin_counts(), grid.edges)
    fraction = covered / np.diff(grid.edges)
    coverage = float(np.mean(fraction))
    if coverage < min_coverage:
        lo, hi = float(np.min(m.x)), float(np.max(m.x))
        raise PatternError(
            f"the data span {chosen} {lo:.6g}–{hi:.6g}, {coverage:.0%} of the model's grid "
            f"({grid.describe()}); at least {min_coverage:.0%} is needed"
            + (
                f"; if the x values are not {chosen}, give their unit ({', '.join(grid.names)})"
                if not unit and len(grid.names) > 1
                else ""
            )
        )
    inside = covered > 0
    values = np.zeros(len(grid.values))
    values[inside] = counts[inside] / covered[inside]
    if fill == "background" and (~inside).any():
        values[~inside] = np.percentile(values[inside], BACKGROUND_PERCENTILE)
    return PlacedPattern(values, coverage, chosen, True, fraction)
