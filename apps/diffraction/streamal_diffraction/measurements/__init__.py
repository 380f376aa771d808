"""Measured diffraction patterns for ``streamal predict``: readers, writers and the model's axis.

Readers (entry-point group ``streamal.readers``, found by :mod:`streamal.inference.readers`):

* ``gsas`` (:class:`~streamal_diffraction.measurements.gsas.GsasReader`): GSAS powder files
  ``.gsa``/``.gss``/``.fxye``…, FXYE, FXY, ESD and STD data with SLOG, RALF or CONS binning;
* ``mantid-nexus`` (:class:`~streamal_diffraction.measurements.nexus.MantidNexusReader`):
  Mantid processed NeXus/HDF5, ``/mantid_workspace_N/workspace/{axis1, values, errors}``.

Plain ``x y [e]`` text (``# x_unit: tof`` or ``d``) is read by streamal's built-in text
reader. :func:`tof_axis` is the simulator's input axis (its ToF grid, and ``d`` → ToF by the
instrument's ``Zero``, ``difC``, ``difA``, ``difB``), which ``model.json`` records and the
rebinning uses. The writers make files in the same formats (for tests and for exporting
simulated patterns).

Example (a simulated tetragonal pattern as GSAS and as text, read back)::

    import numpy as np
    from streamal.inference.measurement import edges_from_centres
    from streamal.inference.readers import read_patterns
    from streamal_diffraction import TofDiffractionSimulator
    from streamal_diffraction.measurements import write_gsas, write_xye

    sim = TofDiffractionSimulator()
    tof = sim.grid.points()
    y = sim.simulate(np.array([1]), sim.space.complete(1, np.array([[3.9, 4.1]])))[0]
    write_gsas("p.gsa", edges_from_centres(tof), y)  # FXYE data, SLOG binning
    write_xye("p.xye", tof, y)
    (pattern,) = read_patterns("p.gsa")  # pattern.unit == "tof", pattern.label == "bank 1"
"""

from streamal_diffraction.measurements.axis import d_to_tof, tof_axis
from streamal_diffraction.measurements.gsas import GsasReader, write_gsas
from streamal_diffraction.measurements.nexus import MantidNexusReader, write_mantid_nexus
from streamal_diffraction.measurements.text import write_xye

__all__ = [
    "GsasReader",
    "MantidNexusReader",
    "d_to_tof",
    "tof_axis",
    "write_gsas",
    "write_mantid_nexus",
    "write_xye",
]
