"""The refinement's forward model: one class's pattern as a function of its free cell
parameters and a zero shift, built on the simulator's own per-class objects.

It reuses what :class:`~streamal_diffraction.simulator.TofDiffractionSimulator` keeps per class
(the merged reflection groups with their ``|F|²`` coefficients, the metric keys, the peak-shape
table), so a pattern costs what one ``simulate()`` row costs (~1 ms on the paper's grid) and
equals it at zero shift. The zero shift moves every peak by the same time, ``ToF(d) + zero``
(µs, on top of the instrument's ``Zero``), before the peaks are rendered: nothing is
interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamal.errors import ParameterError
from streamal_diffraction.cell import (
    CELL_PARAMS,
    hkl_limits,
    reciprocal_metric,
    valid_cells,
)
from streamal_diffraction.simulator import TofDiffractionSimulator, _max_lengths
from streamal_diffraction.structures import ReflectionGroups, reflection_groups


@dataclass(frozen=True)
class Ticks:
    """The reflections of a refined cell that reach the grid, one per peak (merged by d).

    Attributes:
        tof: ``(n,)`` peak positions (µs), zero shift included.
        d: ``(n,)`` d-spacings (Å).
        hkl: ``(n, 3)`` a representative reflection of each peak.
        intensity: ``(n,)`` integrated intensities (simulator units, before the scale).
    """

    tof: np.ndarray
    d: np.ndarray
    hkl: np.ndarray
    intensity: np.ndarray


class ClassPattern:
    """Calculated pattern of one class of a simulator: ``pattern(free, zero_shift)``.

    Args:
        simulator: The simulator whose grid, instrument, profile and structure templates are
            used (the pattern to refine must be on its grid).
        class_name: One of ``simulator.space.class_names``.

    Raises:
        ParameterError: Unknown class.
    """

    def __init__(self, simulator: TofDiffractionSimulator, class_name: str) -> None:
        space = simulator.space
        self.class_index = space.class_index(class_name)
        self.class_name = class_name
        self.space = space
        self.class_space = space.classes[self.class_index]
        self.free: tuple[str, ...] = self.class_space.free
        model = simulator._model(self.class_index)
        self._template = simulator._templates[self.class_index]
        self.metric = model.metric
        self.table = model.table
        self.instrument = model.table.instrument
        self.grid = model.table.grid
        self._d_low = model.d_low
        self._groups: ReflectionGroups = model.groups
        self._lengths = np.array(_max_lengths(self.class_space))

    @property
    def size(self) -> int:
        """Grid points."""
        return self.grid.size

    def cell(self, free: Sequence[float]) -> np.ndarray:
        """The six cell parameters ``(6,)`` from the free ones (tied ones follow)."""
        return self.space.complete(self.class_index, np.asarray(free, dtype=np.float64))[0]

    def free_values(self, cell: Sequence[float]) -> np.ndarray:
        """The free parameters of a six-parameter cell, each the mean of itself and the
        parameters tied to it (so any cell is projected onto the class's constraints)."""
        cell = np.asarray(cell, dtype=np.float64).reshape(-1)
        if cell.shape != (len(CELL_PARAMS),):
            raise ParameterError(
                f"cell must have the six values {list(CELL_PARAMS)}, got {cell.shape[0]}"
            )
        out = []
        for p in self.free:
            tied = [q for q, src in self.class_space.tied.items() if src == p]
            out.append(float(np.mean([cell[CELL_PARAMS.index(q)] for q in (p, *tied)])))
        return np.array(out)

    def _groups_for(self, cell: np.ndarray) -> ReflectionGroups:
        """The class's reflection groups, extended when a length exceeds the space's bounds
        (the groups hold every reflection up to the longest length the space allows)."""
        if (cell[:3] <= self._lengths).all():
            return self._groups
        self._lengths = np.maximum(self._lengths, 1.05 * cell[:3])
        limits = hkl_limits(tuple(self._lengths), self._d_low)  # type: ignore[arg-type]
        self._groups = reflection_groups(self._template, limits)
        return self._groups

    def peaks(
        self, cell: np.ndarray, zero_shift: float = 0.0
    ) -> tuple[ReflectionGroups, np.ndarray, np.ndarray, np.ndarray]:
        """``(groups, group index, 1/d², fractional grid position)`` of the peaks on the grid.

        Raises:
            ParameterError: A cell that is not a cell (non-positive length, ``det G ≤ 0``).
        """
        if not valid_cells(cell[None, :])[0]:
            raise ParameterError(
                f"{self.class_name}: cell {np.round(cell, 6).tolist()} is not a valid cell"
            )
        groups = self._groups_for(cell)
        coef = self.metric.coefficients(reciprocal_metric(cell[None, :]))[0]
        inv_d2 = groups.keys @ coef
        low = 1.0 / self.instrument.d_spacing(self.table.tof_range[1] - zero_shift) ** 2
        high = 1.0 / self.instrument.d_spacing(self.table.tof_range[0] - zero_shift) ** 2
        group = np.flatnonzero((inv_d2 >= 0.999 * low) & (inv_d2 <= 1.001 * high))
        x = inv_d2[group]
        position = self.grid.index(self.instrument.tof(1.0 / np.sqrt(x)) + zero_shift)
        keep = (position >= self.table.j_min) & (position < self.table.j_max + 1)
        return groups, group[keep], x[keep], position[keep]

    def shift_rate(self, free: Sequence[float], i: int, step: float) -> float:
        """Largest ``|∂ ln d/∂ free[i]|`` over the peaks on the grid (per unit of the
        parameter), by a central difference of ``±step``: how fast the parameter moves peaks,
        relative to their positions (so in units of the log-spaced grid)."""
        free = np.asarray(free, dtype=np.float64)
        groups, group, _, _ = self.peaks(self.cell(free))
        ln_x = []
        for sign in (1.0, -1.0):
            trial = free.copy()
            trial[i] += sign * step
            coef = self.metric.coefficients(reciprocal_metric(self.cell(trial)[None, :]))[0]
            ln_x.append(np.log(groups.keys[group] @ coef))
        rate = np.abs(ln_x[0] - ln_x[1]) / (4.0 * step)  # ln d = −ln(1/d²)/2
        return float(rate.max(initial=0.0))

    def pattern(self, free: Sequence[float], zero_shift: float = 0.0) -> np.ndarray:
        """The pattern ``(grid,)`` float64 (simulator units, scale 1, no background)."""
        groups, group, inv_d2, position = self.peaks(self.cell(free), zero_shift)
        intensity = groups.f_squared(group, inv_d2) / (inv_d2 * inv_d2)
        sample = np.zeros(len(group), dtype=np.int64)
        return self.table.render(sample, position, intensity, 1)[0].astype(np.float64)

    def ticks(self, free: Sequence[float], zero_shift: float = 0.0) -> Ticks:
        """The peaks of the cell that lie on the grid, in increasing ToF."""
        groups, group, inv_d2, _ = self.peaks(self.cell(free), zero_shift)
        d = 1.0 / np.sqrt(inv_d2)
        tof = self.instrument.tof(d) + zero_shift
        grid = self.grid.points()
        on = (tof >= grid[0]) & (tof <= grid[-1])
        order = np.argsort(tof[on], kind="stable")
        f2 = groups.f_squared(group[on], inv_d2[on])
        return Ticks(
            tof=tof[on][order],
            d=d[on][order],
            hkl=groups.hkl[group[on]][order],
            intensity=(f2 * d[on] ** 4)[order],
        )
