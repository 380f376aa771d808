"""Metric tensors, d-spacings and the metric keys that merge equal-d reflections."""

from __future__ import annotations

import numpy as np
import pytest

from streamal_diffraction.cell import (
    METRIC_KEYS,
    d_spacings,
    hkl_box,
    hkl_limits,
    metric_tensor,
    reciprocal_metric,
    valid_cells,
)

CELLS = {
    "cubic": (4.0, 4.0, 4.0, 90.0, 90.0, 90.0),
    "tetragonal": (3.9, 3.9, 4.1, 90.0, 90.0, 90.0),
    "hexagonal": (3.7, 3.7, 4.3, 90.0, 90.0, 120.0),
    "trigonal": (4.0, 4.0, 4.0, 75.0, 75.0, 75.0),
    "orthorhombic": (3.8, 4.0, 4.2, 90.0, 90.0, 90.0),
    "monoclinic": (3.8, 4.0, 4.2, 90.0, 104.0, 90.0),
    "triclinic": (3.8, 4.0, 4.2, 83.0, 97.0, 101.0),
}


def test_cubic_d_spacings_are_a_over_root_n() -> None:
    a = 4.013
    hkl = hkl_box(3, 3, 3)
    d = d_spacings(hkl, [(a, a, a, 90.0, 90.0, 90.0)])[0]
    np.testing.assert_allclose(d, a / np.sqrt((hkl**2).sum(axis=1)), rtol=1e-13)


def test_triclinic_metric_matches_hand_computation() -> None:
    a, b, c, al, be, ga = 3.0, 4.0, 5.0, 80.0, 95.0, 105.0
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    g = metric_tensor([(a, b, c, al, be, ga)])[0]
    want = np.array(
        [[9.0, 12.0 * cg, 15.0 * cb], [12.0 * cg, 16.0, 20.0 * ca], [15.0 * cb, 20.0 * ca, 25.0]]
    )
    np.testing.assert_allclose(g, want, rtol=1e-14)
    volume = a * b * c * np.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg)
    assert np.sqrt(np.linalg.det(g)) == pytest.approx(volume, rel=1e-12)
    # d(100) = V/(b c sin α), d(010) = V/(a c sin β), d(001) = V/(a b sin γ)
    d = d_spacings(np.eye(3, dtype=int), [(a, b, c, al, be, ga)])[0]
    sa, sb, sg = np.sin(np.radians([al, be, ga]))
    np.testing.assert_allclose(
        d, [volume / (b * c * sa), volume / (a * c * sb), volume / (a * b * sg)], rtol=1e-12
    )
    np.testing.assert_allclose(
        reciprocal_metric([(a, b, c, al, be, ga)])[0] @ g, np.eye(3), atol=1e-12
    )


@pytest.mark.parametrize("system", sorted(METRIC_KEYS))
def test_metric_keys_reproduce_full_d_spacings(system: str) -> None:
    hkl = hkl_box(4, 4, 4)
    cell = np.array([CELLS[system]])
    metric = METRIC_KEYS[system]
    inv_d2 = metric.keys(hkl) @ metric.coefficients(reciprocal_metric(cell))[0]
    np.testing.assert_allclose(1.0 / np.sqrt(inv_d2), d_spacings(hkl, cell)[0], rtol=1e-12)


def test_degenerate_cells_are_invalid() -> None:
    cells = np.array(
        [
            (4.0, 4.0, 4.0, 120.0, 120.0, 120.0),  # rhombohedral limit: zero volume
            (4.0, 4.0, 4.0, 30.0, 40.0, 100.0),  # γ > α + β
            (4.0, 4.0, 4.0, 119.9, 119.9, 119.9),
            (4.0, 4.0, 4.0, 90.0, 90.0, 90.0),
        ]
    )
    assert valid_cells(cells).tolist() == [False, False, True, True]


def test_hkl_limits_cover_every_reflection_above_d_min() -> None:
    cell = np.array([(4.2, 3.9, 4.1, 70.0, 100.0, 115.0)])
    d_min = 0.6
    limits = hkl_limits((4.2, 3.9, 4.1), d_min)
    wide = hkl_box(*(x + 4 for x in limits))
    d = d_spacings(wide, cell)[0]
    outside = np.any(np.abs(wide) > np.array(limits), axis=1)
    assert (d >= d_min).sum() > 100
    assert not np.any(outside & (d >= d_min))
