"""A Python simulator plugin: one Gaussian peak on a grid, two classes (narrow and wide)."""

import numpy as np

from streamal.data.space import ClassSpace, ParameterSpace
from streamal.simulation.simulator import Simulator


class PeakSimulator(Simulator):
    name = "peak"

    def __init__(self, points: int = 256):
        self._options = {"points": points}  # lets each worker rebuild it
        self.space = ParameterSpace(
            ("centre", "width"),
            (
                ClassSpace("narrow", {"centre": (0.2, 0.8)}, tied={"width": 0.02}),
                ClassSpace("wide", {"centre": (0.2, 0.8), "width": (0.05, 0.1)}),
            ),
            units={"centre": "m", "width": "m"},
        )
        self.output_shape = (points,)

    def _simulate(self, classes, params):  # inputs already checked against the space
        x = np.linspace(0, 1, self.output_shape[0])
        return np.exp(-0.5 * ((x - params[:, :1]) / params[:, 1:2]) ** 2).astype(np.float32)
