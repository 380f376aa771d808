"""The time-of-flight instrument: NOMAD bank 4 constants and the paper's ToF grid.

Conventions follow GSAS-II's TOF histograms (times in µs, d-spacings in Å):

* ``ToF = Zero + difC·d + difA·d²``;
* back-to-back exponentials ⊗ Gaussian with ``α = alpha/d``, ``β = beta-0 + beta-1/d⁴`` and
  ``σ² = sig-0 + sig-1·d² + sig-2·d⁴`` (σ in µs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOF_MIN_US = 1360.0
"""First point of the grid (µs)."""
TOF_MAX_US = 18919.0
"""Upper limit of the grid (µs); GSAS-II never computes this point itself (see :func:`tof_grid`)."""
DT_OVER_T = 0.0009381
"""Log step of the grid, ``ΔT/T``."""


@dataclass(frozen=True)
class Instrument:
    """Diffractometer calibration and peak-profile constants (defaults: NOMAD bank 4).

    Attributes:
        difc: ``difC`` (µs/Å).
        difa: ``difA`` (µs/Å²).
        zero: ``Zero`` (µs).
        two_theta: Bank angle (degrees); informational, the ToF Lorentz factor used is ``d⁴``.
        flight_path: Total flight path (m); informational.
        alpha: ``alpha`` of ``α = alpha/d`` (µs⁻¹·Å).
        beta0: ``beta-0`` (µs⁻¹).
        beta1: ``beta-1`` (µs⁻¹·Å⁴).
        sig0: ``sig-0`` (µs²).
        sig1: ``sig-1`` (µs²/Å²).
        sig2: ``sig-2`` (µs²/Å⁴).
    """

    difc: float = 9496.17
    difa: float = 19.21
    zero: float = 4.84
    two_theta: float = 122.0
    flight_path: float = 21.5
    alpha: float = 0.167
    beta0: float = 0.274811
    beta1: float = 1e-5
    sig0: float = 0.0
    sig1: float = 284.918
    sig2: float = 119.951

    def tof(self, d: np.ndarray) -> np.ndarray:
        """Peak time of flight (µs) of d-spacings ``d`` (Å)."""
        d = np.asarray(d, dtype=np.float64)
        return self.zero + self.difc * d + self.difa * d * d

    def d_spacing(self, tof: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`tof`: the positive root of ``difA·d² + difC·d + Zero − ToF = 0``."""
        tof = np.asarray(tof, dtype=np.float64)
        if self.difa == 0.0:
            return (tof - self.zero) / self.difc
        disc = self.difc**2 + 4.0 * self.difa * (tof - self.zero)
        # Numerically stable form of (−difC + √disc) / (2·difA).
        return 2.0 * (tof - self.zero) / (self.difc + np.sqrt(disc))

    def profile_parameters(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(α, β, σ)`` of the peak shape at d-spacings ``d`` (µs⁻¹, µs⁻¹, µs)."""
        d = np.asarray(d, dtype=np.float64)
        d2 = d * d
        alpha = self.alpha / d
        beta = self.beta0 + self.beta1 / (d2 * d2)
        sigma = np.sqrt(np.abs(self.sig0 + self.sig1 * d2 + self.sig2 * d2 * d2))
        return alpha, beta, sigma


NOMAD_BANK4 = Instrument()


def grid_tof(index: np.ndarray) -> np.ndarray:
    """ToF (µs) at (possibly fractional or out-of-range) grid indices."""
    return TOF_MIN_US * np.exp(np.asarray(index, dtype=np.float64) * DT_OVER_T)


def grid_index(tof: np.ndarray) -> np.ndarray:
    """Fractional grid index of ToF values (µs); inverse of :func:`grid_tof`."""
    return np.log(np.asarray(tof, dtype=np.float64) / TOF_MIN_US) / DT_OVER_T


def tof_grid() -> np.ndarray:
    """The paper's ToF grid (µs): 2806 log-spaced points from 1360 µs.

    GSAS-II (``add_simulated_powder_histogram``) builds ``N = ln(Tmax/Tmin)/(ΔT/T) = 2806.4``
    and ``x = Tmin·exp(k·ΔT/T)`` for ``k in arange(0, N)`` (2807 points, the last at
    18911.9 µs), then computes the profile on ``x[searchsorted(x, Tmin):searchsorted(x, Tmax)]``,
    which leaves out the last point: 2806 computed points, 1360.0 … 18894.3 µs.
    """
    n_gsas = np.log(TOF_MAX_US / TOF_MIN_US) / DT_OVER_T
    x = grid_tof(np.arange(0, n_gsas))
    return x[:-1]


GRID_SIZE = 2806
