"""The time-of-flight instrument and its ToF grid; defaults: NOMAD bank 4 on the paper's grid.

Conventions follow GSAS-II's TOF histograms (times in µs, d-spacings in Å):

* ``ToF = Zero + difC·d + difA·d² + difB/d``;
* back-to-back exponentials ⊗ Gaussian with ``α = alpha/d``,
  ``β = beta-0 + beta-1/d⁴ + beta-q/d²`` and ``σ² = sig-0 + sig-1·d² + sig-2·d⁴ + sig-q·d``
  (σ in µs).

Other instruments are read from GSAS-II ``.instprm`` files
(:func:`~streamal_diffraction.instprm.read_instprm`). Patterns are computed on a
:class:`TofGrid`, log-spaced (constant ``ΔT/T``) like GSAS-II's simulated TOF histograms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamal.errors import ConfigError

TOF_MIN_US = 1360.0
"""First point of the paper's grid (µs)."""
TOF_MAX_US = 18919.0
"""Upper limit of the paper's grid (µs); GSAS-II never computes this point itself (see
:meth:`TofGrid.gsas`)."""
DT_OVER_T = 0.0009381
"""Log step of the paper's grid, ``ΔT/T``."""


@dataclass(frozen=True)
class Instrument:
    """Diffractometer calibration and peak-profile constants (defaults: NOMAD bank 4).

    Field names follow GSAS-II's instrument parameters (in brackets).

    Attributes:
        difc: ``difC`` (µs/Å).
        difa: ``difA`` (µs/Å²).
        zero: ``Zero`` (µs).
        two_theta: ``2-theta``, bank angle (degrees); informational, the ToF Lorentz factor
            used is ``d⁴``.
        flight_path: ``fltPath``, total flight path (m); informational.
        alpha: ``alpha`` of ``α = alpha/d`` (µs⁻¹·Å).
        beta0: ``beta-0`` (µs⁻¹).
        beta1: ``beta-1`` (µs⁻¹·Å⁴).
        sig0: ``sig-0`` (µs²).
        sig1: ``sig-1`` (µs²/Å²).
        sig2: ``sig-2`` (µs²/Å⁴).
        difb: ``difB`` (µs·Å).
        beta_q: ``beta-q`` (µs⁻¹·Å²).
        sig_q: ``sig-q`` (µs²/Å).
        name: Where the constants come from (file and bank), for messages; not compared.
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
    difb: float = 0.0
    beta_q: float = 0.0
    sig_q: float = 0.0
    name: str = field(default="NOMAD bank 4", compare=False)

    def tof(self, d: np.ndarray) -> np.ndarray:
        """Peak time of flight (µs) of d-spacings ``d`` (Å)."""
        d = np.asarray(d, dtype=np.float64)
        t = self.zero + self.difc * d + self.difa * d * d
        return t + self.difb / d if self.difb != 0.0 else t

    def d_spacing(self, tof: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`tof`: the positive root of ``difA·d² + difC·d + Zero − ToF = 0``
        (refined by Newton steps on ``ToF(d)`` when ``difB ≠ 0``)."""
        tof = np.asarray(tof, dtype=np.float64)
        if self.difa == 0.0:
            d = (tof - self.zero) / self.difc
        else:
            disc = self.difc**2 + 4.0 * self.difa * (tof - self.zero)
            # Numerically stable form of (−difC + √disc) / (2·difA).
            d = 2.0 * (tof - self.zero) / (self.difc + np.sqrt(disc))
        if self.difb == 0.0:
            return d
        for _ in range(50):
            step = (self.tof(d) - tof) / (self.difc + 2.0 * self.difa * d - self.difb / (d * d))
            d = d - step
            if np.all(np.abs(step) <= 1e-14 * np.abs(d)):
                break
        return d

    def profile_parameters(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(α, β, σ)`` of the peak shape at d-spacings ``d`` (µs⁻¹, µs⁻¹, µs)."""
        d = np.asarray(d, dtype=np.float64)
        d2 = d * d
        alpha = self.alpha / d
        beta = self.beta0 + self.beta1 / (d2 * d2)
        if self.beta_q != 0.0:
            beta = beta + self.beta_q / d2
        sigma = np.sqrt(np.abs(self._variance(d)))
        return alpha, beta, sigma

    def _variance(self, d: np.ndarray) -> np.ndarray:
        """``σ² = sig-0 + sig-1·d² + sig-2·d⁴ (+ sig-q·d)`` (µs²), signed."""
        d2 = d * d
        var = self.sig0 + self.sig1 * d2 + self.sig2 * d2 * d2
        return var + self.sig_q * d if self.sig_q != 0.0 else var

    def check(self, grid: TofGrid) -> None:
        """Raise :class:`ConfigError` unless the calibration and the profile are defined on
        ``grid``: ``d(ToF)`` finite, positive and increasing, and ``α``, ``β``, ``σ²`` > 0.
        """
        t = grid.points()
        span = f"{grid.start_us:.6g}–{grid.stop_us:.6g} µs"
        with np.errstate(all="ignore"):
            d = self.d_spacing(t)
            ok = np.isfinite(d) & (d > 0.0)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise ConfigError(
                    f"{self.name}: no positive d-spacing has ToF = {t[i]:.6g} µs "
                    f"(Zero = {self.zero:g}, difC = {self.difc:g}, difA = {self.difa:g}, "
                    f"difB = {self.difb:g}); the ToF grid ({span}) must lie where "
                    "ToF(d) is defined"
                )
            if not (np.diff(d) > 0.0).all():
                raise ConfigError(
                    f"{self.name}: ToF(d) is not increasing over the ToF grid ({span}) "
                    f"(difC = {self.difc:g}, difA = {self.difa:g}, difB = {self.difb:g})"
                )
            alpha, beta, _ = self.profile_parameters(d)
            for what, values in (
                ("alpha/d", alpha),
                ("beta-0 + beta-1/d⁴ + beta-q/d²", beta),
                ("sig-0 + sig-1·d² + sig-2·d⁴ + sig-q·d", self._variance(d)),
            ):
                bad = ~(values > 0.0) | ~np.isfinite(values)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise ConfigError(
                        f"{self.name}: {what} = {values[i]:.6g} at d = {d[i]:.4g} Å "
                        f"(ToF {t[i]:.6g} µs) must be > 0 over the whole ToF grid ({span})"
                    )


@dataclass(frozen=True)
class TofGrid:
    """A log-spaced ToF grid: ``ToF_k = start_us·exp(k·log_step)`` for ``k = 0 … size − 1``.

    Attributes:
        start_us: First point (µs).
        log_step: ``ΔT/T`` between neighbouring points.
        size: Number of points.
    """

    start_us: float
    log_step: float
    size: int

    def __post_init__(self) -> None:
        if not (self.start_us > 0.0 and self.log_step > 0.0 and self.size >= 2):
            raise ConfigError(
                f"ToF grid: start_us = {self.start_us:g} and log_step = {self.log_step:g} "
                f"must be > 0 and size = {self.size} at least 2"
            )

    @classmethod
    def gsas(cls, start_us: float, stop_us: float, log_step: float) -> TofGrid:
        """The points GSAS-II computes for a simulated TOF histogram from ``start_us`` to
        ``stop_us`` with ``ΔT/T = log_step``.

        GSAS-II (``add_simulated_powder_histogram``) builds ``N = ln(Tmax/Tmin)/(ΔT/T)`` and
        ``x = Tmin·exp(k·ΔT/T)`` for ``k in arange(0, N)``, then computes the profile on
        ``x[searchsorted(x, Tmin):searchsorted(x, Tmax)]``, which leaves out the last point:
        ``ceil(N) − 1`` points. For the paper's grid ``N = 2806.4``: 2806 points,
        1360.0 … 18894.2 µs.
        """
        n = np.log(stop_us / start_us) / log_step if stop_us > start_us > 0.0 else 0.0
        return cls(float(start_us), float(log_step), len(np.arange(0, n)) - 1)

    @classmethod
    def spanning(cls, start_us: float, stop_us: float, points: int) -> TofGrid:
        """``points`` log-spaced points, the first at ``start_us`` and the last at ``stop_us``."""
        if not (stop_us > start_us > 0.0 and points >= 2):
            raise ConfigError(
                f"ToF grid: need 0 < start_us < stop_us and at least 2 points "
                f"(got {start_us:g}, {stop_us:g}, {points})"
            )
        return cls(float(start_us), float(np.log(stop_us / start_us) / (points - 1)), points)

    @property
    def stop_us(self) -> float:
        """Last point (µs)."""
        return float(self.tof(self.size - 1))

    def tof(self, index: np.ndarray) -> np.ndarray:
        """ToF (µs) at (possibly fractional or out-of-range) grid indices."""
        return self.start_us * np.exp(np.asarray(index, dtype=np.float64) * self.log_step)

    def index(self, tof: np.ndarray) -> np.ndarray:
        """Fractional grid index of ToF values (µs); inverse of :meth:`tof`."""
        return np.log(np.asarray(tof, dtype=np.float64) / self.start_us) / self.log_step

    def points(self) -> np.ndarray:
        """All grid points (µs)."""
        return self.tof(np.arange(self.size))


NOMAD_BANK4 = Instrument()
"""The paper's instrument."""
NOMAD_GRID = TofGrid.gsas(TOF_MIN_US, TOF_MAX_US, DT_OVER_T)
"""The paper's ToF grid: 2806 points, 1360.0 … 18894.2 µs, ``ΔT/T = 0.0009381``."""
GRID_SIZE = NOMAD_GRID.size
"""Points of the paper's grid (2806)."""


def grid_tof(index: np.ndarray) -> np.ndarray:
    """ToF (µs) at grid indices of the paper's grid (:data:`NOMAD_GRID`)."""
    return NOMAD_GRID.tof(index)


def grid_index(tof: np.ndarray) -> np.ndarray:
    """Fractional index on the paper's grid of ToF values (µs); inverse of :func:`grid_tof`."""
    return NOMAD_GRID.index(tof)


def tof_grid() -> np.ndarray:
    """The paper's ToF grid (µs): 2806 log-spaced points from 1360 µs (see :meth:`TofGrid.gsas`)."""
    return NOMAD_GRID.points()
