"""Unit cells: metric tensors, d-spacings, and which reflections share a d for a crystal system.

A cell is ``(a, b, c, α, β, γ)`` in Å and degrees. With the metric tensor ``G`` and its
inverse, the reciprocal metric ``G*``, a reflection ``h = (h, k, l)`` has
``1/d² = hᵀ·G*·h``.

For a crystal system the cell constraints make some entries of ``G*`` equal or zero, so
``1/d²`` is a dot product of a few integer *metric keys* of ``h`` with a few *metric
coefficients* of the cell (e.g. tetragonal: keys ``(h²+k², l²)``, coefficients
``(G*₁₁, G*₃₃)``). Reflections with equal keys have equal d for every cell of the system and
can be merged once per structure template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CELL_PARAMS = ("a", "b", "c", "alpha", "beta", "gamma")
"""Names of the six cell parameters, in order (Å, Å, Å, °, °, °)."""

MIN_METRIC_DETERMINANT = 1e-10
"""Cells with ``det G / (a²b²c²)`` at or below this are rejected as degenerate."""


def reduced_determinant(cells: np.ndarray) -> np.ndarray:
    """``det G / (a²b²c²) = 1 − cos²α − cos²β − cos²γ + 2·cosα·cosβ·cosγ`` per cell."""
    cells = np.atleast_2d(np.asarray(cells, dtype=np.float64))
    ca, cb, cg = np.cos(np.radians(cells[:, 3:6])).T
    return 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg


def valid_cells(cells: np.ndarray) -> np.ndarray:
    """Boolean mask of cells with positive lengths, angles in (0°, 180°) and ``det G > 0``."""
    cells = np.atleast_2d(np.asarray(cells, dtype=np.float64))
    lengths_ok = (cells[:, :3] > 0.0).all(axis=1)
    angles_ok = ((cells[:, 3:] > 0.0) & (cells[:, 3:] < 180.0)).all(axis=1)
    return lengths_ok & angles_ok & (reduced_determinant(cells) > MIN_METRIC_DETERMINANT)


def metric_tensor(cells: np.ndarray) -> np.ndarray:
    """Direct metric tensors ``G`` ``(n, 3, 3)`` (Å²) of cells ``(n, 6)``."""
    cells = np.atleast_2d(np.asarray(cells, dtype=np.float64))
    a, b, c = cells[:, 0], cells[:, 1], cells[:, 2]
    ca, cb, cg = np.cos(np.radians(cells[:, 3:6])).T
    g = np.empty((len(cells), 3, 3))
    g[:, 0, 0], g[:, 1, 1], g[:, 2, 2] = a * a, b * b, c * c
    g[:, 0, 1] = g[:, 1, 0] = a * b * cg
    g[:, 0, 2] = g[:, 2, 0] = a * c * cb
    g[:, 1, 2] = g[:, 2, 1] = b * c * ca
    return g


def reciprocal_metric(cells: np.ndarray) -> np.ndarray:
    """Reciprocal metric tensors ``G* = G⁻¹`` ``(n, 3, 3)`` (Å⁻²), by the adjugate formula."""
    g = metric_tensor(cells)
    cof = np.empty_like(g)
    for i in range(3):
        for j in range(3):
            i1, i2 = (i + 1) % 3, (i + 2) % 3
            j1, j2 = (j + 1) % 3, (j + 2) % 3
            cof[:, j, i] = g[:, i1, j1] * g[:, i2, j2] - g[:, i1, j2] * g[:, i2, j1]
    det = np.einsum("ni,ni->n", g[:, 0, :], cof[:, :, 0])
    return cof / det[:, None, None]


def d_spacings(hkl: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """d-spacings (Å) ``(n_cells, n_hkl)`` of integer reflections ``(n_hkl, 3)``."""
    hkl = np.atleast_2d(np.asarray(hkl, dtype=np.float64))
    gstar = reciprocal_metric(cells)
    inv_d2 = np.einsum("ri,nij,rj->nr", hkl, gstar, hkl)
    return 1.0 / np.sqrt(inv_d2)


def hkl_box(h_max: int, k_max: int, l_max: int) -> np.ndarray:
    """All integer ``(h, k, l)`` with ``|h| ≤ h_max`` etc., except ``(0, 0, 0)``; ``(n, 3)``."""
    h, k, l = np.meshgrid(  # noqa: E741
        np.arange(-h_max, h_max + 1),
        np.arange(-k_max, k_max + 1),
        np.arange(-l_max, l_max + 1),
        indexing="ij",
    )
    hkl = np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1).astype(np.int64)
    return hkl[np.any(hkl != 0, axis=1)]


def hkl_limits(max_lengths: tuple[float, float, float], d_min: float) -> tuple[int, int, int]:
    """Index limits that hold every reflection with ``d ≥ d_min`` for any cell whose lengths are
    at most ``max_lengths``: ``h = s·a`` for the reciprocal vector ``s``, so ``|h| ≤ a/d``."""
    return tuple(int(np.floor(length / d_min)) for length in max_lengths)  # type: ignore[return-value]


@dataclass(frozen=True)
class MetricKeys:
    """How ``1/d²`` factorises for one crystal system.

    Attributes:
        system: Crystal system name.
        keys: ``hkl (n, 3) -> (n, K)`` integer metric keys.
        coefficients: ``G* (n, 3, 3) -> (n, K)`` metric coefficients; ``1/d² = keys·coef``.
    """

    system: str
    keys: Callable[[np.ndarray], np.ndarray]
    coefficients: Callable[[np.ndarray], np.ndarray]


def _cols(*columns: np.ndarray) -> np.ndarray:
    return np.stack(columns, axis=1)


METRIC_KEYS: dict[str, MetricKeys] = {
    "cubic": MetricKeys(
        "cubic",
        lambda x: _cols((x * x).sum(axis=1)),
        lambda g: _cols(g[:, 0, 0]),
    ),
    "tetragonal": MetricKeys(
        "tetragonal",
        lambda x: _cols(x[:, 0] ** 2 + x[:, 1] ** 2, x[:, 2] ** 2),
        lambda g: _cols(g[:, 0, 0], g[:, 2, 2]),
    ),
    "hexagonal": MetricKeys(
        "hexagonal",
        lambda x: _cols(x[:, 0] ** 2 + x[:, 0] * x[:, 1] + x[:, 1] ** 2, x[:, 2] ** 2),
        lambda g: _cols(g[:, 0, 0], g[:, 2, 2]),
    ),
    "trigonal": MetricKeys(  # rhombohedral axes: a = b = c, α = β = γ
        "trigonal",
        lambda x: _cols(
            (x * x).sum(axis=1), x[:, 1] * x[:, 2] + x[:, 0] * x[:, 2] + x[:, 0] * x[:, 1]
        ),
        lambda g: _cols(g[:, 0, 0], 2.0 * g[:, 1, 2]),
    ),
    "orthorhombic": MetricKeys(
        "orthorhombic",
        lambda x: x * x,
        lambda g: _cols(g[:, 0, 0], g[:, 1, 1], g[:, 2, 2]),
    ),
    "monoclinic": MetricKeys(  # unique axis b: α = γ = 90°
        "monoclinic",
        lambda x: _cols(x[:, 0] ** 2, x[:, 1] ** 2, x[:, 2] ** 2, x[:, 0] * x[:, 2]),
        lambda g: _cols(g[:, 0, 0], g[:, 1, 1], g[:, 2, 2], 2.0 * g[:, 0, 2]),
    ),
    "triclinic": MetricKeys(
        "triclinic",
        lambda x: _cols(
            x[:, 0] ** 2,
            x[:, 1] ** 2,
            x[:, 2] ** 2,
            x[:, 1] * x[:, 2],
            x[:, 0] * x[:, 2],
            x[:, 0] * x[:, 1],
        ),
        lambda g: _cols(
            g[:, 0, 0], g[:, 1, 1], g[:, 2, 2], 2.0 * g[:, 1, 2], 2.0 * g[:, 0, 2], 2.0 * g[:, 0, 1]
        ),
    ),
}
"""Metric keys of the seven crystal systems (trigonal in the rhombohedral setting)."""
