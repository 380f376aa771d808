"""Reference patterns from cryspy 0.18 (optional; ``pip install streamal-diffraction[test]``).

Builds the cryspy input for the same structure, instrument and grid as
:class:`~streamal_diffraction.simulator.TofDiffractionSimulator` for the paper's three
classes (cubic ``P m -3 m``, tetragonal ``P 4 m m``, trigonal ``R 3 m`` on rhombohedral axes)
or for a structure read from a CIF (:class:`~streamal_diffraction.cif.CifStructure`: its
space group, setting and asymmetric unit) and runs cryspy's ToF calculation. Used by the
validation tests and by ``bench/simulator.py``.

cryspy conventions (from its source, ``procedure_rhochi/rhochi_tof.py`` and
``A_functions_base/powder_diffraction_tof.py``):

* signal per polarisation channel ``0.5·scale·sin(2θ_bank/2)·Σ m|F|²·d⁴·P``, the two channels
  summed; ``F`` in units of 10 fm;
* "Gauss" peak shape = back-to-back exponentials ⊗ Gaussian, ``α = alpha0 + alpha1/d``,
  ``β = beta0 + beta1/d⁴``, ``σ² = sigma0 + sigma1·d² + sigma2·d⁴``, but evaluated at the d of
  each ToF point rather than at the reflection's d;
* reflections only for d inside the ToF range, from the asymmetric unit and space group;
* ``d(ToF)`` is inverted with the negative root when ``dtt2 > 0`` (no reflections at all for
  NOMAD's ``difA = 19.21``): :func:`cryspy_pattern` patches that one function to the positive
  root while it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from streamal_diffraction.instrument import NOMAD_BANK4, tof_grid
from streamal_diffraction.structures import TEMPLATES

if TYPE_CHECKING:
    from streamal_diffraction.cif import CifStructure

CRYSPY_VERSION = "0.18.0"

# class -> (space group, IT coordinate system code, template atoms forming the asymmetric unit)
SETTINGS: dict[str, tuple[str, str | None, tuple[int, ...]]] = {
    "cubic": ("P m -3 m", None, (0, 1, 2)),
    "tetragonal": ("P 4 m m", None, (0, 1, 2, 3)),
    "trigonal": ("R 3 m", "r", (0, 1, 2)),
}


@dataclass(frozen=True)
class CryspyPattern:
    """cryspy's pattern and reflection list for one cell.

    Attributes:
        pattern: ``(n_grid,)`` total signal (cryspy units, see the module docstring).
        tof: Reflection positions (µs), one per symmetry-independent reflection.
        d: Their d-spacings (Å).
        intensity: ``m·|F|²·d⁴`` per reflection, converted to fm² (×100).
    """

    pattern: np.ndarray
    tof: np.ndarray
    d: np.ndarray
    intensity: np.ndarray


_CRYSPY_SETTING = {"R": "r", "H": "h", "1": "1", "2": "2"}
"""gemmi's setting letter (``SpaceGroup.ext``) -> cryspy's IT coordinate system code."""


def _phase(phase: str | CifStructure) -> tuple[str, str | None, str]:
    """Space group, IT coordinate system code and atom-site rows of a class or structure."""
    if isinstance(phase, str):
        space_group, setting, asym = SETTINGS[phase]
        template = TEMPLATES[phase]
        b_iso = dict(template.b_factors)
        atoms = "\n".join(
            f"{a.element}{i} {a.element} {a.xyz[0]!r} {a.xyz[1]!r} {a.xyz[2]!r} "
            f"Biso {b_iso[a.element]!r} 1.0"
            for i, a in ((i, template.atoms[i]) for i in asym)
        )
        return space_group, setting, atoms
    import gemmi

    sg = gemmi.find_spacegroup_by_name(phase.space_group) if phase.space_group else None
    if sg is None:
        raise ValueError(f"{phase.name}: cryspy needs a tabulated space group, got none")
    atoms = "\n".join(
        f"{s.label} {s.element} {s.xyz[0]!r} {s.xyz[1]!r} {s.xyz[2]!r} "
        f"Biso {s.b_iso!r} {s.occupancy!r}"
        for s in phase.sites
    )
    return sg.hm, _CRYSPY_SETTING.get(sg.ext), atoms


def cryspy_cif(
    phase: str | CifStructure, cell: Sequence[float], t: np.ndarray | None = None
) -> str:
    """cryspy rcif text: phase ``ph`` (asymmetric unit) and ToF experiment ``tof`` on grid ``t``.

    ``phase`` is a paper class name or a structure read by
    :func:`~streamal_diffraction.cif.read_cif`.
    """
    space_group, setting, atoms = _phase(phase)
    t = tof_grid() if t is None else t
    ins = NOMAD_BANK4
    code = f"_space_group_IT_coordinate_system_code {setting}" if setting else ""
    meas = "\n".join(f"{float(x)!r} 0.0 1.0" for x in t)
    a, b, c, al, be, ga = (float(x) for x in cell)
    return f"""global_reference
data_ph
_space_group_name_H-M_alt '{space_group}'
{code}
_cell_length_a {a!r}
_cell_length_b {b!r}
_cell_length_c {c!r}
_cell_angle_alpha {al!r}
_cell_angle_beta {be!r}
_cell_angle_gamma {ga!r}
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_adp_type
_atom_site_B_iso_or_equiv
_atom_site_occupancy
{atoms}

data_tof
_tof_parameters_zero {ins.zero!r}
_tof_parameters_dtt1 {ins.difc!r}
_tof_parameters_dtt2 {ins.difa!r}
_tof_parameters_2theta_bank {ins.two_theta!r}
_tof_profile_peak_shape Gauss
_tof_profile_alpha0 0.0
_tof_profile_alpha1 {ins.alpha!r}
_tof_profile_beta0 {ins.beta0!r}
_tof_profile_beta1 {ins.beta1!r}
_tof_profile_sigma0 {ins.sig0!r}
_tof_profile_sigma1 {ins.sig1!r}
_tof_profile_sigma2 {ins.sig2!r}
_range_time_min {float(t[0])!r}
_range_time_max {float(t[-1])!r}
_tof_background_time_max 20000.0
_tof_background_coeff1 0.0
loop_
_phase_label
_phase_scale
ph 1.0
loop_
_tof_meas_time
_tof_meas_intensity
_tof_meas_intensity_sigma
{meas}
"""


def _positive_root(time: Any, zero: Any, dtt1: Any, dtt2: Any) -> Any:
    """d from ToF, the positive root of ``dtt2·d² + dtt1·d + zero − time = 0``."""
    if dtt2 == 0:
        return (time - zero) / dtt1
    return 2.0 * (time - zero) / (dtt1 + np.sqrt(dtt1 * dtt1 + 4.0 * (time - zero) * dtt2))


def cryspy_dictionary(
    phase: str | CifStructure, cell: Sequence[float], cutoff_fwhm: float = 5.0
) -> dict:
    """Parsed cryspy input dictionary (parse once, compute many times)."""
    import cryspy

    dictionary = cryspy.str_to_globaln(cryspy_cif(phase, cell)).get_dictionary()
    dictionary["tof_tof"]["profile_cutoff_fwhm"] = float(cutoff_fwhm)
    return dictionary


def cryspy_compute(dictionary: dict) -> CryspyPattern:
    """Run cryspy's ToF calculation on a parsed dictionary (with the d(ToF) root patched)."""
    import cryspy.A_functions_base.powder_diffraction_tof as tof_module
    import cryspy.procedure_rhochi.rhochi_tof as rhochi_tof
    from cryspy.procedure_rhochi.rhochi_by_dictionary import rhochi_calc_chi_sq_by_dictionary

    saved = (
        tof_module.calc_d_by_time_for_thermal_neutrons,
        rhochi_tof.calc_d_by_time_for_thermal_neutrons,
    )
    tof_module.calc_d_by_time_for_thermal_neutrons = _positive_root
    rhochi_tof.calc_d_by_time_for_thermal_neutrons = _positive_root
    try:
        io: dict = {}
        rhochi_calc_chi_sq_by_dictionary(
            dictionary,
            dict_in_out=io,
            flag_use_precalculated_data=False,
            flag_calc_analytical_derivatives=False,
        )
    finally:
        (
            tof_module.calc_d_by_time_for_thermal_neutrons,
            rhochi_tof.calc_d_by_time_for_thermal_neutrons,
        ) = saved
    exp, phase = io["tof_tof"], io["tof_tof"]["dict_in_out_ph"]
    return CryspyPattern(
        pattern=exp["signal_plus"] + exp["signal_minus"],
        tof=phase["time_hkl"],
        d=phase["d_hkl"],
        intensity=100.0 * phase["multiplicity_hkl"] * phase["iint_plus"] * phase["d_hkl"] ** 4,
    )


def cryspy_pattern(
    phase: str | CifStructure, cell: Sequence[float], cutoff_fwhm: float = 5.0
) -> CryspyPattern:
    """cryspy's pattern of one cell of a paper class (``cubic``, ``tetragonal``, ``trigonal``)
    or of a structure read from a CIF."""
    return cryspy_compute(cryspy_dictionary(phase, cell, cutoff_fwhm))
