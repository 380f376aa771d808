"""The fast ToF simulator paced to a slower simulator's cost, for ``bench/workflows.py``.

The data a continuous workflow trains on depends on how fast simulation is next to training
(its feeder draws each chunk from the newest model; with a free simulator the whole budget is
drawn, uniformly, during the first training). To measure accuracy at real sizes with the
schedule of the paper's regime, each pattern costs ``seconds_per_pattern`` (a sleep after
the real simulation) except the first ``unpaced_patterns`` a worker simulates: phase 0's
sets, simulated before any training, so their cost changes no training's data.
"""

from __future__ import annotations

import time

import numpy as np

from streamal_diffraction.simulator import TofDiffractionSimulator


class PacedTofSimulator(TofDiffractionSimulator):
    """``diffraction-tof`` that takes at least ``seconds_per_pattern`` per pattern."""

    def __init__(
        self, seconds_per_pattern: float = 0.0, unpaced_patterns: int = 0, **options
    ) -> None:
        super().__init__(**options)
        self.seconds_per_pattern = seconds_per_pattern
        self.unpaced_left = unpaced_patterns

    def _simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = super()._simulate(classes, params)
        paced = max(0, len(classes) - self.unpaced_left)
        self.unpaced_left = max(0, self.unpaced_left - len(classes))
        time.sleep(max(0.0, paced * self.seconds_per_pattern - (time.perf_counter() - t0)))
        return out
