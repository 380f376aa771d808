"""streamal app: crystal structure from time-of-flight neutron Bragg profiles.

The simulator plugin is :class:`TofDiffractionSimulator` (entry point ``diffraction-tof``).
"""

from streamal_diffraction.instrument import NOMAD_BANK4, Instrument, tof_grid
from streamal_diffraction.simulator import ReflectionList, TofDiffractionSimulator
from streamal_diffraction.spaces import ALL_CLASSES, DEFAULT_CLASSES, parameter_space

__all__ = [
    "ALL_CLASSES",
    "DEFAULT_CLASSES",
    "NOMAD_BANK4",
    "Instrument",
    "ReflectionList",
    "TofDiffractionSimulator",
    "parameter_space",
    "tof_grid",
]
