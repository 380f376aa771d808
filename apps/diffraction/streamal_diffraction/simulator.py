"""The ``diffraction-tof`` simulator plugin: ToF neutron powder patterns of any cell, of the
built-in BaTiO₃ structures or of materials read from CIF files.

Pattern model (GSAS-II TOF conventions, background 0, no extinction or absorption)::

    y(t) = Σ_hkl |F_hkl|² · d⁴ · P(t − ToF(d_hkl))

summed over every reflection of the full sphere (so multiplicities are implicit), ``F`` in fm
with Debye–Waller factors (:mod:`~streamal_diffraction.structures`), ``d`` in Å, ``P`` the unit
area peak shape in µs⁻¹ (:mod:`~streamal_diffraction.profile`). The overall scale is 1, so a
pattern is in fm²·Å⁴·µs⁻¹; strong peaks reach O(10²–10³). Patterns are raw intensities:
min-max scaling is the model's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from streamal.data.space import ClassSpace
from streamal.errors import ParameterError
from streamal.simulation.simulator import Simulator
from streamal_diffraction.cell import (
    CELL_PARAMS,
    METRIC_KEYS,
    hkl_limits,
    reciprocal_metric,
    reduced_determinant,
    valid_cells,
)
from streamal_diffraction.cif import load_materials
from streamal_diffraction.instprm import InstrumentOptions
from streamal_diffraction.profile import ProfileTable, profile_table
from streamal_diffraction.spaces import DEFAULT_CLASSES, material_space, parameter_space
from streamal_diffraction.structures import (
    TEMPLATES,
    ReflectionGroups,
    Template,
    reflection_groups,
)

_CHUNK = 32  # samples rendered together (bounds temporary memory to ~50 MB)


@dataclass(frozen=True)
class ReflectionList:
    """Reflections of one cell whose peaks reach the grid (merged by equal d).

    Attributes:
        hkl: ``(n, 3)`` a representative reflection of each peak.
        d: ``(n,)`` d-spacings (Å).
        tof: ``(n,)`` peak positions (µs).
        multiplicity: ``(n,)`` reflections merged into each peak.
        f_squared: ``(n,)`` summed ``|F|²`` with Debye–Waller factors (fm²).
        intensity: ``(n,)`` integrated intensities ``f_squared · d⁴``.
    """

    hkl: np.ndarray
    d: np.ndarray
    tof: np.ndarray
    multiplicity: np.ndarray
    f_squared: np.ndarray
    intensity: np.ndarray


class _ClassModel:
    """Everything about one class that does not depend on the cell."""

    def __init__(self, space: ClassSpace, template: Template, table: ProfileTable) -> None:
        self.system = template.system
        self.table = table
        self.metric = METRIC_KEYS[self.system]
        low_tof, high_tof = table.tof_range
        self.d_low = float(table.instrument.d_spacing(low_tof))
        self.d_high = float(table.instrument.d_spacing(high_tof))
        limits = hkl_limits(_max_lengths(space), self.d_low)
        self.groups: ReflectionGroups = reflection_groups(template, limits)

    def peaks(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Flat ``(sample, group, 1/d², position)`` of the peaks reaching the grid."""
        coef = self.metric.coefficients(reciprocal_metric(cells))  # (n, K)
        keys = self.groups.keys
        inv_d2 = coef[:, :1] * keys[None, :, 0]
        for k in range(1, keys.shape[1]):
            inv_d2 += coef[:, k : k + 1] * keys[None, :, k]
        # A small margin; the exact cut is on the grid position below.
        mask = (inv_d2 >= 0.999 / self.d_high**2) & (inv_d2 <= 1.001 / self.d_low**2)
        sample, group = np.nonzero(mask)
        x = inv_d2[sample, group]
        position = self.table.grid.index(self.table.instrument.tof(1.0 / np.sqrt(x)))
        keep = (position >= self.table.j_min) & (position < self.table.j_max + 1)
        return sample[keep], group[keep], x[keep], position[keep]

    def patterns(self, cells: np.ndarray) -> np.ndarray:
        """Patterns ``(n, grid)`` float32 of valid cells ``(n, 6)``."""
        sample, group, inv_d2, position = self.peaks(cells)
        intensity = self.groups.f_squared(group, inv_d2) / (inv_d2 * inv_d2)
        return self.table.render(sample, position, intensity, len(cells))


def _max_lengths(space: ClassSpace) -> tuple[float, float, float]:
    """Largest a, b, c a class allows (free bound, tied source's bound, or constant)."""
    out = []
    for p in ("a", "b", "c"):
        if p in space.bounds:
            out.append(space.bounds[p][1])
        else:
            src = space.tied[p]
            out.append(space.bounds[src][1] if isinstance(src, str) else float(src))
    return out[0], out[1], out[2]


class TofDiffractionSimulator(Simulator):
    """Time-of-flight neutron powder patterns of BaTiO₃-like cells (GSAS-II TOF profile;
    default NOMAD bank 4 on the paper's 2806-point grid, or any ``.instprm`` TOF bank).

    Args:
        preset: Parameter ranges, ``"e1"`` or ``"e2"`` (paper Table II).
        classes: Class names in label order; default ``["trigonal", "tetragonal", "cubic"]``.
            Any of cubic, tetragonal, trigonal (rhombohedral axes), orthorhombic, hexagonal,
            monoclinic, triclinic.
        ranges: Optional bound overrides ``{class: {free parameter: [low, high]}}``.
        materials: Classes from CIF files instead of the BaTiO₃ classes, in label order: a list
            of ``{cif: path, name: label, ranges: {free parameter: [low, high]}, system, block,
            b_iso_default}`` (:class:`~streamal_diffraction.cif.MaterialOptions`; only ``cif``
            is required). The crystal system of each CIF fixes the free parameters; ``preset``
            plays no part, ``classes`` and ``ranges`` must not be given.

        instrument: The diffractometer and the ToF grid, ``{file, bank, ignore_lorentzian,
            tof_grid: {start_us, stop_us, points | log_step}}``
            (:class:`~streamal_diffraction.instprm.InstrumentOptions`): a GSAS-II ``.instprm``
            TOF bank, its relative path taken from the working directory. Default: NOMAD
            bank 4 on the paper's grid.

    Output: ``(n, grid points)`` float32 raw intensities (see the module docstring for the
    scale); 2806 points on the paper's grid.
    """

    name: ClassVar[str] = "diffraction-tof"

    def __init__(
        self,
        preset: str = "e1",
        classes: Sequence[str] | None = None,
        ranges: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
        materials: Sequence[Mapping[str, Any]] | None = None,
        instrument: Mapping[str, Any] | None = None,
    ) -> None:
        loaded = None
        if materials is not None:
            if classes is not None or ranges is not None:
                raise ParameterError(
                    "give either materials (classes from CIF files, each with its ranges) or "
                    "classes/ranges (the built-in BaTiO3 classes), not both"
                )
            loaded = load_materials(materials)
        classes = list(DEFAULT_CLASSES if classes is None else classes)
        ranges_json = (
            None
            if ranges is None
            else {
                c: {p: [float(v) for v in lo_hi] for p, lo_hi in r.items()}
                for c, r in ranges.items()
            }
        )
        self._options: dict[str, Any] = {
            "preset": preset,
            "classes": classes,
            "ranges": ranges_json,
        }
        if loaded is None:
            self.space = parameter_space(preset, classes, ranges_json)
            self._templates = tuple(TEMPLATES[c] for c in classes)
        else:
            self._options["classes"] = None
            self._options["materials"] = [m.options.model_dump(exclude_none=True) for m in loaded]
            self.space = material_space(loaded)
            self._templates = tuple(m.template for m in loaded)
        inst = InstrumentOptions.parse(instrument or {})
        self.instrument, self.grid = inst.build()
        if instrument is not None:
            self._options["instrument"] = inst.resolved().model_dump(exclude_none=True)
        self.output_shape = (self.grid.size,)
        # Built (and checked against the grid) here, so a bad grid fails when the config is.
        self._table = profile_table(self.instrument, self.grid)
        self._models: dict[int, _ClassModel] = {}

    def _model(self, k: int) -> _ClassModel:
        if k not in self._models:
            self._models[k] = _ClassModel(self.space.classes[k], self._templates[k], self._table)
        return self._models[k]

    def _check_cells(self, classes: np.ndarray, params: np.ndarray) -> None:
        """Raise :class:`ParameterError` naming the first sample whose cell is not a cell."""
        bad = np.flatnonzero(~valid_cells(params))
        if not len(bad):
            return
        i = int(bad[0])
        c = self.space.classes[int(classes[i])]
        row = dict(zip(CELL_PARAMS, params[i], strict=True))
        lengths = [p for p in ("a", "b", "c") if row[p] <= 0.0]
        if lengths:
            raise ParameterError(
                f"sample {i} ({c.name}): {lengths[0]} = {row[lengths[0]]:g} must be > 0 Å"
            )
        angles = [p for p in ("alpha", "beta", "gamma") if p in c.free] or list(CELL_PARAMS[3:])
        values = ", ".join(f"{p} = {row[p]:g}" for p in angles)
        raise ParameterError(
            f"sample {i} ({c.name}): {values} give no valid cell (metric determinant "
            f"det G/(a²b²c²) = {reduced_determinant(params[i])[0]:.3g} must be > 0: each angle "
            f"in (0°, 180°), smaller than the sum of the other two, all three summing to < 360°)"
        )

    def _simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        self._check_cells(classes, params)
        out = np.empty((len(classes), self.grid.size), dtype=np.float32)
        for k in np.unique(classes):
            idx = np.flatnonzero(classes == k)
            model = self._model(int(k))
            for start in range(0, len(idx), _CHUNK):
                chunk = idx[start : start + _CHUNK]
                out[chunk] = model.patterns(params[chunk])
        return out

    def reflections(self, class_name: str, cell: Sequence[float]) -> ReflectionList:
        """The peaks of one cell that reach the grid, for inspection and validation.

        Raises:
            ParameterError: Unknown class or a cell outside the space.
        """
        k = self.space.class_index(class_name)
        params = np.asarray(cell, dtype=np.float64)[None, :]
        self.space.check(np.array([k]), params)
        self._check_cells(np.array([k]), params)
        model = self._model(k)
        _, group, inv_d2, _ = model.peaks(params)
        d = 1.0 / np.sqrt(inv_d2)
        f2 = model.groups.f_squared(group, inv_d2)
        order = np.argsort(-d, kind="stable")
        return ReflectionList(
            hkl=model.groups.hkl[group][order],
            d=d[order],
            tof=self.instrument.tof(d)[order],
            multiplicity=model.groups.multiplicity[group][order],
            f_squared=f2[order],
            intensity=(f2 * d**4)[order],
        )

    def input_axis(self) -> dict[str, Any]:
        """The ToF grid and the d → ToF conversion of the instrument, for ``model.json``
        (:func:`streamal_diffraction.measurements.tof_axis`)."""
        from streamal_diffraction.measurements.axis import tof_axis

        return tof_axis(self.instrument, self.grid.points())

    def refine(
        self, pattern: np.ndarray, prediction: Any, **options: Any
    ) -> list[RefinedPrediction]:
        """Rietveld-style refinement of a prediction's cell with this simulator as forward
        model (:func:`streamal_diffraction.refine.refine_top`): the most probable class, and
        the runner-up too when the classifier is unsure; best (lowest χ²_red) first.

        Each class starts from the predicted values of its free parameters (the tied ones
        follow them). Unless ``fitted`` is given, only the grid bins the measured data cover
        are fitted (``prediction.covered``, when the prediction has it).

        Args:
            pattern: ``(grid,)`` the pattern on this simulator's grid.
            prediction: A :class:`streamal.inference.Prediction` (``probabilities``,
                ``parameters`` ``{name: estimate with .value}``).
            **options: Those of :func:`~streamal_diffraction.refine.refine_top` (``k``,
                ``threshold``, ``sigma``, ``background_terms`` …).

        Raises:
            ParameterError: A class or parameter of the prediction this space lacks, or a
                pattern not on the grid.
        """
        from streamal_diffraction.refine import Candidate, refine_top

        values = {p: float(getattr(e, "value", e)) for p, e in prediction.parameters.items()}
        sigmas = {p: float(getattr(e, "sigma", 0.0)) for p, e in prediction.parameters.items()}
        starts = []
        for name, probability in prediction.probabilities.items():
            k = self.space.class_index(name)
            free = self.space.classes[k].free
            missing = [p for p in free if p not in values]
            if missing:
                raise ParameterError(
                    f"the prediction has no {missing[0]!r}; refining {name} needs {list(free)}"
                )
            full = self.space.complete(k, np.array([[values[p] for p in free]]))[0]
            cell = dict(zip(self.space.param_names, full, strict=True))
            starts.append(Candidate(name, tuple(cell[p] for p in CELL_PARAMS), probability, sigmas))
        covered = getattr(prediction, "covered", None)
        if covered is not None and "fitted" not in options:
            options["fitted"] = np.asarray(covered) > 0.0
        fits = refine_top(pattern, starts, simulator=self, **options)
        return [RefinedPrediction(r) for r in fits]


@dataclass(frozen=True)
class RefinedPrediction:
    """One refinement as :meth:`TofDiffractionSimulator.refine` returns it: the
    :class:`~streamal_diffraction.refine.Refinement` with the ``to_dict``, ``describe`` and
    ``plot`` that ``streamal predict --refine`` uses."""

    refinement: Any  # a streamal_diffraction.refine.Refinement (imported lazily: a cycle)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: :meth:`Refinement.to_dict` (cell and esd, R-factors, GoF …)."""
        return dict(self.refinement.to_dict())

    def describe(self) -> str:
        """One line: class (probability), free cell parameters ± esd, zero, R_wp, GoF."""
        from streamal_diffraction.refine import format_esd
        from streamal_diffraction.refine.plot import _SYMBOL, _UNIT

        r = self.refinement
        cell = ", ".join(
            f"{_SYMBOL[p]} = {format_esd(v, e)}{_UNIT[p]}" for p, (v, e) in r.parameters().items()
        )
        prob = "" if r.probability is None else f" (p {r.probability:.3f})"
        flag = "" if r.converged else ", NOT CONVERGED"
        return (
            f"{r.class_name}{prob}: {cell}; zero {format_esd(r.zero_shift, r.zero_shift_esd)} "
            f"µs, R_wp {r.r_wp:.2f} %, GoF {r.gof:.2f}{flag}"
        )

    def plot(self, path: str | Path) -> Path:
        """Write the observed/calculated/difference plot as a PNG; returns its path."""
        from streamal_diffraction.refine import plot_refinement

        return plot_refinement(self.refinement, path)
