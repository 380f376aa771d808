"""Structure templates from CIF files (gemmi) and materials as simulator classes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from streamal.errors import ParameterError
from streamal.simulation.simulator import check_simulator
from streamal_diffraction import TofDiffractionSimulator
from streamal_diffraction.cell import METRIC_KEYS, d_spacings, hkl_box
from streamal_diffraction.cif import read_cif, template_from_cif
from streamal_diffraction.structures import (
    SCATTERING_LENGTH_FM,
    TEMPLATES,
    Template,
    reflection_groups,
    structure_factors,
)

DATA = Path(__file__).parent / "data"
PAPER = ("trigonal", "tetragonal", "cubic")
E1_RANGES = {  # the E1 bounds of the built-in classes
    "trigonal": {"a": [3.8, 4.2], "alpha": [60.0, 120.0]},
    "tetragonal": {"a": [3.8, 4.2], "c": [3.8, 4.2]},
    "cubic": {"a": [3.5, 4.5]},
}
TETRAGONAL_CIF = (DATA / "BaTiO3-tetragonal.cif").read_text()


def _sites(template: Template) -> tuple[list[str], np.ndarray]:
    """Elements and ``(x, y, z, occupancy, B)`` rows of every atom, sorted."""
    rows = sorted(
        (a.element, *(round(x, 9) for x in a.xyz), a.occupancy, template.b_iso(a))
        for a in template.atoms
    )
    return [r[0] for r in rows], np.array([r[1:] for r in rows], dtype=np.float64)


def _min_distance(template: Template) -> float:
    """Shortest distance (Å, in the template's reference cell) between two of its atoms."""
    a, b, c, al, be, ga = template.cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    g = np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca]])
    g = np.vstack([g, [a * c * cb, b * c * ca, c * c]])
    xyz = np.array([x.xyz for x in template.atoms])
    diff = xyz[:, None, :] - xyz[None, :, :]
    diff -= np.round(diff)
    dist = np.sqrt(np.einsum("ijk,kl,ijl->ij", diff, g, diff))
    return float(dist[~np.eye(len(xyz), dtype=bool)].min())


@pytest.mark.parametrize("system", PAPER)
def test_batio3_cifs_give_the_built_in_templates(system: str) -> None:
    template = template_from_cif(DATA / f"BaTiO3-{system}.cif")
    built_in = TEMPLATES[system]
    assert template.system == system
    (elements, rows), (want_elements, want_rows) = _sites(template), _sites(built_in)
    assert elements == want_elements
    np.testing.assert_allclose(rows, want_rows, rtol=0, atol=1e-12)
    lengths = dict(template.scattering_lengths)
    assert lengths == {el: SCATTERING_LENGTH_FM[el] for el in built_in.species}


def test_batio3_cifs_simulate_the_built_in_patterns() -> None:
    built_in = TofDiffractionSimulator()
    from_cif = TofDiffractionSimulator(
        materials=[
            {"name": c, "cif": str(DATA / f"BaTiO3-{c}.cif"), "ranges": E1_RANGES[c]} for c in PAPER
        ]
    )
    assert from_cif.space.to_dict() == built_in.space.to_dict()
    rng = np.random.default_rng(0)
    for k, c in enumerate(built_in.space.classes):
        params = built_in.space.complete(k, rng.uniform(c.low, c.high, (8, len(c.free))))
        ours, theirs = (
            built_in.reflections(c.name, params[0]),
            from_cif.reflections(c.name, params[0]),
        )
        np.testing.assert_array_equal(theirs.hkl, ours.hkl)
        np.testing.assert_array_equal(theirs.multiplicity, ours.multiplicity)
        np.testing.assert_allclose(theirs.f_squared, ours.f_squared, rtol=1e-9, atol=1e-9)
        classes = np.full(len(params), k)
        a, b = built_in.simulate(classes, params), from_cif.simulate(classes, params)
        # float32 patterns of float64 intensities equal to 1e-15: at most a last-bit difference
        assert np.abs(a - b).max() <= 2.4e-7 * np.abs(a).max()


@pytest.mark.parametrize(
    ("name", "space_group", "system", "multiplicities"),
    [
        ("TiO2-rutile", "P 42/m n m", "tetragonal", {"Ti1": 2, "O1": 4}),
        ("Al2O3-corundum", "R -3 c:H", "hexagonal", {"Al1": 12, "O1": 18}),
        ("Si-diamond", "F d -3 m:2", "cubic", {"Si1": 8}),
        ("BaTiO3-trigonal", "R 3 m:R", "trigonal", {"Ba1": 1, "Ti1": 1, "O1": 3}),
        ("BaTiO3-tetragonal", "P 4 m m", "tetragonal", {"Ba1": 1, "Ti1": 1, "O1": 1, "O2": 2}),
    ],
)
def test_space_group_system_and_multiplicities(name, space_group, system, multiplicities) -> None:
    st = read_cif(DATA / f"{name}.cif")
    assert (st.space_group, st.system) == (space_group, system)
    assert {s.label: s.multiplicity for s in st.sites} == multiplicities
    assert len(st.template.atoms) == sum(multiplicities.values())
    assert all(0.0 <= x < 1.0 for a in st.template.atoms for x in a.xyz)
    assert _min_distance(st.template) > 1.0  # no atom twice at a special position


def test_rutile_positions_u_iso_and_scattering_lengths() -> None:
    st = read_cif(DATA / "TiO2-rutile.cif")
    o = sorted(a.xyz for a in st.template.atoms if a.element == "O")
    x = 0.30478
    want = sorted(
        [(x, x, 0.0), (1 - x, 1 - x, 0.0), (0.5 + x, 0.5 - x, 0.5), (0.5 - x, 0.5 + x, 0.5)]
    )
    np.testing.assert_allclose(o, want, atol=1e-12)
    assert st.sites[0].element == "Ti"  # type symbol Ti4+: the charge is dropped
    assert st.sites[0].b_iso == pytest.approx(8.0 * math.pi**2 * 0.0056, rel=1e-10)
    assert dict(st.template.scattering_lengths) == {"Ti": -3.438, "O": 5.803}
    assert st.cell == (4.5937, 4.5937, 2.9587, 90.0, 90.0, 90.0)


def test_rounded_special_positions_are_one_atom() -> None:
    wurtzite = """data_ZnO
_cell_length_a 3.25
_cell_length_b 3.25
_cell_length_c 5.21
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
_space_group_name_H-M_alt 'P 63 m c'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Zn1 Zn 0.3333 0.6667 0.0 0.01
O1 O 0.333 0.667 0.382 0.01
"""
    st = read_cif(wurtzite)
    assert st.system == "hexagonal"
    assert [s.multiplicity for s in st.sites] == [2, 2]


def test_split_sites_near_a_special_position_are_all_kept() -> None:
    """Six half-occupied images 0.17 Å apart around the cube centre: all six are atoms (gemmi's
    own expansion would merge them within 0.4 Å)."""
    text = TETRAGONAL_CIF.replace("'P 4 m m'", "'P m -3 m'").replace(
        "_space_group_IT_number 99", ""
    )
    text = text.replace("3.99", "4.0").replace("4.03", "4.0")
    text = text.replace("Ti1 Ti 0.5 0.5 0.515 1.0 0.5", "Ti1 Ti 0.5 0.5 0.53 0.16667 0.5")
    text = text.replace("O1 O 0.5 0.5 0.985 1.0 0.8\n", "").replace(
        "O2 O 0.5 0.0 0.485", "O1 O 0.5 0.5 0.0"
    )
    st = read_cif(text)
    ti = [a for a in st.template.atoms if a.element == "Ti"]
    assert len(ti) == 6 and all(a.occupancy == 0.16667 for a in ti)
    assert {s.label: s.multiplicity for s in st.sites} == {"Ba1": 1, "Ti1": 6, "O1": 3}


def test_occupancy_and_per_site_b_enter_the_structure_factors() -> None:
    text = TETRAGONAL_CIF.replace("Ti1 Ti 0.5 0.5 0.515 1.0 0.5", "Ti1 Ti 0.5 0.5 0.515 0.9 0.5")
    text = text.replace("O2 O 0.5 0.0 0.485 1.0 0.8", "O2 O 0.5 0.0 0.485 1.0 1.1")
    template = template_from_cif(text)
    assert template.scatterers == (("Ba", 0.5), ("Ti", 0.5), ("O", 0.8), ("O", 1.1))
    f000 = structure_factors(template, np.zeros((1, 3)))[0]
    assert f000.real == pytest.approx(5.07 + 0.9 * -3.438 + 3 * 5.803)
    # the merged groups carry the same |F|² as the sum over their reflections
    cell = np.array([(3.95, 3.95, 4.05, 90.0, 90.0, 90.0)])
    groups = reflection_groups(template, (5, 5, 5))
    hkl = hkl_box(5, 5, 5)
    d = d_spacings(hkl, cell)[0]
    f2 = np.abs(structure_factors(template, hkl, d)) ** 2
    keys = METRIC_KEYS["tetragonal"].keys(hkl)
    for g in range(0, len(groups), 5):
        members = np.all(keys == groups.keys[g], axis=1)
        got = groups.f_squared(np.array([g]), np.array([1.0 / d[members][0] ** 2]))[0]
        np.testing.assert_allclose(got, f2[members].sum(), rtol=1e-10, atol=1e-9)


def test_material_classes_simulate_and_rebuild_from_options() -> None:
    sim = TofDiffractionSimulator(
        materials=[
            {"cif": str(DATA / "TiO2-rutile.cif"), "ranges": {"a": [4.5, 4.7]}},
            {"name": "corundum", "cif": str(DATA / "Al2O3-corundum.cif")},
        ]
    )
    assert sim.space.class_names == ("TiO2-rutile", "corundum")
    rutile, corundum = sim.space.classes
    assert dict(rutile.bounds) == {"a": (4.5, 4.7), "c": (2.810765, 3.106635)}  # c: ±5 %
    assert dict(corundum.tied) == {"b": "a", "alpha": 90.0, "beta": 90.0, "gamma": 120.0}
    check_simulator(sim, n=2)
    again = TofDiffractionSimulator(**sim.options())
    assert again.space.to_dict() == sim.space.to_dict()


def test_material_errors_name_the_input(tmp_path: Path) -> None:
    rutile = str(DATA / "TiO2-rutile.cif")
    with pytest.raises(ParameterError, match="not both"):
        TofDiffractionSimulator(classes=["cubic"], materials=[{"cif": rutile}])
    with pytest.raises(ParameterError, match=r"materials\[0\]: rnages: Extra inputs"):
        TofDiffractionSimulator(materials=[{"cif": rutile, "rnages": {}}])
    with pytest.raises(ParameterError, match=r"materials\[0\] \(x\): CIF file .* not found"):
        TofDiffractionSimulator(materials=[{"cif": str(tmp_path / "x.cif")}])
    with pytest.raises(ParameterError, match="'alpha'.*not a free parameter of 'tetragonal'"):
        TofDiffractionSimulator(materials=[{"cif": rutile, "ranges": {"alpha": [80, 100]}}])
    broken = tmp_path / "broken.cif"
    broken.write_text(
        Path(rutile).read_text().replace("_cell_length_b 4.5937", "_cell_length_b 4.6")
    )
    with pytest.raises(ParameterError, match="has b = 4.6, but a tetragonal cell needs b = a"):
        TofDiffractionSimulator(materials=[{"cif": str(broken)}])


def test_cif_errors_name_the_problem() -> None:
    no_adp = TETRAGONAL_CIF.replace("_atom_site_B_iso_or_equiv\n", "").replace(" 0.5\n", "\n")
    no_adp = no_adp.replace(" 0.8\n", "\n")
    with pytest.raises(ParameterError, match=r"sites \['Ba1', 'Ti1', 'O1', 'O2'\] give no"):
        read_cif(no_adp)
    assert {a.b_iso for a in template_from_cif(no_adp, b_iso_default=0.3).atoms} == {0.3}
    with pytest.raises(ParameterError, match="no neutron scattering length"):
        read_cif(TETRAGONAL_CIF.replace("Ba1 Ba", "Ba1 Xx"))
    with pytest.raises(ParameterError, match="no space group"):
        read_cif(TETRAGONAL_CIF.replace("_space_group_name_H-M_alt 'P 4 m m'\n", ""))
    with pytest.raises(ParameterError, match="inconsistent symmetry"):
        read_cif(TETRAGONAL_CIF.replace("_space_group_IT_number 99", "_space_group_IT_number 98"))
    with pytest.raises(ParameterError, match="unique axis c"):
        read_cif(
            TETRAGONAL_CIF.replace("'P 4 m m'", "'P 1 1 2'").replace("IT_number 99", "IT_number 3")
        )
    with pytest.raises(ParameterError, match="system must be one of"):
        read_cif(TETRAGONAL_CIF, system="tetragonl")
    assert template_from_cif(TETRAGONAL_CIF, system="orthorhombic").system == "orthorhombic"
