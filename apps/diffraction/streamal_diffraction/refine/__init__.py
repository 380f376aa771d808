"""Refinement of a predicted cell: the model's answer, polished by least squares.

A trained model reads a pattern fast; :func:`refine` then fits the class's free cell
parameters, a zero shift, an overall scale and a Chebyshev background to the pattern, with the
simulator as the forward model, and reports the cell with estimated standard deviations and
the fit's R-factors. :func:`refine_top` does it for the most probable classes when the
classifier is unsure; :func:`plot_refinement` draws the fit.

Example (a simulated tetragonal pattern with Poisson noise, refined from a cell 0.02 Å off)::

    import numpy as np
    from streamal_diffraction.refine import ClassPattern, plot_refinement, refine
    from streamal_diffraction.refine.fit import default_simulator

    sim = default_simulator()
    truth = ClassPattern(sim, "tetragonal").pattern([3.99, 4.04], zero_shift=2.0)
    counts = np.random.default_rng(0).poisson(2e4 * truth / truth.max() + 100.0)
    result = refine(counts, "tetragonal", [4.01, 4.01, 4.02, 90, 90, 90], simulator=sim)
    print(result.describe())  # tetragonal: a = 3.989928(51), c = 4.039919(58), zero 2.19(11) µs, …
    plot_refinement(result, "fit.png")
"""

from streamal_diffraction.refine.fit import (
    Candidate,
    Refinement,
    candidates,
    default_simulator,
    format_esd,
    refine,
    refine_top,
)
from streamal_diffraction.refine.forward import ClassPattern, Ticks
from streamal_diffraction.refine.plot import plot_refinement

__all__ = [
    "Candidate",
    "ClassPattern",
    "Refinement",
    "Ticks",
    "candidates",
    "default_simulator",
    "format_esd",
    "plot_refinement",
    "refine",
    "refine_top",
]
