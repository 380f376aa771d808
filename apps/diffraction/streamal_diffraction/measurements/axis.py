"""The diffraction simulator's input axis: its ToF grid and the d-spacing → ToF conversion."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Names files give the ToF axis (Mantid: ``TOF``), lower case.
TOF_ALIASES = ("tof", "time-of-flight", "time_of_flight", "time")
#: Names files give the d-spacing axis (Mantid: ``dSpacing``), lower case.
D_ALIASES = ("d", "dspacing", "d-spacing", "d_spacing", "d-space")


def tof_axis(instrument: Any, tof: np.ndarray) -> dict[str, Any]:
    """The input axis (:meth:`streamal.simulation.simulator.Simulator.input_axis`) of patterns
    computed at ToF points ``tof`` for ``instrument``.

    Args:
        instrument: Has ``difc``, ``difa``, ``zero`` and optionally ``difb`` and ``name``
            (:class:`~streamal_diffraction.instrument.Instrument`).
        tof: The grid's points (µs), increasing.

    Returns:
        ``{"name": "tof", "unit": "µs", "values": [...], "aliases": [...], "instrument":
        {name, difc, difa, zero, difb}, "conversions": {"d": {"unit": "Å", "terms": ...}}}``,
        the conversion being GSAS-II's ``ToF = Zero + difC·d + difA·d² + difB/d``.
    """
    difb = float(getattr(instrument, "difb", 0.0))
    terms = [[0, float(instrument.zero)], [1, float(instrument.difc)], [2, float(instrument.difa)]]
    if difb:
        terms.append([-1, difb])
    return {
        "name": "tof",
        "unit": "µs",
        "values": [float(t) for t in np.asarray(tof, dtype=np.float64)],
        "aliases": list(TOF_ALIASES),
        "instrument": {
            "name": str(getattr(instrument, "name", "")),
            "difc": float(instrument.difc),
            "difa": float(instrument.difa),
            "zero": float(instrument.zero),
            "difb": difb,
        },
        "conversions": {
            "d": {
                "unit": "Å",
                "terms": terms,
                "aliases": list(D_ALIASES),
                "formula": "ToF = Zero + difC·d + difA·d² + difB/d",
            }
        },
    }


def d_to_tof(d: np.ndarray, instrument: Any) -> np.ndarray:
    """ToF (µs) of d-spacings ``d`` (Å) for ``instrument`` (the conversion of :func:`tof_axis`)."""
    d = np.asarray(d, dtype=np.float64)
    out = instrument.zero + instrument.difc * d + instrument.difa * d * d
    difb = float(getattr(instrument, "difb", 0.0))
    return out + difb / d if difb else out
