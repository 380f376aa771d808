"""Refinement of a predicted cell: the forward model, recovery of a known cell from a noisy
pattern, errors of the right size, wrong classes fitting worse, the top-k helper, the plot."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from streamal.errors import ParameterError
from streamal_diffraction import TofDiffractionSimulator
from streamal_diffraction.refine import (
    Candidate,
    ClassPattern,
    candidates,
    default_simulator,
    plot_refinement,
    refine,
    refine_top,
)

ZERO = 3.0  # µs, on top of the instrument's Zero
PEAK_COUNTS = 3e4


@pytest.fixture(scope="module")
def sim() -> TofDiffractionSimulator:
    return default_simulator()


def counts(
    sim: TofDiffractionSimulator, class_name: str, free: list[float], seed: int = 0
) -> tuple[np.ndarray, float]:
    """A pattern as a diffractometer counts it: scaled to ``PEAK_COUNTS``, a smooth
    background, a zero shift of ``ZERO`` µs, Poisson noise. Returns it and the scale."""
    pattern = ClassPattern(sim, class_name).pattern(free, ZERO)
    scale = PEAK_COUNTS / pattern.max()
    t = sim.grid.points()
    x = (t - t[0]) / (t[-1] - t[0])
    background = 300.0 + 200.0 * x - 150.0 * x**2
    rng = np.random.default_rng(seed)
    return rng.poisson(scale * pattern + background).astype(np.float64), scale


def test_forward_model_is_the_simulator(sim: TofDiffractionSimulator) -> None:
    for name, free in (("cubic", [4.01]), ("tetragonal", [3.99, 4.04]), ("trigonal", [4.0, 89.7])):
        model = ClassPattern(sim, name)
        k = sim.space.class_index(name)
        expected = sim.simulate(np.array([k]), model.cell(free)[None, :])[0]
        np.testing.assert_array_equal(model.pattern(free, 0.0), expected)
        # A zero shift moves every reflection by that time, intensities unchanged.
        ticks, shifted = model.ticks(free, 0.0), model.ticks(free, ZERO)
        np.testing.assert_allclose(shifted.tof, sim.instrument.tof(shifted.d) + ZERO)
        common = np.intersect1d(ticks.d, shifted.d)
        assert len(common) > 0.9 * len(ticks.d)
        np.testing.assert_allclose(
            shifted.intensity[np.isin(shifted.d, common)], ticks.intensity[np.isin(ticks.d, common)]
        )
        assert not np.allclose(model.pattern(free, ZERO), expected)


@pytest.mark.parametrize(
    ("class_name", "truth", "start"),
    [
        ("cubic", [4.01], [4.035]),
        ("tetragonal", [3.99, 4.04], [4.015, 4.015]),
        ("tetragonal", [4.0, 4.01], [3.99, 4.03]),  # nearly cubic: a and c nearly swap
        ("trigonal", [4.0, 89.7], [4.025, 91.5]),  # α on the other side of 90°
        ("trigonal", [3.9, 105.0], [3.875, 103.2]),
    ],
)
def test_refine_recovers_the_cell(
    sim: TofDiffractionSimulator, class_name: str, truth: list[float], start: list[float]
) -> None:
    y, scale = counts(sim, class_name, truth)
    model = ClassPattern(sim, class_name)
    t0 = time.perf_counter()
    result = refine(y, class_name, model.cell(start), simulator=sim)
    seconds = time.perf_counter() - t0
    print(f"\n{result.describe()}\n  {seconds:.3f} s, {result.n_evaluations} patterns")

    true_cell = model.cell(truth)
    cell, esd = np.array(result.cell), np.array(result.cell_esd)
    assert result.converged, result.message
    assert np.abs(cell[:3] - true_cell[:3]).max() < 1e-3
    assert np.abs(cell[3:] - true_cell[3:]).max() < 0.05
    # Tied parameters follow the free ones; constants stay.
    np.testing.assert_allclose(cell, model.cell(model.free_values(cell)))
    # Errors of the right size: the truth within 3 esd, and the esd's small but not zero.
    for p in model.free:
        i = ("a", "b", "c", "alpha", "beta", "gamma").index(p)
        assert 0.0 < esd[i] < (2e-4 if i < 3 else 0.01)
        assert abs(cell[i] - true_cell[i]) < 3.0 * esd[i], p
    assert abs(result.zero_shift - ZERO) < 3.0 * result.zero_shift_esd < 1.0
    assert abs(result.scale - scale) < 3.0 * result.scale_esd
    # A correct model with Poisson errors: χ²_red ≈ 1 and R_wp ≈ R_exp.
    assert 0.8 < result.chi2_red < 1.2
    assert 0.0 < result.r_exp < result.r_wp < 1.1 * result.r_exp
    assert result.background_curve.min() > 100.0  # the background found, not fitted by peaks
    assert result.seconds < 5.0  # target 0.5 s on one core; loose for a loaded test machine


def test_refined_errors_are_calibrated(sim: TofDiffractionSimulator) -> None:
    """Over repeated noisy patterns, the errors (true − refined) / esd scatter like N(0, 1)."""
    model = ClassPattern(sim, "cubic")
    z = []
    for seed in range(12):
        y, _ = counts(sim, "cubic", [4.01], seed=seed)
        result = refine(y, "cubic", model.cell([3.99]), simulator=sim)
        z.append(
            [
                (result.cell[0] - 4.01) / result.cell_esd[0],
                (result.zero_shift - ZERO) / result.zero_shift_esd,
            ]
        )
    rms = np.sqrt(np.mean(np.square(z), axis=0))
    assert ((rms > 0.5) & (rms < 1.6)).all(), rms


def test_starts_off_by_typical_model_errors_converge(sim: TofDiffractionSimulator) -> None:
    """Random starts within ±0.03 Å and ±2° of the truth all find it."""
    rng = np.random.default_rng(1)
    cases = [("cubic", [3.7]), ("tetragonal", [4.1, 3.95]), ("trigonal", [4.05, 89.8])]
    found, tried, seconds = 0, 0, []
    for name, truth in cases:
        model = ClassPattern(sim, name)
        y, _ = counts(sim, name, truth, seed=3)
        for _ in range(4):
            off = [
                rng.uniform(-2.0, 2.0) if p == "alpha" else rng.uniform(-0.03, 0.03)
                for p in model.free
            ]
            result = refine(y, name, model.cell(np.add(truth, off)), simulator=sim)
            error = np.abs(np.array(result.cell) - model.cell(truth))
            found += bool(error[:3].max() < 1e-3 and error[3:].max() < 0.05)
            tried += 1
            seconds.append(result.seconds)
    print(f"\n{found}/{tried} converged, median {np.median(seconds):.3f} s per refinement")
    assert found == tried


@pytest.mark.parametrize(
    ("class_name", "truth", "start", "sigma"),
    [
        ("trigonal", [3.95, 61.0], [3.93, 80.0], {"a": 0.3, "alpha": 19.0}),  # α 19° off
        ("trigonal", [3.85, 116.0], [3.96, 101.5], {"a": 0.26, "alpha": 15.7}),  # both off
        ("cubic", [3.9], [4.05], {"a": 0.1}),  # 3.8 % off: beyond the default dilation
    ],
)
def test_an_uncertain_start_far_off_is_found_within_its_sigma(
    sim: TofDiffractionSimulator,
    class_name: str,
    truth: list[float],
    start: list[float],
    sigma: dict[str, float],
) -> None:
    """Predictions the model itself calls uncertain (large σ) and that are that far off: the
    default scan misses the cell; one that reaches 3.5 σ finds it."""
    y, _ = counts(sim, class_name, truth)
    model = ClassPattern(sim, class_name)
    true_cell = model.cell(truth)

    def error(result) -> np.ndarray:
        return np.abs(np.array(result.cell) - true_cell)

    missed = refine(y, class_name, model.cell(start), simulator=sim)
    assert error(missed)[:3].max() > 1e-2 or error(missed)[3:].max() > 0.5
    found = refine(y, class_name, model.cell(start), simulator=sim, start_sigma=sigma)
    assert found.converged, found.message
    assert error(found)[:3].max() < 1e-3 and error(found)[3:].max() < 0.05
    # Candidates carry the σ of a prediction to the refinement.
    (top,) = refine_top(
        y, [Candidate(class_name, tuple(model.cell(start)), 1.0, sigma)], simulator=sim
    )
    assert error(top)[:3].max() < 1e-3


@pytest.mark.parametrize(
    ("truth", "start", "sigma"),
    [([3.95, 61.0], [3.97, 62.0], 40.0), ([3.94, 100.0], [3.95, 104.0], 60.0)],
)
def test_a_scan_wider_than_the_cells_there_are_stays_among_cells(
    sim: TofDiffractionSimulator, truth: list[float], start: list[float], sigma: float
) -> None:
    """A σ that would scan α below 0° or above 180° (where cos α, hence the metric, looks
    valid again): the scan keeps inside the refinement's box and finds the cell."""
    y, _ = counts(sim, "trigonal", truth)
    model = ClassPattern(sim, "trigonal")
    result = refine(y, "trigonal", model.cell(start), simulator=sim, start_sigma={"alpha": sigma})
    error = np.abs(np.array(result.cell) - model.cell(truth))
    assert result.converged and error[:3].max() < 1e-3 and error[3:].max() < 0.05


def test_wrong_class_fits_clearly_worse(sim: TofDiffractionSimulator) -> None:
    y, _ = counts(sim, "tetragonal", [3.99, 4.04])
    right = refine(y, "tetragonal", [4.0, 4.0, 4.03, 90, 90, 90], simulator=sim)
    wrong = refine(y, "cubic", [4.0, 4.0, 4.03, 90, 90, 90], simulator=sim)
    assert wrong.chi2_red > 5.0 * right.chi2_red
    assert wrong.r_wp > 2.0 * right.r_wp


def test_refine_top_tries_the_runner_up_when_unsure(sim: TofDiffractionSimulator) -> None:
    y, _ = counts(sim, "trigonal", [4.0, 89.6])
    unsure = [
        Candidate("tetragonal", (4.01, 4.01, 4.02, 89.2, 89.2, 89.2), 0.55),
        Candidate("trigonal", (4.01, 4.01, 4.02, 89.2, 89.2, 89.2), 0.40),
    ]
    both = refine_top(y, unsure, k=2, simulator=sim)
    assert [r.class_name for r in both] == ["trigonal", "tetragonal"]  # best fit first
    assert both[0].probability == pytest.approx(0.40)
    assert both[0].chi2_red < 1.2 < 5.0 < both[1].chi2_red
    assert abs(both[0].cell[3] - 89.6) < 0.05

    # A sure classifier: the top class alone. A prediction record works as well.
    prediction = SimpleNamespace(
        probabilities={"trigonal": 0.95, "tetragonal": 0.04, "cubic": 0.01},
        parameters={
            p: SimpleNamespace(value=v)
            for p, v in zip(
                ("a", "b", "c", "alpha", "beta", "gamma"),
                (4.02, 4.0, 4.01, 89.0, 89.3, 89.1),
                strict=True,
            )
        },
    )
    assert [c.class_name for c in candidates(prediction)] == ["trigonal", "tetragonal", "cubic"]
    (only,) = refine_top(y, prediction, k=2, simulator=sim)
    assert only.class_name == "trigonal" and only.probability == pytest.approx(0.95)


def test_options_and_errors(sim: TofDiffractionSimulator) -> None:
    y, _ = counts(sim, "cubic", [4.01])
    fixed = refine(
        y,
        "cubic",
        [4.0, 4.0, 4.0, 90, 90, 90],
        simulator=sim,
        refine_zero=False,
        zero_shift=ZERO,
        background_terms=3,
    )
    assert fixed.zero_shift == ZERO and fixed.zero_shift_esd == 0.0
    assert len(fixed.background) == 3 and fixed.n_parameters == 1 + 1 + 3
    masked = np.ones(len(y), dtype=bool)
    masked[:500] = False
    part = refine(y, "cubic", [4.0, 4.0, 4.0, 90, 90, 90], simulator=sim, fitted=masked)
    assert part.n_points == len(y) - 500 and abs(part.cell[0] - 4.01) < 1e-3
    assert set(part.to_dict()) >= {"cell", "cell_esd", "r_wp_pct", "chi2_red", "converged"}

    with pytest.raises(ParameterError, match="2806"):
        refine(y[:100], "cubic", [4.0] * 3 + [90.0] * 3, simulator=sim)
    with pytest.raises(ParameterError, match="unknown class"):
        refine(y, "cubik", [4.0] * 3 + [90.0] * 3, simulator=sim)
    with pytest.raises(ParameterError, match="six values"):
        refine(y, "cubic", [4.0], simulator=sim)


def test_plot_draws_the_fit(sim: TofDiffractionSimulator, tmp_path: Path) -> None:
    from PIL import Image

    y, _ = counts(sim, "tetragonal", [3.99, 4.04])
    result = refine(y, "tetragonal", [4.0, 4.0, 4.03, 90, 90, 90], simulator=sim)
    path = plot_refinement(result, tmp_path / "fit.png")
    width, height = Image.open(path).size
    assert 0 < width <= 2000 and 0 < height <= 1600
