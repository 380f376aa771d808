"""Peak shape, the ToF grid, and the fast table renderer against direct evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erfc

from streamal_diffraction.instrument import NOMAD_BANK4, grid_index, tof_grid
from streamal_diffraction.profile import b2b_gauss, profile_table, render_direct


def _naive(delta, alpha, beta, sigma):
    s2 = sigma * sigma
    u = 0.5 * alpha * (alpha * s2 + 2 * delta)
    v = 0.5 * beta * (beta * s2 - 2 * delta)
    y = (alpha * s2 + delta) / (sigma * np.sqrt(2))
    z = (beta * s2 - delta) / (sigma * np.sqrt(2))
    return alpha * beta / (2 * (alpha + beta)) * (np.exp(u) * erfc(y) + np.exp(v) * erfc(z))


def test_grid_has_2806_points_from_1360_us() -> None:
    t = tof_grid()
    assert t.shape == (2806,)
    assert t[0] == 1360.0
    assert t[-1] == pytest.approx(1360.0 * np.exp(2805 * 0.0009381), rel=1e-12)
    assert t[-1] < 18919.0 < 1360.0 * np.exp(2807 * 0.0009381)
    np.testing.assert_allclose(t[1:] / t[:-1], np.exp(0.0009381), rtol=1e-12)


@pytest.mark.parametrize(
    ("alpha", "beta", "sigma"),
    [
        (0.08, 0.27, 55.0),
        (1.17, 0.30, 2.4),
        (50.0, 0.2, 40.0),
        (0.3, 80.0, 30.0),
        (400.0, 400.0, 5.0),
        (0.05, 0.05, 0.5),
    ],
)
def test_peak_shape_has_unit_area_and_is_finite(alpha: float, beta: float, sigma: float) -> None:
    half = 12 * sigma + 40 / min(alpha, beta)
    delta = np.linspace(-half, half, 400_001)
    p = b2b_gauss(delta, alpha, beta, sigma)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert np.trapezoid(p, delta) == pytest.approx(1.0, abs=2e-4)


def test_peak_shape_matches_the_naive_formula_where_that_is_safe() -> None:
    delta = np.linspace(-60, 60, 2001)
    for alpha, beta, sigma in [(0.08, 0.27, 20.0), (1.17, 0.30, 2.4)]:
        np.testing.assert_allclose(
            b2b_gauss(delta, alpha, beta, sigma),
            _naive(delta, alpha, beta, sigma),
            rtol=1e-9,
            atol=1e-300,
        )


def test_naive_formula_fails_where_ours_does_not() -> None:
    with np.errstate(all="ignore"):
        naive = _naive(np.array([0.0]), 100.0, 0.3, 50.0)
    assert not np.isfinite(naive).all() or naive[0] == 0.0
    assert b2b_gauss(0.0, 100.0, 0.3, 50.0) > 0.0


def test_table_render_matches_direct_evaluation() -> None:
    table = profile_table(NOMAD_BANK4)
    rng = np.random.default_rng(3)
    t = tof_grid()
    tof = np.exp(rng.uniform(np.log(1330.0), np.log(19300.0), 60))
    pos = grid_index(tof)
    keep = (pos >= table.j_min) & (pos < table.j_max + 1)
    intensity = rng.uniform(0.1, 1.0, keep.sum())
    d = NOMAD_BANK4.d_spacing(tof[keep])
    fast = table.render(np.zeros(keep.sum(), dtype=int), pos[keep], intensity, 1)[0]
    ref = render_direct(tof[keep], d, intensity, t)
    assert np.abs(fast - ref).max() < 2e-5 * ref.max()
