"""cryspy 0.18 as a streamal simulator: the same patterns at GSAS-II-like cost.

The paper simulated with GSAS-II (~0.3 s per pattern per core); our own simulator is ~1000×
faster, which moves the balance between simulation and training far from the paper's regime.
This plugin runs the independent cryspy code (~0.15–0.7 s per pattern) on the same structures,
instrument and grid, so workflows can be studied where simulation costs as much as training.
The paper's three classes (cubic, tetragonal, trigonal), or materials read from CIF files (the
``materials`` option of ``diffraction-tof``). Needs ``cryspy==0.18.0``
(``pip install streamal-diffraction[test]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamal.errors import ParameterError, PluginError
from streamal.simulation.simulator import Simulator
from streamal_diffraction.cif import CifStructure, load_materials
from streamal_diffraction.instrument import tof_grid
from streamal_diffraction.spaces import DEFAULT_CLASSES, material_space, parameter_space

PAPER_CLASSES = ("trigonal", "tetragonal", "cubic")


class CryspyTofSimulator(Simulator):
    """Time-of-flight patterns computed by cryspy for the paper's classes or CIF materials.

    Args:
        preset: Parameter ranges, ``"e1"`` or ``"e2"`` (paper Table II).
        classes: Paper class names in label order; default trigonal, tetragonal, cubic.
        ranges: Optional bound overrides ``{class: {free parameter: [low, high]}}``.
        cutoff_fwhm: cryspy's peak cut-off, in FWHM.
        materials: Classes from CIF files, as ``diffraction-tof``'s ``materials``; then
            ``classes`` and ``ranges`` must not be given.
    """

    name = "diffraction-cryspy"

    def __init__(
        self,
        preset: str = "e1",
        classes: Sequence[str] | None = None,
        ranges: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
        cutoff_fwhm: float = 5.0,
        materials: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.output_shape = (len(tof_grid()),)
        if materials is not None:
            if classes is not None or ranges is not None:
                raise ParameterError(
                    "give either materials (classes from CIF files, each with its ranges) or "
                    "classes/ranges (the paper's classes), not both"
                )
            loaded = load_materials(materials)
            self._options: dict[str, Any] = {
                "preset": preset,
                "cutoff_fwhm": cutoff_fwhm,
                "materials": [m.options.model_dump(exclude_none=True) for m in loaded],
            }
            self.space = material_space(loaded)
            self._phases: tuple[str | CifStructure, ...] = tuple(m.structure for m in loaded)
            return
        classes = tuple(classes or DEFAULT_CLASSES)
        unsupported = sorted(set(classes) - set(PAPER_CLASSES))
        if unsupported:
            raise PluginError(
                f"diffraction-cryspy supports classes {list(PAPER_CLASSES)}, not {unsupported}"
            )
        self._options = {
            "preset": preset,
            "classes": list(classes),
            "ranges": ranges,
            "cutoff_fwhm": cutoff_fwhm,
        }
        self.space = parameter_space(preset, classes, ranges)
        self._phases = classes

    def _simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        from streamal_diffraction.reference import cryspy_pattern

        out = np.empty((len(classes), *self.output_shape), dtype=np.float32)
        for i, (k, row) in enumerate(zip(classes, params, strict=True)):
            out[i] = cryspy_pattern(self._phases[int(k)], row, self._options["cutoff_fwhm"]).pattern
        return out
