"""cryspy 0.18 as a streamal simulator: the same patterns at GSAS-II-like cost.

The paper simulated with GSAS-II (~0.3 s per pattern per core); our own simulator is ~1000×
faster, which moves the balance between simulation and training far from the paper's regime.
This plugin runs the independent cryspy code (~0.15–0.7 s per pattern) on the same structures,
instrument and grid, so workflows can be studied where simulation costs as much as training.
Only the paper's three classes (cubic, tetragonal, trigonal). Needs ``cryspy==0.18.0``
(``pip install streamal-diffraction[test]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamal.errors import PluginError
from streamal.simulation.simulator import Simulator
from streamal_diffraction.instrument import tof_grid
from streamal_diffraction.spaces import DEFAULT_CLASSES, parameter_space

PAPER_CLASSES = ("trigonal", "tetragonal", "cubic")


class CryspyTofSimulator(Simulator):
    """Time-of-flight patterns computed by cryspy for the paper's classes."""

    name = "diffraction-cryspy"

    def __init__(
        self,
        preset: str = "e1",
        classes: Sequence[str] | None = None,
        ranges: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
        cutoff_fwhm: float = 5.0,
    ) -> None:
        classes = tuple(classes or DEFAULT_CLASSES)
        unsupported = sorted(set(classes) - set(PAPER_CLASSES))
        if unsupported:
            raise PluginError(
                f"diffraction-cryspy supports classes {list(PAPER_CLASSES)}, not {unsupported}"
            )
        self._options: dict[str, Any] = {
            "preset": preset,
            "classes": list(classes),
            "ranges": ranges,
            "cutoff_fwhm": cutoff_fwhm,
        }
        self.space = parameter_space(preset, classes, ranges)
        self.output_shape = (len(tof_grid()),)

    def _simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        from streamal_diffraction.reference import cryspy_pattern

        out = np.empty((len(classes), *self.output_shape), dtype=np.float32)
        for i, (k, row) in enumerate(zip(classes, params, strict=True)):
            out[i] = cryspy_pattern(
                self.space.class_names[int(k)], row, self._options["cutoff_fwhm"]
            ).pattern
        return out
