"""The diffraction-tof plugin: conformance, errors, options, determinism."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest

from streamal.errors import ParameterError
from streamal.simulation.simulator import check_simulator
from streamal_diffraction import ALL_CLASSES, TofDiffractionSimulator, parameter_space, tof_grid


@pytest.fixture(scope="module")
def sim() -> TofDiffractionSimulator:
    return TofDiffractionSimulator()


def test_check_simulator_default(sim: TofDiffractionSimulator) -> None:
    assert sim.space.class_names == ("trigonal", "tetragonal", "cubic")
    assert sim.output_shape == (2806,)
    check_simulator(sim)


def test_check_simulator_all_seven_classes() -> None:
    check_simulator(TofDiffractionSimulator(preset="e2", classes=list(ALL_CLASSES)), n=2)


def test_entry_point_and_options_rebuild(sim: TofDiffractionSimulator) -> None:
    (ep,) = [e for e in entry_points(group="streamal.simulators") if e.name == "diffraction-tof"]
    assert ep.load() is TofDiffractionSimulator
    again = TofDiffractionSimulator(**sim.options())
    assert again.space.to_dict() == sim.space.to_dict()


def test_table_ii_ranges() -> None:
    e1, e2 = parameter_space("e1"), parameter_space("e2")
    assert dict(e1.classes[2].bounds) == {"a": (3.5, 4.5)}
    assert dict(e2.classes[2].bounds) == {"a": (2.5, 5.5)}
    assert dict(e1.classes[0].bounds) == {"a": (3.8, 4.2), "alpha": (60.0, 120.0)}
    assert dict(e2.classes[0].bounds) == {"a": (3.5, 4.5), "alpha": (30.0, 120.0)}
    assert dict(e2.classes[1].bounds) == {"a": (3.5, 4.5), "c": (3.5, 4.5)}
    assert dict(e1.classes[1].min_separation) == {("a", "c"): 0.001}


def test_ranges_override_and_bad_names() -> None:
    sim = TofDiffractionSimulator(ranges={"cubic": {"a": [3.9, 4.1]}})
    assert sim.space.classes[2].bounds["a"] == (3.9, 4.1)
    with pytest.raises(ParameterError, match="not a free parameter"):
        TofDiffractionSimulator(ranges={"cubic": {"c": [3.9, 4.1]}})
    with pytest.raises(ParameterError, match="preset"):
        TofDiffractionSimulator(preset="e3")
    with pytest.raises(ParameterError, match="unknown class"):
        TofDiffractionSimulator(classes=["cubic", "quasicrystal"])


def test_degenerate_rhombohedral_cell_is_a_parameter_error(sim: TofDiffractionSimulator) -> None:
    params = sim.space.complete(0, np.array([[4.0, 100.0], [4.0, 120.0]]))
    with pytest.raises(ParameterError, match=r"sample 1 \(trigonal\): alpha = 120"):
        sim.simulate(np.array([0, 0]), params)


def test_output_is_deterministic_and_independent_of_the_batch(sim) -> None:
    rng = np.random.default_rng(1)
    free = np.column_stack([rng.uniform(3.8, 4.2, 6), rng.uniform(60.0, 119.0, 6)])
    params = sim.space.complete(0, free)
    a = sim.simulate(np.zeros(6, int), params)
    assert np.array_equal(a, sim.simulate(np.zeros(6, int), params))
    mixed_classes = np.array([2, 0, 1])
    mixed = np.vstack(
        [sim.space.complete(2, [[4.0]]), params[3:4], sim.space.complete(1, [[3.9, 4.1]])]
    )
    b = sim.simulate(mixed_classes, mixed)
    np.testing.assert_allclose(b[1], a[3], rtol=1e-6, atol=1e-6 * a[3].max())


def test_cubic_peaks_sit_at_the_tof_of_a_over_root_n(sim: TofDiffractionSimulator) -> None:
    a = 4.0
    y = sim.simulate(np.array([2]), sim.space.complete(2, [[a]]))[0]
    t = tof_grid()
    refl = sim.reflections("cubic", (a, a, a, 90.0, 90.0, 90.0))
    n = np.rint((refl.hkl**2).sum(axis=1)).astype(int)
    np.testing.assert_allclose(refl.d, a / np.sqrt(n), rtol=1e-13)
    # the strongest isolated peak of the pattern is where its reflection says
    strongest = np.argmax(refl.intensity * (refl.tof < t[-1] - 200))
    window = np.abs(t - refl.tof[strongest]) < 150.0
    t_peak = t[window][np.argmax(y[window])]
    assert abs(t_peak - refl.tof[strongest]) < 3 * np.diff(t)[np.searchsorted(t, t_peak)]
    assert y.dtype == np.float32 and y.min() >= 0.0


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("cubic", (5.5, 5.5, 5.5, 90.0, 90.0, 90.0)),
        ("cubic", (2.5, 2.5, 2.5, 90.0, 90.0, 90.0)),
        ("trigonal", (4.5, 4.5, 4.5, 30.0, 30.0, 30.0)),
        ("trigonal", (4.5, 4.5, 4.5, 119.5, 119.5, 119.5)),
        ("tetragonal", (3.5, 3.5, 4.5, 90.0, 90.0, 90.0)),
    ],
)
def test_reflections_cover_the_grid_for_extreme_e2_cells(name: str, cell) -> None:
    from streamal_diffraction.cell import d_spacings, hkl_box
    from streamal_diffraction.instrument import NOMAD_BANK4, grid_index
    from streamal_diffraction.profile import profile_table
    from streamal_diffraction.structures import TEMPLATES, structure_factors

    sim = TofDiffractionSimulator(preset="e2")
    ours = sim.reflections(name, cell)
    table = profile_table(NOMAD_BANK4)
    # brute force: a box 3 wider than needed, every reflection whose peak window reaches the grid
    d_low = NOMAD_BANK4.d_spacing(table.tof_range[0])
    hkl = hkl_box(*(int(max(cell[:3]) / d_low) + 3,) * 3)
    d = d_spacings(hkl, [cell])[0]
    pos = grid_index(NOMAD_BANK4.tof(d))
    hit = (pos >= table.j_min) & (pos < table.j_max + 1)
    f2 = np.abs(structure_factors(TEMPLATES[name], hkl[hit], d[hit])) ** 2
    f2_static = np.abs(structure_factors(TEMPLATES[name], hkl[hit])) ** 2  # no Debye-Waller
    present = f2_static > 1e-9 * f2_static.max()
    assert ours.multiplicity.sum() == present.sum()
    np.testing.assert_allclose(ours.intensity.sum(), (f2 * d[hit] ** 4).sum(), rtol=1e-10)
    assert ours.d.min() >= d[hit].min() and ours.d.max() <= d[hit].max()


def test_non_positive_length_from_user_ranges_is_a_parameter_error() -> None:
    sim = TofDiffractionSimulator(classes=["cubic"], ranges={"cubic": {"a": [-1.0, 4.0]}})
    with pytest.raises(ParameterError, match=r"sample 0 \(cubic\): a = -0.5 must be > 0"):
        sim.simulate(np.array([0]), sim.space.complete(0, [[-0.5]]))
