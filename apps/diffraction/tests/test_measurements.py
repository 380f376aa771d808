"""Measured-pattern readers (GSAS, Mantid NeXus, text), the simulator's input axis, the
count-conserving rebinning onto its ToF grid and d-spacing → ToF."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from streamal.inference import InputGrid, Measurement, PatternError, place_on_grid
from streamal.inference.predictor import select_patterns
from streamal.inference.readers import read_patterns
from streamal_diffraction import TofDiffractionSimulator
from streamal_diffraction.measurements import (
    d_to_tof,
    write_gsas,
    write_mantid_nexus,
    write_xye,
)


@pytest.fixture(scope="module")
def sim() -> TofDiffractionSimulator:
    return TofDiffractionSimulator()


@pytest.fixture(scope="module")
def pattern(sim) -> np.ndarray:
    """A tetragonal pattern on the simulator's grid (intensity per µs)."""
    params = sim.space.complete(1, np.array([[3.95, 4.05]]))
    return sim.simulate(np.array([1]), params)[0].astype(np.float64)


@pytest.fixture(scope="module")
def grid(sim) -> InputGrid:
    return InputGrid.from_dict(sim.input_axis())


def test_input_axis_is_the_grid_and_d_to_tof_the_instrument(sim, grid) -> None:
    axis = sim.input_axis()
    assert axis["name"] == "tof" and axis["unit"] == "µs"
    assert np.array_equal(grid.values, sim.grid.points()) and len(grid.values) == 2806
    inst = sim.instrument
    assert axis["conversions"]["d"]["terms"][:3] == [[0, inst.zero], [1, inst.difc], [2, inst.difa]]
    d = np.linspace(0.3, 2.5, 7)
    assert np.allclose(d_to_tof(d, inst), inst.tof(d))
    assert np.allclose(grid.to_grid_axis(d, "dSpacing"), inst.tof(d))  # Mantid's unit ID
    assert grid.axis_named("TOF") == "tof" and grid.axis_named("d-spacing") == "d"


def _counts(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5000, n).astype(np.float64)


@pytest.mark.parametrize("data_type", ["FXYE", "ESD", "STD"])
@pytest.mark.parametrize("binning", ["SLOG", "RALF"])
def test_gsas_round_trips(tmp_path: Path, binning: str, data_type: str) -> None:
    edges = 1360.0 * (1.0 + 0.0009381) ** np.arange(301)  # 1360 µs × 32 is a whole number
    y = _counts(300)
    e = np.sqrt(y) + 0.25
    path = write_gsas(tmp_path / "p.gsa", edges, y, e, binning=binning, data_type=data_type, bank=3)
    (m,) = read_patterns(path)
    assert m.label == "bank 3" and m.unit == "tof" and m.counts is False
    assert np.allclose(m.x, 0.5 * (edges[1:] + edges[:-1]), rtol=1e-8)
    assert np.array_equal(m.y, y)
    if data_type == "FXYE":
        assert np.allclose(m.e, e, rtol=1e-9)
    elif data_type == "ESD":
        assert np.allclose(m.e, e, atol=1e-3)
    else:  # STD: esd √(y/n), n counters = 1
        assert np.allclose(m.e, np.sqrt(y))
    if data_type != "FXYE":  # the binning made the bins
        assert m.edges is not None and np.allclose(m.edges, edges, rtol=1e-8)


def test_gsas_banks_comments_and_mantid_records(tmp_path: Path) -> None:
    a = write_gsas(tmp_path / "a.gsa", 1400.0 * 1.001 ** np.arange(11), _counts(10), bank=1)
    b = write_gsas(tmp_path / "b.gsa", 1400.0 * 1.002 ** np.arange(6), _counts(5, 1), bank=2)
    lines_b = b.read_text().splitlines()
    both = tmp_path / "both.gss"
    both.write_text(
        a.read_text() + "# with Y multiplied by the bin widths.\n" + "\n".join(lines_b[2:]) + "\n"
    )
    first, second = read_patterns(both)
    assert (first.label, second.label) == ("bank 1", "bank 2") and len(second.y) == 5
    assert first.counts and second.counts  # the note holds for the file
    assert [m.label for m in select_patterns([first, second], 2)] == ["bank 2"]  # --bank 2
    # As ISIS writes RALF (the x column are bin centres) and GSAS-II's instrument line
    isis = tmp_path / "pearl.gss"
    isis.write_text(
        "NBS Si (SRM640c)\nInstrument parameter file cycle_101.prl\n"
        "# Note: Y (E) values are intensity (error) * binwidth\n"
        "BANK  1  3  3 RALF    48008   64    64331 0.0010 FXYE\n"
        "     1500.247192         23.55114746        0.3757147491\n"
        "     1502.247437         22.82582855        0.3674654961\n"
        "     1504.247803         22.37240028        0.3632779717\n"
    )
    (m,) = read_patterns(isis)
    assert m.counts and m.unit == "tof" and m.x.tolist() == [1500.247192, 1502.247437, 1504.247803]
    # CONS binning (constant steps): the unit is left to be found
    cons = tmp_path / "cons.gsa"
    cons.write_text("title\nBANK 1 4 1 CONS 1500 2 0 0 ESD\n" + "    10.0     1.0" * 4 + "\n")
    (m,) = read_patterns(cons)
    assert m.unit is None and m.x.tolist() == [1500, 1502, 1504, 1506] and m.y.tolist() == [10] * 4


@pytest.mark.parametrize(
    "text, message",
    [
        ("title\n1 2 3\n", "no BANK record"),
        (
            "title\nBANK 1 20 2 SLOG 1000 2000 0.001 0 ESD\n   10.0    1.0\n",
            "1 of the 20 values its BANK line announces",
        ),
        ("title\nBANK 1 2 2 TIME_MAP 1 0 0 0 STD\n 1    10 1    12\n", "TIME_MAP"),
        ("title\nBANK 1 2 2 SLOG 1000 2000 0.001 0 WHAT\n", "unknown data type 'WHAT'"),
        ("title\nBANK 1 2 2 SLOG 1000 2000 0.001 0 FXYE\n1000 abc 1\n", "'abc' is not a number"),
    ],
)
def test_gsas_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.gsa"
    path.write_text(text)
    with pytest.raises(PatternError, match=message) as info:
        read_patterns(path)
    assert str(info.value).startswith(f"{path}: ")


def test_nexus_round_trips_points_histograms_and_spectra(tmp_path: Path) -> None:
    x = np.linspace(1400.0, 1500.0, 50)
    y, e = _counts(50), np.sqrt(_counts(50)) + 0.1
    (m,) = read_patterns(write_mantid_nexus(tmp_path / "p.nxs", x, y, e))
    assert m.unit == "TOF" and m.edges is None and not m.counts
    assert np.array_equal(m.x, x) and np.array_equal(m.y, y) and np.array_equal(m.e, e)
    edges = np.linspace(1.0, 2.0, 51)
    h = write_mantid_nexus(tmp_path / "h.nxs", edges, y, unit="dSpacing", distribution=False)
    (m,) = read_patterns(h)
    assert m.unit == "dSpacing" and m.counts and np.array_equal(m.edges, edges)
    assert np.allclose(m.x, 0.5 * (edges[1:] + edges[:-1]))
    with h5py.File(tmp_path / "two.h5", "w") as fh:  # two spectra sharing axis1
        ws = fh.create_group("mantid_workspace_1/workspace")
        ws["values"] = np.stack([y, 2 * y])
        ws["axis1"] = x
        ws["axis1"].attrs["units"] = b"TOF"
    assert [m.label for m in read_patterns(tmp_path / "two.h5")] == ["spectrum 0", "spectrum 1"]
    with h5py.File(tmp_path / "other.nxs", "w") as fh:
        fh["entry/data"] = y
    with pytest.raises(PatternError, match="no /mantid_workspace_N group"):
        read_patterns(tmp_path / "other.nxs")


def test_text_round_trips(tmp_path: Path) -> None:
    x, y, e = np.linspace(0.5, 2.0, 40), _counts(40) / 7, np.full(40, 0.5)
    (m,) = read_patterns(write_xye(tmp_path / "p.xye", x, y, e, unit="d"))
    assert m.unit == "d" and np.array_equal(m.x, x) and np.array_equal(m.y, y)
    assert np.array_equal(m.e, e)
    csv = tmp_path / "p.csv"
    csv.write_text(
        "TOF (us),intensity\n" + "\n".join(f"{a},{b}" for a, b in zip(x, y, strict=True))
    )
    (m,) = read_patterns(csv)
    assert m.unit == "tof" and m.e is None and np.array_equal(m.y, y)


def test_rebinning_conserves_counts(grid: InputGrid) -> None:
    rng = np.random.default_rng(3)
    edges = np.sort(rng.uniform(2000.0, 15000.0, 701))  # irregular bins inside the grid
    counts = rng.uniform(0.0, 100.0, 700)
    placed = place_on_grid(
        Measurement(y=counts, x=0.5 * (edges[1:] + edges[:-1]), edges=edges, counts=True),
        grid,
        len(grid.values),
        fill="zero",
    )
    widths = np.diff(grid.edges)
    assert placed.resampled and placed.coverage == pytest.approx(placed.covered.mean())
    span = np.log(edges[-1] / edges[0]) / np.log(grid.edges[-1] / grid.edges[0])
    assert placed.coverage == pytest.approx(span, rel=1e-3)  # log-spaced bins: a log span
    held = placed.values * widths * placed.covered  # the counts each grid bin holds
    assert held.sum() == pytest.approx(counts.sum(), rel=1e-12)
    assert placed.values[grid.values < edges[0] - 10].max() == 0.0  # outside: filled with 0
    with pytest.raises(PatternError, match="at least 90% is needed"):
        place_on_grid(
            Measurement(y=counts, edges=edges, x=0.5 * (edges[1:] + edges[:-1]), counts=True),
            grid,
            len(grid.values),
            min_coverage=0.9,
        )


def test_a_d_spacing_pattern_gives_the_tof_pattern(sim, grid, pattern, tmp_path: Path) -> None:
    t_edges = grid.edges
    d_edges = sim.instrument.d_spacing(t_edges)
    counts = pattern * np.diff(t_edges)
    # a histogram in d with the same counts per bin: back on the ToF grid exactly
    in_d = Measurement(y=counts, x=0.5 * (d_edges[1:] + d_edges[:-1]), edges=d_edges, counts=True)
    placed = place_on_grid(in_d, grid, len(grid.values), unit="d")
    assert placed.unit == "d" and placed.coverage == pytest.approx(1.0)
    assert np.allclose(placed.values, pattern, rtol=1e-6, atol=1e-9 * pattern.max())
    # intensity per Å at the d of each grid point, in a text file without a unit: found as d
    d = sim.instrument.d_spacing(grid.values)
    per_angstrom = pattern * np.gradient(grid.values, d)
    (m,) = read_patterns(write_xye(tmp_path / "d.xy", d, per_angstrom, unit="unknown"))
    placed = place_on_grid(m, grid, len(grid.values))
    assert placed.unit == "d" and not placed.resampled
    assert np.allclose(placed.values, pattern, rtol=1e-3, atol=1e-6 * pattern.max())
    # a coarser ToF histogram of the same pattern: counts kept, peaks where they were
    coarse_edges = t_edges[::4]
    coarse = np.add.reduceat(counts, np.arange(0, len(counts), 4))[: len(coarse_edges) - 1]
    placed = place_on_grid(
        Measurement(
            y=coarse,
            x=np.sqrt(coarse_edges[1:] * coarse_edges[:-1]),
            edges=coarse_edges,
            counts=True,
        ),
        grid,
        len(grid.values),
    )
    held = placed.values * np.diff(t_edges) * placed.covered
    assert held.sum() == pytest.approx(coarse.sum(), rel=1e-12)
    assert abs(int(np.argmax(placed.values)) - int(np.argmax(pattern))) <= 4
