"""GSAS-II TOF peak shape (back-to-back exponentials ⊗ Gaussian) and a fast pattern renderer.

The peak shape (Von Dreele, Jorgensen & Windsor 1982), normalised to unit area in µs::

    P(Δ) = αβ/(2(α+β)) · [exp(u)·erfc(y) + exp(v)·erfc(z)],
    u = α(ασ² + 2Δ)/2,  y = (ασ² + Δ)/(σ√2),
    v = β(βσ² − 2Δ)/2,  z = (βσ² − Δ)/(σ√2).

Written naively, ``exp(u)`` overflows (and ``erfc(y)`` underflows to 0) once ``α·σ`` is large;
here ``exp(u)·erfc(y) = exp(−Δ²/2σ²)·erfcx(y)`` for ``y ≥ 0``, and for ``y < 0`` the plain form
is used, where ``u < 0``. Every term is then bounded, for any ``α``, ``β``, ``σ``.

:class:`ProfileTable` renders whole patterns without evaluating ``erfc`` per peak. The peak
shape depends only on the peak position (α, β, σ are functions of d, hence of ToF), so for each
grid cell ``[j, j+1)`` of peak positions it stores a degree-``D`` polynomial in the position
offset ``u`` whose coefficients give the peak's values on the ``W`` grid points around it. A
pattern is then ``Σ_j Σ_m H[j, m]·C[j, m, :]`` with moments ``H[j, m] = Σ_peaks I·u^m`` of the
peaks in cell ``j``: two passes over the peaks plus one small matrix product per grid cell,
whatever the number of reflections. With the defaults (degree 5, windows where a peak exceeds
1e-5 of its maximum, float32 products) a rendered pattern is within ~5e-6 of its maximum of
the peak-by-peak sum (tested at < 2e-5).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy.special import erfc, erfcx

from streamal.errors import ConfigError
from streamal_diffraction.instrument import NOMAD_BANK4, NOMAD_GRID, Instrument, TofGrid

_SQRT2 = np.sqrt(2.0)
_FIT_VALUES = 4_000_000  # peak values fitted together (bounds temporary memory to ~0.5 GB)


def _exp_erfc(a: np.ndarray, delta: np.ndarray, sigma: np.ndarray, gauss: np.ndarray) -> np.ndarray:
    """``exp(a(aσ² + 2Δ)/2)·erfc((aσ² + Δ)/(σ√2))`` without overflow; ``gauss = exp(−Δ²/2σ²)``."""
    y = (a * sigma * sigma + delta) / (sigma * _SQRT2)
    pos = y >= 0.0
    u = 0.5 * a * (a * sigma * sigma + 2.0 * delta)
    upper = gauss * erfcx(np.where(pos, y, 0.0))
    lower = np.exp(np.where(pos, 0.0, u)) * erfc(np.where(pos, 0.0, y))
    return np.where(pos, upper, lower)


def b2b_gauss(
    delta: np.ndarray, alpha: np.ndarray, beta: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Back-to-back exponentials convolved with a Gaussian, unit area in ``delta``.

    Args:
        delta: ``t − T_peak`` (µs); broadcast against the other arguments.
        alpha: Rise rate α (µs⁻¹), > 0.
        beta: Decay rate β (µs⁻¹), > 0.
        sigma: Gaussian standard deviation σ (µs), > 0.

    Returns:
        Profile values (µs⁻¹), finite and non-negative for every input.
    """
    delta, alpha, beta, sigma = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (delta, alpha, beta, sigma))
    )
    gauss = np.exp(-0.5 * (delta / sigma) ** 2)
    norm = alpha * beta / (2.0 * (alpha + beta))
    return norm * (_exp_erfc(alpha, delta, sigma, gauss) + _exp_erfc(beta, -delta, sigma, gauss))


def peak_values(
    t: np.ndarray, peak_tof: np.ndarray, d: np.ndarray, instrument: Instrument = NOMAD_BANK4
) -> np.ndarray:
    """Profile of peaks at ``peak_tof`` (µs, d-spacing ``d``) evaluated at times ``t`` (µs)."""
    alpha, beta, sigma = instrument.profile_parameters(d)
    return b2b_gauss(t - peak_tof, alpha, beta, sigma)


def render_direct(
    peak_tof: np.ndarray,
    d: np.ndarray,
    intensity: np.ndarray,
    t: np.ndarray,
    instrument: Instrument = NOMAD_BANK4,
) -> np.ndarray:
    """Reference pattern ``Σ_r I_r·P(t − T_r)`` evaluated peak by peak on all of ``t`` (slow)."""
    out = np.zeros(len(t))
    for tr, dr, ir in zip(np.ravel(peak_tof), np.ravel(d), np.ravel(intensity), strict=True):
        out += ir * peak_values(t, tr, dr, instrument)
    return out


class ProfileTable:
    """Per-grid-cell polynomial tables of the peak shape, for rendering patterns fast.

    Args:
        instrument: Calibration and profile constants.
        grid: The ToF grid patterns are computed on.
        degree: Polynomial degree in the sub-cell peak position.
        tail: Peaks are evaluated on the grid points where they exceed ``tail`` × their maximum
            (the window is the widest such range over the grid).

    Attributes:
        grid_size: Number of grid points.
        left: Grid points evaluated left of a peak's cell.
        right: Grid points evaluated right of a peak's cell.
        width: Window length ``left + right + 2``.
        j_min: Lowest peak cell whose window reaches the grid (negative).
        j_max: Highest such cell.
        coef: ``(n_cells, degree + 1, width)`` polynomial coefficients.
    """

    def __init__(
        self,
        instrument: Instrument = NOMAD_BANK4,
        grid: TofGrid = NOMAD_GRID,
        degree: int = 5,
        tail: float = 1e-5,
    ) -> None:
        self.instrument = instrument
        self.grid = grid
        self.grid_size = grid.size
        self.degree = degree
        self.left, self.right = self._extents(tail)
        self.width = self.left + self.right + 2
        self.j_min = -(self.right + 1)
        self.j_max = grid.size - 1 + self.left
        self.coef = self._fit()
        self._coef32 = self.coef.astype(np.float32)
        self._verify()

    @property
    def n_cells(self) -> int:
        return self.j_max - self.j_min + 1

    @property
    def tof_range(self) -> tuple[float, float]:
        """Peak positions (µs) whose window touches the grid: ``[low, high)``."""
        return float(self.grid.tof(self.j_min)), float(self.grid.tof(self.j_max + 1))

    def _extents(self, tail: float) -> tuple[int, int]:
        """Left/right window (grid points) where a peak exceeds ``tail`` × its maximum."""
        probe = 256
        offsets = np.arange(-probe, probe + 1)
        left = right = 0
        for p in np.linspace(0.0, self.grid_size - 1.0, 97):
            tp = self.grid.tof(p)
            vals = peak_values(
                self.grid.tof(p + offsets), tp, self.instrument.d_spacing(tp), self.instrument
            )
            big = offsets[vals > tail * vals.max()]
            left, right = max(left, -int(big.min())), max(right, int(big.max()))
        if max(left, right) >= probe:
            raise ConfigError(
                f"{self.instrument.name}: peak tails span more than {probe} points of the ToF "
                f"grid (ΔT/T = {self.grid.log_step:.3g}); use fewer points or a larger log step"
            )
        return left, right

    def _fit(self) -> np.ndarray:
        """Least-squares polynomial coefficients per cell from Chebyshev nodes in the cell."""
        n_nodes = 2 * (self.degree + 1)
        phi = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_nodes) + 0.5) / n_nodes)
        vander = (phi[:, None] - 0.5) ** np.arange(self.degree + 1)[None, :]
        solve = np.linalg.pinv(vander)  # (degree + 1, n_nodes)
        coef = np.empty((self.n_cells, self.degree + 1, self.width))
        chunk = max(1, _FIT_VALUES // (n_nodes * self.width))
        for start in range(0, self.n_cells, chunk):
            cells = np.arange(self.j_min + start, min(self.j_min + start + chunk, self.j_max + 1))
            points = self.grid.tof(cells[:, None] - self.left + np.arange(self.width)[None, :])
            peaks = self.grid.tof(cells[:, None] + phi[None, :])  # (cells, n_nodes)
            d = self.instrument.d_spacing(peaks)
            vals = peak_values(
                points[:, None, :], peaks[:, :, None], d[:, :, None], self.instrument
            )
            coef[start : start + len(cells)] = np.einsum("mq,jqk->jmk", solve, vals)
        if not np.isfinite(coef).all():
            raise ConfigError(
                f"{self.instrument.name}: the peak shape is not finite near the edges of the ToF "
                f"grid ({self.grid.start_us:.6g}–{self.grid.stop_us:.6g} µs); move the grid "
                "inside the range where ToF(d) and the profile are defined"
            )
        return coef

    def _verify(self, n_peaks: int = 61, tolerance: float = 1e-3) -> None:
        """Raise :class:`ConfigError` if the tables miss peaks sampled across the grid by more
        than ``tolerance`` × their maximum (a grid too coarse for the peak widths)."""
        # Fractional offsets spread by the golden ratio, so every sub-cell position is probed.
        position = np.linspace(0.0, self.grid_size - 1.0, n_peaks)
        position = np.floor(position) + (np.arange(n_peaks) * 0.6180339887) % 1.0
        position = np.minimum(position, self.grid_size - 1.0)
        fast = self.render(np.arange(n_peaks), position, np.ones(n_peaks), n_peaks)
        tof = self.grid.tof(position)
        exact = peak_values(
            self.grid.points()[None, :],
            tof[:, None],
            self.instrument.d_spacing(tof)[:, None],
            self.instrument,
        )
        error = np.abs(fast - exact).max(axis=1) / exact.max(axis=1)
        worst = int(np.argmax(error))
        if error[worst] > tolerance:
            _, _, sigma = self.instrument.profile_parameters(self.instrument.d_spacing(tof[worst]))
            step = tof[worst] * self.grid.log_step
            raise ConfigError(
                f"{self.instrument.name}: the ToF grid is too coarse for the peaks: at "
                f"{tof[worst]:.6g} µs a grid step is {step:.3g} µs and the Gaussian σ "
                f"{float(sigma):.3g} µs (rendering error {error[worst]:.2g} of the peak "
                "height); use more points or a smaller log step"
            )

    def render(
        self, sample: np.ndarray, position: np.ndarray, intensity: np.ndarray, n_samples: int
    ) -> np.ndarray:
        """Patterns ``(n_samples, grid_size)`` float32 from peaks given as flat arrays.

        Args:
            sample: Sample index (``0 .. n_samples-1``) of each peak.
            position: Fractional grid index of each peak (``grid.index``); peaks outside
                ``[j_min, j_max + 1)`` must be removed by the caller.
            intensity: Integrated intensity of each peak (pattern units × µs).
            n_samples: Number of patterns.
        """
        cell = np.floor(position).astype(np.int64)
        u = position - cell - 0.5
        row = np.asarray(sample, dtype=np.int64) * self.n_cells + (cell - self.j_min)
        n_rows = n_samples * self.n_cells
        moments = np.empty((self.degree + 1, n_rows))
        weight = np.asarray(intensity, dtype=np.float64).copy()
        for m in range(self.degree + 1):
            moments[m] = np.bincount(row, weight, minlength=n_rows)
            weight *= u
        # (n_cells, n_samples, degree + 1) @ (n_cells, degree + 1, width): the window values of
        # each cell, stored as buf[sample, cell, k].
        h = moments.reshape(self.degree + 1, n_samples, self.n_cells).T.astype(np.float32)
        width = self.width
        buf = np.empty((n_samples, self.n_cells, width), dtype=np.float32)
        np.matmul(h, self._coef32, out=buf.transpose(1, 0, 2))
        # Grid point g gets entry k of cell g + left − k (buf row g + left − j_min − k): an
        # anti-diagonal of buf. The cell range makes rows 0 .. n_cells − 1 exactly the ones used.
        item = buf.itemsize
        first = self.left - self.j_min  # buf row of (grid point 0, k = 0)
        diag = as_strided(
            buf[:, first:],
            shape=(n_samples, self.grid_size, width),
            strides=(buf.strides[0], width * item, -(width - 1) * item),
            writeable=False,
        )
        return np.add.reduce(diag, axis=2, dtype=np.float32)


@lru_cache(maxsize=4)
def profile_table(instrument: Instrument = NOMAD_BANK4, grid: TofGrid = NOMAD_GRID) -> ProfileTable:
    """Shared :class:`ProfileTable` per instrument and grid (built once per process, ~0.5 s)."""
    return ProfileTable(instrument, grid)
