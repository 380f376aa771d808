"""Structure templates of any material from a CIF file, and materials as simulator classes.

The CIF is read with gemmi (``gemmi.make_small_structure_from_block``): it reads small-molecule
CIF, knows every space-group setting of the International Tables (the operations come from the
CIF's symmetry-operation loop, else its Hall or Hermann–Mauguin symbol) and carries the Sears
(1992) bound coherent neutron scattering lengths (``Element.neutron92``). spglib has the
symmetry but reads no CIF and has no scattering lengths, so gemmi is the one library for all.

What a template takes from the CIF:

* the cell: the template's reference cell (a campaign varies it within per-class ranges);
* the space group: its operations expand each site of the asymmetric unit to the unit cell;
  images of one site closer than ``merge_distance`` (default 0.1 Å, in the CIF's cell) are one
  atom (a special position). gemmi's ``get_all_unit_cell_sites`` merges within 0.4 Å, which
  would also merge the half-occupied split positions of disordered sites, so it is not used;
* the crystal system: the metric system of :mod:`~streamal_diffraction.cell`; a trigonal group
  in the rhombohedral setting (``R 3 m:R``) is ``"trigonal"`` (rhombohedral axes, as the
  built-in class), in the hexagonal setting (every ``P 3..``, ``R 3 m:H``) ``"hexagonal"``;
  monoclinic cells need unique axis b;
* per site: element (``_atom_site_type_symbol``, else the label; charges dropped) and its
  scattering length, occupancy (default 1), ``B = 8π²·U_iso`` (``_atom_site_U_iso_or_equiv``
  or ``_atom_site_B_iso_or_equiv``; a site with anisotropic U only takes ``U_eq``). A site
  without any displacement parameter is an error unless ``b_iso_default`` is given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamal.errors import ParameterError
from streamal_diffraction.cell import METRIC_KEYS
from streamal_diffraction.structures import Atom, Template

MERGE_DISTANCE = 0.1
"""Images of one site closer than this (Å) are one atom at a special position."""

U_TO_B = 8.0 * math.pi**2
"""``B = 8π²·U``."""


@dataclass(frozen=True)
class CifSite:
    """One site of the asymmetric unit.

    Attributes:
        label: ``_atom_site_label``.
        element: Element symbol.
        xyz: Fractional coordinates as the CIF gives them.
        occupancy: Site occupancy.
        b_iso: Isotropic ``B`` (Å²).
        multiplicity: Atoms this site puts in the unit cell.
    """

    label: str
    element: str
    xyz: tuple[float, float, float]
    occupancy: float
    b_iso: float
    multiplicity: int


@dataclass(frozen=True)
class CifStructure:
    """A structure read from a CIF: the asymmetric unit and its expansion.

    Attributes:
        name: Data block name.
        space_group: Extended Hermann–Mauguin symbol (gemmi's ``xhm``, e.g. ``"R 3 m:R"``);
            ``""`` if only symmetry operations of an untabulated setting were given.
        number: Space-group number (0 if unknown).
        system: Metric system (a key of :data:`~streamal_diffraction.cell.METRIC_KEYS`).
        cell: ``(a, b, c, α, β, γ)`` (Å, °).
        sites: The asymmetric unit.
        template: Every atom of the unit cell, ready for the simulator.
    """

    name: str
    space_group: str
    number: int
    system: str
    cell: tuple[float, float, float, float, float, float]
    sites: tuple[CifSite, ...]
    template: Template


def _document(source: str | os.PathLike[str]) -> tuple[Any, str]:
    """The gemmi CIF document of a file path or of CIF text, and how to name it in errors."""
    import gemmi

    text = isinstance(source, str) and "\n" in source and "data_" in source
    where = "CIF text" if text else f"CIF file {str(source)!r}"
    if not text and not Path(source).is_file():
        raise ParameterError(f"{where} not found (from {os.getcwd()})")
    try:
        doc = gemmi.cif.read_string(source) if text else gemmi.cif.read(str(source))
    except (RuntimeError, ValueError) as exc:
        raise ParameterError(f"{where} is not valid CIF: {exc}") from None
    return doc, where


def _block(doc: Any, where: str, block: str | None) -> Any:
    """The data block to read: ``block`` by name, else the only one with atom sites."""
    names = [b.name for b in doc]
    if block is not None:
        found = doc.find_block(block)
        if found is None:
            raise ParameterError(f"{where}: no data block {block!r}; blocks: {names}")
        return found
    with_sites = [b for b in doc if b.find_values("_atom_site_fract_x")]
    if len(with_sites) != 1:
        raise ParameterError(
            f"{where}: {len(with_sites)} data blocks have _atom_site_fract_x (blocks: {names}); "
            "name the one to read with `block`"
        )
    return with_sites[0]


def metric_system(space_group: Any) -> str:
    """The metric system of :mod:`~streamal_diffraction.cell` of a ``gemmi.SpaceGroup``.

    Raises:
        ParameterError: A monoclinic setting whose unique axis is not b.
    """
    system = space_group.crystal_system_str()
    if system == "trigonal":
        return "trigonal" if space_group.ext == "R" else "hexagonal"
    if system == "monoclinic" and space_group.monoclinic_unique_axis() != "b":
        raise ParameterError(
            f"space group {space_group.xhm()!r} has unique axis "
            f"{space_group.monoclinic_unique_axis()}; the monoclinic cell here has unique axis "
            "b (α = γ = 90°): transform the CIF to a unique-axis-b setting"
        )
    return system


def _displacements(
    block: Any, st: Any, where: str, b_iso_default: float | None
) -> dict[str, float]:
    """``label -> B`` (Å²) of every site."""
    import gemmi

    table = block.find("_atom_site_", ["label", "?U_iso_or_equiv", "?B_iso_or_equiv"])
    given = set()
    for row in table:
        if any(row.has(i) and not gemmi.cif.is_null(row[i]) for i in (1, 2)):
            given.add(gemmi.cif.as_string(row[0]))
    out: dict[str, float] = {}
    missing = []
    for site in st.sites:
        if site.label in given:
            u = site.u_iso
        elif site.aniso.nonzero():
            u = st.cell.calculate_u_eq(site.aniso)
        elif b_iso_default is not None:
            out[site.label] = float(b_iso_default)
            continue
        else:
            missing.append(site.label)
            continue
        # B given in the CIF comes back through U = B/(8π²): round off the last bits
        out[site.label] = float(f"{U_TO_B * u:.12g}")
    if missing:
        raise ParameterError(
            f"{where}: sites {missing} give no displacement parameter (_atom_site_U_iso_or_equiv,"
            " _atom_site_B_iso_or_equiv or _atom_site_aniso_U_*); add one or pass b_iso_default"
        )
    return out


def _symmetry(st: Any, block: Any, where: str) -> tuple[Any, list[Any]]:
    """The space group (``gemmi.SpaceGroup``, ``None`` for an untabulated setting) and its
    operations (``gemmi.Op``, centring included).

    Sources in gemmi's order: the symmetry-operation loop, the Hall symbol, the H-M symbol. An
    H-M symbol alone takes its origin choice or axes (``1``/``2``, ``h``/``r``) from
    ``_space_group_IT_coordinate_system_code``, which gemmi does not read (it takes origin
    choice 2, and the axes that fit the cell angles).
    """
    import gemmi

    sg = st.spacegroup
    code = block.find_value("_space_group_IT_coordinate_system_code")
    code = "" if code is None else gemmi.cif.as_string(code).strip()
    if (
        code.lower() in ("1", "2", "h", "r")
        and st.spacegroup_hm
        and not (st.symops or st.spacegroup_hall)
    ):
        sg = gemmi.find_spacegroup_by_name(f"{st.spacegroup_hm}:{code}")
        if sg is None:
            raise ParameterError(
                f"{where}: space group {st.spacegroup_hm!r} has no setting {code!r} "
                "(_space_group_IT_coordinate_system_code)"
            )
    if sg is not None:
        problems = st.check_spacegroup().strip()
        if problems:
            raise ParameterError(
                f"{where}: inconsistent symmetry: {problems.replace(chr(10), '; ')}"
            )
        return sg, list(sg.operations())
    if st.symops:  # a setting gemmi has no table entry for: its own operation list
        return None, [gemmi.Op(t) for t in st.symops]
    raise ParameterError(
        f"{where}: no space group found; give _space_group_name_H-M_alt, "
        "_space_group_name_Hall or the _space_group_symop_operation_xyz loop"
    )


def _images(
    xyz: np.ndarray, ops: Sequence[Any], orth: np.ndarray, merge_distance: float
) -> list[tuple[float, float, float]]:
    """Distinct images of one site in the unit cell, ``[0, 1)`` each, the site itself first."""
    kept: list[np.ndarray] = []
    for op in ops:
        image = np.mod(np.asarray(op.apply_to_xyz(xyz.tolist()), dtype=np.float64), 1.0)
        image[image >= 1.0] = 0.0  # np.mod(-1e-17, 1.0) rounds to 1.0
        if any(
            np.linalg.norm(orth @ ((image - k) - np.round(image - k))) < merge_distance
            for k in kept
        ):
            continue
        kept.append(image)
    return [(float(x), float(y), float(z)) for x, y, z in kept]


def read_cif(
    source: str | os.PathLike[str],
    *,
    block: str | None = None,
    system: str | None = None,
    name: str | None = None,
    merge_distance: float = MERGE_DISTANCE,
    b_iso_default: float | None = None,
) -> CifStructure:
    """Read one structure from a CIF.

    Args:
        source: Path of a CIF file, or CIF text.
        block: Data block to read; default the only block with atom sites.
        system: Metric system to vary the cell in (a key of
            :data:`~streamal_diffraction.cell.METRIC_KEYS`); default the space group's.
        name: Template name; default the data block's name.
        merge_distance: Images of one site closer than this (Å) are one atom.
        b_iso_default: ``B`` (Å²) of sites that give no displacement parameter; default: such
            sites are an error.

    Raises:
        ParameterError: Missing file, invalid CIF, no or inconsistent space group, an unknown
            element, a site without displacement parameter, or an unknown ``system``.
    """
    import gemmi

    doc, where = _document(source)
    blk = _block(doc, where, block)
    st = gemmi.make_small_structure_from_block(blk)
    if not st.sites:
        raise ParameterError(f"{where}: block {blk.name!r} has no atom sites")
    if not st.cell.is_crystal():
        raise ParameterError(f"{where}: block {blk.name!r} gives no unit cell (_cell_length_a …)")
    sg, ops = _symmetry(st, blk, where)
    if system is None:
        if sg is None:
            raise ParameterError(
                f"{where}: its symmetry operations match no tabulated space-group setting; "
                f"name the metric system with `system` (one of {list(METRIC_KEYS)})"
            )
        system = metric_system(sg)
    elif system not in METRIC_KEYS:
        raise ParameterError(f"system must be one of {list(METRIC_KEYS)}, got {system!r}")
    b_iso = _displacements(blk, st, where, b_iso_default)
    orth = np.array(st.cell.orth.mat, dtype=np.float64)
    lengths: dict[str, float] = {}
    sites, atoms = [], []
    for site in st.sites:
        element = site.element.name
        b = float(site.element.neutron92.get_coefs()[0])
        if b == 0.0:
            raise ParameterError(
                f"{where}: site {site.label!r}: no neutron scattering length for element "
                f"{site.type_symbol!r}; give a known element in _atom_site_type_symbol"
            )
        lengths[element] = b
        xyz = np.array([site.fract.x, site.fract.y, site.fract.z], dtype=np.float64)
        images = _images(xyz, ops, orth, merge_distance)
        occ, b_site = float(site.occ), b_iso[site.label]
        atoms += [Atom(element, image, occ, b_site) for image in images]
        sites.append(
            CifSite(site.label, element, tuple(xyz.tolist()), occ, b_site, len(images))  # type: ignore[arg-type]
        )
    cell = tuple(float(v) for v in st.cell.parameters)
    template = Template(
        name=name or blk.name,
        system=system,
        atoms=tuple(atoms),
        scattering_lengths=tuple(lengths.items()),
        b_factors=(),
        space_group=sg.xhm() if sg is not None else "",
        cell=cell,  # type: ignore[arg-type]
    )
    return CifStructure(
        name=blk.name,
        space_group=template.space_group,
        number=sg.number if sg is not None else 0,
        system=system,
        cell=cell,  # type: ignore[arg-type]
        sites=tuple(sites),
        template=template,
    )


def template_from_cif(source: str | os.PathLike[str], **options: Any) -> Template:
    """The structure template of a CIF: every atom of the unit cell (see :func:`read_cif` for
    ``options``: ``block``, ``system``, ``name``, ``merge_distance``, ``b_iso_default``)."""
    return read_cif(source, **options).template


class MaterialOptions(BaseModel):
    """One class of the simulator from a CIF file (an entry of its ``materials`` option)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="class label; default the CIF file's stem")
    cif: str = Field(description="CIF file path, relative to the working directory")
    block: str | None = Field(None, description="data block; default the only one with atoms")
    system: str | None = Field(
        None,
        description="metric system the cell varies in (cubic, tetragonal, trigonal = "
        "rhombohedral axes, hexagonal, orthorhombic, monoclinic, triclinic); default the "
        "space group's",
    )
    ranges: dict[str, tuple[float, float]] | None = Field(
        None,
        description="bounds of free cell parameters {a: [low, high], alpha: …} (Å, °); "
        "default the CIF value ±5 % (lengths) or ±5° (angles)",
    )
    b_iso_default: float | None = Field(
        None, description="B (Å²) for sites without displacement parameters"
    )


@dataclass(frozen=True)
class Material:
    """A simulator class read from a CIF.

    Attributes:
        name: Class label.
        options: The validated entry, ``cif`` made absolute.
        structure: The structure read from the CIF.
    """

    name: str
    options: MaterialOptions
    structure: CifStructure

    @property
    def template(self) -> Template:
        return self.structure.template


def load_materials(entries: Sequence[Mapping[str, Any]]) -> tuple[Material, ...]:
    """Read the simulator's ``materials`` option: one class per entry, in label order.

    Raises:
        ParameterError: An entry that is not a valid :class:`MaterialOptions`, or whose CIF
            cannot be read; the message names the entry.
    """
    if isinstance(entries, (str, bytes, Mapping)) or not entries:
        raise ParameterError(
            "materials must be a non-empty list of {name, cif, ranges, …} entries, "
            f"got {entries!r}"
        )
    out = []
    for i, entry in enumerate(entries):
        try:
            opts = MaterialOptions.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise ParameterError(f"materials[{i}]: {problems}") from None
        path = Path(opts.cif).resolve()
        opts = opts.model_copy(update={"cif": str(path)})
        name = opts.name or path.stem
        try:
            structure = read_cif(
                path,
                block=opts.block,
                system=opts.system,
                name=name,
                b_iso_default=opts.b_iso_default,
            )
        except ParameterError as exc:
            raise ParameterError(f"materials[{i}] ({name}): {exc}") from None
        out.append(Material(name, opts.model_copy(update={"name": name}), structure))
    return tuple(out)
