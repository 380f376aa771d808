"""Structure templates and their merged reflection lists with |F|² coefficients.

BaTiO₃ templates are built in; any material comes from a CIF (:mod:`~streamal_diffraction.cif`).

Nuclear structure factor with isotropic Debye–Waller factors (``s = 1/(2d)``)::

    F(h) = Σ_j o_j · b_j · exp(−B_j s²) · exp(2πi h·x_j)

with site occupancies ``o_j``. Grouping atoms by species ``σ`` (one element, so one ``b``, and
one ``B`` each), ``F = Σ_σ b_σ D_σ(d) S_σ(h)`` with ``S_σ(h) = Σ_{j∈σ} o_j·exp(2πi h·x_j)``
fixed per template, so::

    |F(h)|² = Σ_{σ≤τ} c_στ(h) · D_σ(d)·D_τ(d),   c_στ = (2 − δ_στ)·b_σ b_τ·Re(S_σ S_τ*).

The ``c_στ`` are computed once per template and summed over every reflection of the full
sphere that shares a d for all cells of the crystal system (same metric keys, see
:mod:`~streamal_diffraction.cell`): the sum carries the multiplicity. Groups whose
coefficients all vanish are systematically absent; nothing else removes reflections.

Constants (documented choices):

* Coherent scattering lengths (fm): Ba 5.07, Ti −3.438, O 5.803.
* Isotropic B (Å²): Ba 0.5, Ti 0.5, O 0.8 (room-temperature-like; ``B = 8π²U_iso``,
  ``U_iso`` ≈ 0.006, 0.006, 0.010 Å²).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from streamal_diffraction.cell import METRIC_KEYS, hkl_box

SCATTERING_LENGTH_FM: dict[str, float] = {"Ba": 5.07, "Ti": -3.438, "O": 5.803}
"""Bound coherent neutron scattering lengths (fm)."""

DEBYE_WALLER_B: dict[str, float] = {"Ba": 0.5, "Ti": 0.5, "O": 0.8}
"""Isotropic displacement parameters B (Å²)."""


@dataclass(frozen=True)
class Atom:
    """One atom of a template.

    Attributes:
        element: Element symbol, a key of the template's ``scattering_lengths``.
        xyz: Fractional coordinates.
        occupancy: Site occupancy (fraction of the site this element fills).
        b_iso: Isotropic displacement ``B`` (Å²); ``None`` takes the template's ``b_factors``
            entry of the element.
    """

    element: str
    xyz: tuple[float, float, float]
    occupancy: float = 1.0
    b_iso: float | None = None


@dataclass(frozen=True)
class Template:
    """A structure in a cell of one crystal system (every atom listed, no symmetry applied).

    Attributes:
        name: Label.
        system: Crystal system, a key of :data:`~streamal_diffraction.cell.METRIC_KEYS`.
        atoms: All atoms of the cell.
        scattering_lengths: ``element -> b`` (fm).
        b_factors: ``element -> B`` (Å²) of atoms that carry no ``b_iso`` of their own.
        space_group: Extended Hermann–Mauguin symbol the structure came with (``""``: none).
        cell: Reference cell ``(a, b, c, α, β, γ)`` (Å, °), e.g. the CIF's; ``None``: none.
    """

    name: str
    system: str
    atoms: tuple[Atom, ...]
    scattering_lengths: tuple[tuple[str, float], ...] = tuple(SCATTERING_LENGTH_FM.items())
    b_factors: tuple[tuple[str, float], ...] = tuple(DEBYE_WALLER_B.items())
    space_group: str = ""
    cell: tuple[float, float, float, float, float, float] | None = None

    @property
    def species(self) -> tuple[str, ...]:
        """Distinct elements in order of first appearance."""
        return tuple(dict.fromkeys(a.element for a in self.atoms))

    def b_iso(self, atom: Atom) -> float:
        """``B`` (Å²) of one atom: its own, else the template's value for its element."""
        return dict(self.b_factors)[atom.element] if atom.b_iso is None else atom.b_iso

    @property
    def scatterers(self) -> tuple[tuple[str, float], ...]:
        """Distinct ``(element, B)`` pairs in order of first appearance: the species ``σ``
        of the module docstring (atoms sharing ``b`` and ``B``)."""
        return tuple(dict.fromkeys((a.element, self.b_iso(a)) for a in self.atoms))


def _perovskite(system: str, ti: float = 0.0, o: float = 0.0, axis: str = "c") -> Template:
    """ABO₃ in a primitive perovskite-like cell: Ba at the corner, Ti near the body centre,
    O near the face centres; Ti shifted by ``+ti`` and every O by ``+o`` (fractional) along
    ``axis`` (``"c"`` or the body diagonal ``"111"``)."""
    shift = np.array([0.0, 0.0, 1.0]) if axis == "c" else np.ones(3)
    ideal = {
        "Ba": [(0.0, 0.0, 0.0)],
        "Ti": [(0.5, 0.5, 0.5)],
        "O": [(0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)],
    }
    step = {"Ba": 0.0, "Ti": ti, "O": o}
    atoms = tuple(
        Atom(el, tuple(float(v) for v in np.mod(np.array(xyz) + step[el] * shift, 1.0)))
        for el, sites in ideal.items()
        for xyz in sites
    )
    return Template(f"BaTiO3-{system}", system, atoms)


TEMPLATES: dict[str, Template] = {
    # Pm-3m, ideal positions.
    "cubic": _perovskite("cubic"),
    # P4mm: Ti +0.015 and O −0.015 along c (≈0.06 Å each, the size of the room-temperature
    # ferroelectric displacement).
    "tetragonal": _perovskite("tetragonal", ti=0.015, o=-0.015, axis="c"),
    # R3m, rhombohedral axes: Ti +0.010 and O −0.010 along the body diagonal [111].
    "trigonal": _perovskite("trigonal", ti=0.010, o=-0.010, axis="111"),
    # Pmm2-like: the tetragonal displacements in an orthorhombic cell.
    "orthorhombic": _perovskite("orthorhombic", ti=0.015, o=-0.015, axis="c"),
    # The remaining systems carry the ideal perovskite-like positions in their own cell
    # (a generic test structure; it has only the symmetry the cell allows).
    "hexagonal": _perovskite("hexagonal"),
    "monoclinic": _perovskite("monoclinic"),
    "triclinic": _perovskite("triclinic"),
}
"""One template per crystal system, keyed by system name."""


def species_sums(template: Template, hkl: np.ndarray) -> np.ndarray:
    """``S_σ(h) = Σ_{j∈σ} o_j·exp(2πi h·x_j)`` per scatterer ``σ`` (see
    :attr:`Template.scatterers`), shape ``(n_scatterers, n_hkl)`` complex."""
    hkl = np.asarray(hkl, dtype=np.float64)
    scatterers = template.scatterers
    out = np.zeros((len(scatterers), len(hkl)), dtype=np.complex128)
    for atom in template.atoms:
        phase = 2.0 * np.pi * (hkl @ np.asarray(atom.xyz, dtype=np.float64))
        wave = np.exp(1j * phase)
        if atom.occupancy != 1.0:
            wave = atom.occupancy * wave
        out[scatterers.index((atom.element, template.b_iso(atom)))] += wave
    return out


def structure_factors(
    template: Template, hkl: np.ndarray, d: np.ndarray | None = None
) -> np.ndarray:
    """Nuclear structure factors ``F`` (fm) of reflections, with Debye–Waller factors if ``d``
    (Å, one per reflection) is given. Straightforward reference implementation."""
    b = dict(template.scattering_lengths)
    hkl = np.asarray(hkl, dtype=np.float64)
    f = np.zeros(len(hkl), dtype=np.complex128)
    for atom in template.atoms:
        dw = 1.0 if d is None else np.exp(-template.b_iso(atom) / (4.0 * np.asarray(d) ** 2))
        weight = atom.occupancy * b[atom.element] * dw
        f += weight * np.exp(2j * np.pi * (hkl @ np.asarray(atom.xyz)))
    return f


@dataclass(frozen=True)
class ReflectionGroups:
    """Reflections of a template merged by metric keys, with |F|² coefficients.

    ``m·|F|²`` of a group at ``1/d² = x`` is ``Σ_u dw_coef[u, g]·exp(−dw_b[u]·x/4)``: the
    pair coefficients ``c_στ`` summed over the group and over pairs with equal ``B_σ + B_τ``.

    Attributes:
        system: Crystal system of the keys.
        keys: ``(n_groups, K)`` metric keys (float64); ``1/d² = keys · coefficients(G*)``.
        hkl: ``(n_groups, 3)`` one representative reflection per group.
        multiplicity: ``(n_groups,)`` reflections merged into each group.
        dw_b: ``(n_terms,)`` distinct ``B_σ + B_τ`` (Å²).
        dw_coef: ``(n_terms, n_groups)`` coefficients (fm²).
    """

    system: str
    keys: np.ndarray
    hkl: np.ndarray
    multiplicity: np.ndarray
    dw_b: np.ndarray
    dw_coef: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def f_squared(self, group: np.ndarray, inv_d2: np.ndarray) -> np.ndarray:
        """Summed ``m·|F|²`` (fm²) of groups ``group`` at ``1/d²`` values ``inv_d2`` (Å⁻²)."""
        out = np.zeros(len(group))
        for b, coef in zip(self.dw_b, self.dw_coef, strict=True):
            out += coef[group] * np.exp(-0.25 * b * inv_d2)
        return np.maximum(out, 0.0)


@lru_cache(maxsize=32)
def reflection_groups(template: Template, limits: tuple[int, int, int]) -> ReflectionGroups:
    """Merged, non-absent reflections of ``template`` within ``|h|,|k|,|l| ≤ limits``.

    Computed once per ``(template, limits)`` and cached.
    """
    hkl = hkl_box(*limits)
    keys = METRIC_KEYS[template.system].keys(hkl)
    unique, first, inverse, counts = np.unique(
        keys, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    sums = species_sums(template, hkl)
    b = dict(template.scattering_lengths)
    scatterers = template.scatterers
    bs = np.array([b[el] for el, _ in scatterers])
    b_iso = np.array([b_value for _, b_value in scatterers])
    n_sp = len(scatterers)
    pairs = [(s, t) for s in range(n_sp) for t in range(s, n_sp)]
    dw_b = np.unique([b_iso[s] + b_iso[t] for s, t in pairs])
    coef = np.zeros((len(dw_b), len(unique)))
    for s, t in pairs:
        c = (1.0 if s == t else 2.0) * bs[s] * bs[t] * (sums[s] * np.conj(sums[t])).real
        u = int(np.searchsorted(dw_b, b_iso[s] + b_iso[t]))
        coef[u] += np.bincount(inverse, c, minlength=len(unique))
    n_atoms = np.zeros(n_sp)  # occupancy-weighted atom count per scatterer
    for atom in template.atoms:
        n_atoms[scatterers.index((atom.element, template.b_iso(atom)))] += atom.occupancy
    scale = (np.abs(bs) * n_atoms).sum() ** 2 * counts  # bound on each group's coefficients
    present = np.abs(coef).max(axis=0) > 1e-9 * scale
    coef = np.where(np.abs(coef) > 1e-12 * scale, coef, 0.0)  # rounding residue of zeros
    return ReflectionGroups(
        system=template.system,
        keys=unique[present].astype(np.float64),
        hkl=hkl[first[present]],
        multiplicity=counts[present],
        dw_b=dw_b,
        dw_coef=np.ascontiguousarray(coef[:, present]),
    )
