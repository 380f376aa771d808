"""Any instrument: GSAS-II .instprm files, the ToF grid, the simulator's ``instrument`` option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamal.errors import ConfigError
from streamal.simulation.simulator import check_simulator
from streamal_diffraction import NOMAD_BANK4, TofDiffractionSimulator
from streamal_diffraction.instprm import InstrumentOptions, read_instprm
from streamal_diffraction.instrument import NOMAD_GRID, TofGrid, tof_grid
from streamal_diffraction.profile import ProfileTable, profile_table

DATA = Path(__file__).parent / "data"
NOMAD = DATA / "nomad-bank4.instprm"
POWGEN = DATA / "powgen-like.instprm"
WISH = DATA / "wish-like-2banks.instprm"
CUBIC = [4.0, 4.0, 4.0, 90.0, 90.0, 90.0]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bank.instprm"
    path.write_text(text)
    return path


def _nomad_text(**changes: str | None) -> str:
    """The NOMAD file with items replaced (``None``: removed); keys as in the file."""
    out = []
    for line in NOMAD.read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in changes:
            if changes[key] is None:
                continue
            line = f"{key}:{changes[key]}"
        out.append(line)
    return "\n".join(out) + "\n"


# --- reading ------------------------------------------------------------------------------


def test_nomad_file_is_nomad_bank4() -> None:
    ins = read_instprm(NOMAD)
    assert ins == NOMAD_BANK4
    assert (ins.difc, ins.difa, ins.zero, ins.alpha, ins.beta1, ins.sig2) == (
        9496.17,
        19.21,
        4.84,
        0.167,
        1e-5,
        119.951,
    )
    assert ins.name == str(NOMAD)
    assert read_instprm(NOMAD, bank=4) == ins  # its own Bank:4.0


def test_items_joined_by_semicolons() -> None:
    ins = read_instprm(POWGEN)
    assert ins.difc == 22594.7440533
    assert ins.difa == -0.927945556608
    assert ins.difb == 1.42511277627
    assert ins.zero == -4.96558487231
    assert (ins.two_theta, ins.flight_path) == (90.0, 63.169)
    assert (ins.beta0, ins.beta1, ins.beta_q) == (0.138077840635, 0.0029606795286, 0.0)
    assert (ins.sig0, ins.sig1, ins.sig2, ins.sig_q) == (
        24.8202075678,
        -82.07196132,
        269.925504862,
        0.0,
    )
    d = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(ins.d_spacing(ins.tof(d)), d, rtol=1e-13)


def test_bank_sections() -> None:
    one, two = read_instprm(WISH, bank=1), read_instprm(WISH, bank=2)
    assert (one.difc, one.two_theta, one.sig1) == (20740.3, 152.9, 412.6)
    assert (two.difc, two.two_theta, two.sig1) == (15086.4, 90.0, 890.2)
    assert one.name == f"{WISH} bank 1"
    with pytest.raises(ConfigError, match=r"holds banks 1, 2; choose one with bank"):
        read_instprm(WISH)
    with pytest.raises(ConfigError, match=r"no bank 3; its banks are 1, 2"):
        read_instprm(WISH, bank=3)
    with pytest.raises(ConfigError, match=r"holds one bank \(Bank = 4.*not bank 1"):
        read_instprm(NOMAD, bank=1)


def test_multiline_values_blank_lines_and_spaces(tmp_path: Path) -> None:
    text = _nomad_text(difC=" 9496.17 ; Azimuth : 0.0;") + (
        "\nCorrectionCode:'''# a correction GSAS-II applies to data\nx = 1\n'''\n"
    )
    assert read_instprm(_write(tmp_path, text)) == NOMAD_BANK4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_nomad_text(difC=None), r"bank.instprm: missing difC; a GSAS-II TOF instrument file"),
        (_nomad_text(Type=None, alpha=None), r"missing Type, alpha"),
        (_nomad_text(difC="abc"), r"bank.instprm line 7: difC = 'abc' is not a number"),
        (_nomad_text(difC="nan"), r"line 7: difC = 'nan' is not a number"),
        (_nomad_text(difC="-9496"), r"line 7: difC = -9496 must be > 0"),
        (
            _nomad_text(Type="PXC"),
            r"line 2: Type = PXC \(X-ray, constant wavelength\); only time-of-flight neutron "
            r"powder data, Type PNT, is supported",
        ),
        (_nomad_text(Y="4.47"), r"line 20: Y = 4.47: Lorentzian broadening \(X, Y, Z\) is not"),
        (_nomad_text(Zero="4.84;garbage"), r"line 10: 'garbage' is not a name:value item"),
        (
            _nomad_text() + "pdabc:'''0.5, 4750.0, 0.3, 0.3, 5.0\n1.0, 9500.0, 0.2, 0.3, 20.0'''\n",
            r"line 22: pdabc .* is not supported",
        ),
        ("Type:PNT\ndifC:9496.17\n", r"line 1: not a GSAS-II instrument parameter file"),
        ("", r"line 1: not a GSAS-II instrument parameter file"),
        (
            _nomad_text(alpha="0.167\n# an old calibration follows"),
            r"missing beta-0, beta-1, sig-0, sig-1, sig-2 "
            r"\(the parameter set ends at the comment on line 12\)",
        ),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_instprm(_write(tmp_path, text))


def test_missing_file_and_lorentzian_opt_in(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.instprm: cannot read instrument parameter file"):
        read_instprm(tmp_path / "nope.instprm")
    path = _write(tmp_path, _nomad_text(X="-1.8", Y="4.47"))
    assert read_instprm(path, ignore_lorentzian=True) == NOMAD_BANK4


# --- grid ---------------------------------------------------------------------------------


def test_paper_grid() -> None:
    assert TofGrid.gsas(1360.0, 18919.0, 0.0009381) == NOMAD_GRID
    assert NOMAD_GRID.size == 2806 and len(tof_grid()) == 2806
    assert NOMAD_GRID.points()[0] == 1360.0
    assert NOMAD_GRID.stop_us == pytest.approx(18894.2, abs=0.05)
    grid = TofGrid.spanning(5000.0, 40000.0, 1000)
    assert grid.size == 1000
    assert grid.points()[-1] == pytest.approx(40000.0, rel=1e-12)
    np.testing.assert_allclose(grid.index(grid.points()), np.arange(1000), atol=1e-9)


# --- simulator ----------------------------------------------------------------------------


def test_nomad_file_reproduces_the_default_simulator_exactly() -> None:
    default = TofDiffractionSimulator(preset="e1")
    rng = np.random.default_rng(3)
    k = np.repeat(np.arange(3), 4)
    params = np.concatenate(
        [
            default.space.complete(i, rng.uniform(c.low, c.high, (4, len(c.free))))
            for i, c in enumerate(default.space.classes)
        ]
    )
    expected = default.simulate(k, params)
    profile_table.cache_clear()  # the file's instrument builds its own tables
    from_file = TofDiffractionSimulator(preset="e1", instrument={"file": str(NOMAD)})
    assert from_file.grid == NOMAD_GRID and from_file.output_shape == (2806,)
    np.testing.assert_array_equal(from_file.simulate(k, params), expected)
    explicit = TofDiffractionSimulator(
        preset="e1",
        instrument={
            "file": str(NOMAD),
            "tof_grid": {"start_us": 1360, "stop_us": 18919, "log_step": 0.0009381},
        },
    )
    np.testing.assert_array_equal(explicit.simulate(k, params), expected)


def test_peaks_at_the_instruments_tof() -> None:
    """Isolated peaks of a cubic cell have their centroid at ToF(d) + 1/β − 1/α, with
    ToF(d) = Zero + difC·d + difA·d² + difB/d of the POWGEN-like bank."""
    sim = TofDiffractionSimulator(instrument={"file": str(POWGEN)})
    ins = sim.instrument
    y = sim.simulate(np.array([sim.space.class_index("cubic")]), np.array([CUBIC]))[0]
    t = sim.grid.points()
    refl = sim.reflections("cubic", CUBIC)
    for hkl in ([2, 1, 0], [2, 1, 1], [2, 2, 0]):
        d = 4.0 / np.sqrt(np.dot(hkl, hkl))
        tof = 22594.7440533 * d - 0.927945556608 * d * d + 1.42511277627 / d - 4.96558487231
        assert refl.tof[np.argmin(np.abs(refl.d - d))] == pytest.approx(tof, rel=1e-14)
        alpha, beta, sigma = ins.profile_parameters(d)
        near = np.abs(t - tof) < 12 * sigma
        centroid = np.sum(y[near] * t[near] ** 2) / np.sum(y[near] * t[near])  # dt ∝ t
        assert centroid == pytest.approx(tof + 1 / beta - 1 / alpha, abs=1e-3)
    assert sim.reflections("cubic", CUBIC).tof[0] != NOMAD_BANK4.tof(refl.d[0])


def test_output_shape_follows_the_grid() -> None:
    by_points = TofDiffractionSimulator(
        instrument={
            "file": str(POWGEN),
            "tof_grid": {"start_us": 7000, "stop_us": 45000, "points": 2500},
        }
    )
    assert by_points.output_shape == (2500,)
    check_simulator(by_points, n=2)
    by_step = TofDiffractionSimulator(
        instrument={
            "file": str(WISH),
            "bank": 2,
            "tof_grid": {"start_us": 4000, "stop_us": 30000, "log_step": 0.0008},
        }
    )
    assert by_step.output_shape == (TofGrid.gsas(4000, 30000, 0.0008).size,) == (2518,)
    out = by_step.simulate(np.array([2]), np.array([CUBIC]))
    assert out.shape == (1, 2518) and out.max() > 0
    # Without tof_grid: the d-spacings of the paper's grid, 2806 points.
    default_grid = TofDiffractionSimulator(instrument={"file": str(WISH), "bank": 1})
    assert default_grid.output_shape == (2806,)
    d = NOMAD_BANK4.d_spacing([1360.0, NOMAD_GRID.stop_us])
    np.testing.assert_allclose(default_grid.grid.points()[[0, -1]], default_grid.instrument.tof(d))


def test_model_input_follows_the_grid() -> None:
    torch = pytest.importorskip("torch")
    from streamal_diffraction.model import DiffractionCnn

    sim = TofDiffractionSimulator(
        instrument={
            "file": str(POWGEN),
            "tof_grid": {"start_us": 7e3, "stop_us": 4.5e4, "points": 2500},
        }
    )
    model = DiffractionCnn(sim.space, sim.output_shape, channels=[4, 8], hidden=16)
    net = model.build()
    x = model.encode_inputs(sim.simulate(np.array([2]), np.array([CUBIC])))
    assert net(torch.from_numpy(x)).shape == (1, 3 + len(model.target_names) + 1)


def test_options_rebuild_with_an_absolute_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    sim = TofDiffractionSimulator(instrument={"file": "powgen-like.instprm"})
    options = sim.options()["instrument"]
    assert options == {"file": str(POWGEN.resolve()), "ignore_lorentzian": False}
    monkeypatch.chdir(DATA.parent)
    again = TofDiffractionSimulator(**sim.options())
    assert again.instrument == sim.instrument and again.grid == sim.grid
    assert "instrument" not in TofDiffractionSimulator().options()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"bank": 1}, r"instrument: bank needs a file"),
        ({"file": str(WISH)}, r"holds banks 1, 2; choose one with bank"),
        ({"difC": 1.0}, r"instrument.difC: unknown key; allowed: file, bank"),
        (
            {"tof_grid": {"start_us": 1000, "stop_us": 9000, "points": 100, "log_step": 0.01}},
            r"instrument.tof_grid: give exactly one of points and log_step",
        ),
        (
            {"tof_grid": {"start_us": 1000, "stop_us": 900, "points": 100}},
            r"stop_us = 900 must be above start_us = 1000",
        ),
        ({"tof_grid": {"start_us": 1000, "stop_us": 9000, "points": 3}}, r"points: must be >= 16"),
        (
            {"tof_grid": {"start_us": 1000, "stop_us": 9000, "log_step": 0.5}},
            r"log_step = 0.5 gives 4 points",
        ),
        (
            {"file": str(POWGEN), "tof_grid": {"start_us": 7e3, "stop_us": 4.5e4, "points": 300}},
            r"powgen-like.instprm: the ToF grid is too coarse for the peaks",
        ),
    ],
)
def test_option_errors(option: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TofDiffractionSimulator(instrument=option)


def test_calibration_must_hold_on_the_grid(tmp_path: Path) -> None:
    bad_difa = read_instprm(_write(tmp_path, _nomad_text(difA="-3000.0")))
    with pytest.raises(ConfigError, match=r"no positive d-spacing has ToF|not increasing"):
        bad_difa.check(NOMAD_GRID)
    bad_sigma = _write(tmp_path, _nomad_text(**{"sig-0": "-500.0"}))
    with pytest.raises(ConfigError, match=r"sig-0 \+ sig-1·d² .* must be > 0 over the whole"):
        InstrumentOptions(file=str(bad_sigma)).build()


def test_profile_table_on_another_grid_matches_the_direct_sum() -> None:
    ins = read_instprm(WISH, bank=1)
    grid = TofGrid.spanning(6000.0, 40000.0, 3000)
    table = ProfileTable(ins, grid)
    rng = np.random.default_rng(0)
    position = rng.uniform(0, grid.size - 1, 40)
    tof = grid.tof(position)
    fast = table.render(np.zeros(40, int), position, np.ones(40), 1)[0]
    from streamal_diffraction.profile import render_direct

    exact = render_direct(tof, ins.d_spacing(tof), np.ones(40), grid.points(), ins)
    assert np.abs(fast - exact).max() < 2e-5 * exact.max()
