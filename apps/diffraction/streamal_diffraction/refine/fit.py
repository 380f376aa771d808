"""Least-squares refinement of a predicted cell against a measured pattern.

Model of the observed pattern ``y`` on the simulator's grid::

    y_calc(t) = scale · pattern(cell, zero)(t) + Σ_k b_k · T_k(x(t))

with ``pattern`` the simulator's pattern of the class (:class:`ClassPattern`), the class's
free cell parameters and a zero shift (µs) as nonlinear parameters, and the scale and the
Chebyshev background coefficients (``x`` the ToF scaled to ``[-1, 1]`` over the grid) as
linear ones. The linear parameters are solved exactly inside every residual (variable
projection), so ``scipy.optimize.least_squares`` only moves the 2–4 nonlinear ones, with a
forward-difference Jacobian whose steps suit the float32 patterns. Residuals are weighted by
the pattern's errors ``σ`` (``√max(y, 1)`` for counts when none are given).

A start off by several peak widths falls into a wrong minimum of a local fit, so the start is
first put right by a scan (:func:`_scan`): the class's shape parameter (tetragonal/hexagonal
``c``, trigonal ``α``) on a grid around the start and, for each shape, the dilation of the
whole cell found by cross-correlating calculated and observed patterns in ``ln ToF``. The
scan's best start is refined, then a second one, and the fit with the lower χ² kept: for a
nearly cubic cell its pseudo-symmetric twin (α ↔ 180° − α near 90°, a and c swapped when
nearly equal), which the scan may not resolve; otherwise the scan's runner-up. The errors come
from the final Jacobian in every parameter: ``cov = (JᵀJ)⁻¹·χ²_red``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import least_squares
from scipy.signal import correlate

from streamal.errors import ParameterError
from streamal_diffraction.cell import CELL_PARAMS, reduced_determinant
from streamal_diffraction.refine.forward import ClassPattern, Ticks
from streamal_diffraction.simulator import TofDiffractionSimulator

#: Finite-difference steps of the nonlinear parameters (lengths Å, angles °, zero µs): large
#: enough that float32 patterns and the profile table's per-cell fits do not show, small
#: against a peak width.
_STEP = {"length": 1e-4, "angle": 2e-3, "zero": 0.05}
#: Typical sizes of the parameters' changes, for the optimiser's scaling.
_TYPICAL = {"length": 1e-2, "angle": 0.5, "zero": 2.0}
#: Shape scan of :func:`_scan` (see :func:`_shape_grid`): step and most span in ``ln d``,
#: most span of an angle (°) and of a length (relative).
_SCAN_STEP = 0.004
_SCAN_SPAN = 0.12
_SCAN_ANGLE = 3.0
_SCAN_RATIO = 0.05
#: Nearly cubic cells whose twin is refined too (:func:`_twin`): angle from 90° (°), and
#: relative difference of two lengths.
_TWIN_ANGLE = 2.0
_TWIN_RATIO = 0.01
#: Width (grid points) of the smoothing subtracted before cross-correlating patterns.
_HIGH_PASS = 20.0
#: Largest dilation of the cell the scan looks for (relative).
_MAX_DILATION = 0.03
#: How far the refinement may take the cell from its start (fraction, degrees) and the zero (µs).
_LENGTH_RANGE = 0.1
_ANGLE_RANGE = 15.0
_ZERO_RANGE = 100.0
#: Cells are kept at ``det G/(a²b²c²)`` ≥ this (a margin from degenerate cells).
_MIN_DETERMINANT = 1e-4
#: ``least_squares`` steps of the first pass from the runner-up start (finished only if it
#: does better by then).
_RUNNER_UP = 8
#: ``least_squares`` tolerances (x, f and gradient).
_TOLERANCE = 1e-8
#: With the start's uncertainties (``start_sigma``), the scan and the box reach at least this
#: many σ from the start.
SCAN_SIGMAS = 3.5


@dataclass(frozen=True)
class Refinement:
    """One refined pattern: the cell with its errors, the other parameters and the fit.

    Attributes:
        class_name: The class the pattern was refined in.
        cell: ``(a, b, c, α, β, γ)`` refined (Å, °); tied parameters follow the free ones.
        cell_esd: Estimated standard deviations of ``cell``: a free parameter's own, a tied
            one its source's, a constant 0.
        free: The class's free parameters (the ones refined).
        start_cell: The cell the refinement started from (projected onto the class).
        scale: Overall scale (observed units per simulator unit).
        scale_esd: Its estimated standard deviation.
        background: Chebyshev coefficients of the background, ``x = 2(t − t₀)/(t₁ − t₀) − 1``
            over the grid's ToF range ``background_domain``.
        background_domain: ``(t₀, t₁)`` (µs).
        zero_shift: Zero shift (µs) added to the instrument's ``Zero``.
        zero_shift_esd: Its estimated standard deviation (0 when not refined).
        r_wp: Weighted profile R-factor (%).
        r_exp: Expected R-factor (%).
        chi2_red: Reduced χ² (``(R_wp/R_exp)²``); ≈ 1 for a correct model and right errors.
        n_points: Points fitted.
        n_parameters: Parameters refined (free cell, zero, scale, background).
        converged: Whether the optimiser met a tolerance (not the evaluation limit) and the
            errors could be computed.
        message: The optimiser's last word.
        n_evaluations: Patterns calculated (every pass and the Jacobians included).
        seconds: Wall time of the refinement.
        tof: ``(grid,)`` the grid (µs).
        observed: ``(grid,)`` the pattern.
        sigma: ``(grid,)`` its errors.
        calculated: ``(grid,)`` the refined model, background included.
        background_curve: ``(grid,)`` the background alone.
        fitted: ``(grid,)`` which points were fitted.
        ticks: The refined cell's reflections on the grid.
        probability: The classifier's probability of the class, when :func:`refine_top` made
            the refinement from a prediction.
    """

    class_name: str
    cell: tuple[float, ...]
    cell_esd: tuple[float, ...]
    free: tuple[str, ...]
    start_cell: tuple[float, ...]
    scale: float
    scale_esd: float
    background: tuple[float, ...]
    background_domain: tuple[float, float]
    zero_shift: float
    zero_shift_esd: float
    r_wp: float
    r_exp: float
    chi2_red: float
    n_points: int
    n_parameters: int
    converged: bool
    message: str
    n_evaluations: int
    seconds: float
    tof: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)
    calculated: np.ndarray = field(repr=False)
    background_curve: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    ticks: Ticks = field(repr=False)
    probability: float | None = None

    @property
    def gof(self) -> float:
        """Goodness of fit ``√χ²_red``."""
        return float(np.sqrt(self.chi2_red))

    def parameters(self) -> dict[str, tuple[float, float]]:
        """The free cell parameters as ``name -> (value, esd)``."""
        return {
            p: (self.cell[CELL_PARAMS.index(p)], self.cell_esd[CELL_PARAMS.index(p)])
            for p in self.free
        }

    def describe(self) -> str:
        """One line: class, free parameters ± esd, zero, R_wp, χ²_red."""
        cell = ", ".join(f"{p} = {format_esd(v, e)}" for p, (v, e) in self.parameters().items())
        flag = "" if self.converged else " (not converged)"
        zero = format_esd(self.zero_shift, self.zero_shift_esd)
        return (
            f"{self.class_name}: {cell}, zero {zero} µs, "
            f"R_wp {self.r_wp:.2f} %, R_exp {self.r_exp:.2f} %, χ²_red {self.chi2_red:.3g}{flag}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (without the arrays)."""
        return {
            "class": self.class_name,
            "cell": dict(zip(CELL_PARAMS, self.cell, strict=True)),
            "cell_esd": dict(zip(CELL_PARAMS, self.cell_esd, strict=True)),
            "free": list(self.free),
            "start_cell": dict(zip(CELL_PARAMS, self.start_cell, strict=True)),
            "scale": self.scale,
            "scale_esd": self.scale_esd,
            "background_chebyshev": list(self.background),
            "background_domain_us": list(self.background_domain),
            "zero_shift_us": self.zero_shift,
            "zero_shift_esd_us": self.zero_shift_esd,
            "r_wp_pct": self.r_wp,
            "r_exp_pct": self.r_exp,
            "chi2_red": self.chi2_red,
            "gof": self.gof,
            "n_points": self.n_points,
            "n_parameters": self.n_parameters,
            "converged": self.converged,
            "message": self.message,
            "n_evaluations": self.n_evaluations,
            "seconds": self.seconds,
            "probability": self.probability,
        }


def format_esd(value: float, esd: float) -> str:
    """``value(esd)`` to the esd's first two digits, ``value`` alone when esd is 0 or not
    finite."""
    if not (np.isfinite(esd) and esd > 0.0):
        return f"{value:.6g}"
    digits = max(0, 1 - int(np.floor(np.log10(esd))))
    return f"{value:.{digits}f}({round(esd * 10**digits):d})"


class _Problem:
    """Weighted, variable-projected residuals of one class against one pattern."""

    def __init__(
        self,
        model: ClassPattern,
        y: np.ndarray,
        sigma: np.ndarray,
        fitted: np.ndarray,
        background_terms: int,
        refine_zero: bool,
        zero_shift: float,
    ) -> None:
        self.model = model
        self.fitted = fitted
        self.refine_zero = refine_zero
        self.zero_shift = zero_shift
        self.observed = y
        self.sigma = sigma
        self.w = 1.0 / sigma[fitted]
        self.y = y[fitted]
        tof = model.grid.points()
        self.domain = (float(tof[0]), float(tof[-1]))
        x = 2.0 * (tof - tof[0]) / (tof[-1] - tof[0]) - 1.0
        self.basis = chebyshev.chebvander(x, background_terms - 1)  # (grid, terms)
        self.kinds = [
            "angle" if p in ("alpha", "beta", "gamma") else "length" for p in model.free
        ] + (["zero"] if refine_zero else [])
        self.step = np.array([_STEP[k] for k in self.kinds])
        self.n_evaluations = 0
        # Weighted data and background; the background's orthonormal basis projects it out.
        self.bw = self.basis[fitted] * self.w[:, None]
        self.yw = self.y * self.w
        self.q, _ = np.linalg.qr(self.bw)
        self.y_perp = self.yw - self.q @ (self.q.T @ self.yw)

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        n = len(self.model.free)
        zero = float(theta[n]) if self.refine_zero else self.zero_shift
        return theta[:n], zero

    def weighted_pattern(self, theta: np.ndarray) -> np.ndarray:
        free, zero = self.split(theta)
        self.n_evaluations += 1
        return self.model.pattern(free, zero)[self.fitted] * self.w

    def residual(self, theta: np.ndarray) -> np.ndarray:
        """Weighted residuals with the scale and background solved for (projected out)."""
        f = self.weighted_pattern(theta)
        f_perp = f - self.q @ (self.q.T @ f)
        norm = float(f_perp @ f_perp)
        scale = float(f_perp @ self.y_perp) / norm if norm > 0.0 else 0.0
        return self.y_perp - scale * f_perp

    def jacobian(self, theta: np.ndarray, r0: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Forward differences of :meth:`residual` (backward at an upper bound ``high``)."""
        jac = np.empty((len(r0), len(theta)))
        for i, step in enumerate(self.step):
            h = step if theta[i] + step <= high[i] else -step
            t = theta.copy()
            t[i] += h
            jac[:, i] = (self.residual(t) - r0) / h
        return jac

    def linear(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted pattern ``f`` and the linear parameters ``(scale, b_0 …)`` at ``theta``."""
        f = self.weighted_pattern(theta)
        coef, *_ = np.linalg.lstsq(np.column_stack([f, self.bw]), self.yw, rcond=None)
        return f, coef


def _shape_grid(
    model: ClassPattern,
    kinds: list[str],
    start: np.ndarray,
    reach: np.ndarray,
    box: tuple[np.ndarray, np.ndarray],
) -> tuple[int, np.ndarray, np.ndarray] | None:
    """``(index, values, steps)`` of the scan of the class's one shape parameter: the angle
    (one length and one angle) or the second length (two lengths); ``None`` for a class with
    no or several.

    A step moves the most sensitive peak by :data:`_SCAN_STEP` in ``ln d`` (a fraction of a
    peak width on the log-spaced grid) and the span by at most :data:`_SCAN_SPAN`, within
    :data:`_SCAN_ANGLE` degrees or :data:`_SCAN_RATIO` of the length — or farther, up to the
    parameter's ``reach`` (:data:`SCAN_SIGMAS` times its start's σ), when that is larger. A
    scan that far follows how fast the peaks move along the way (:func:`_walk`): a trigonal
    α near 120° moves them many times faster than near 90°.
    """
    lengths = [i for i, k in enumerate(kinds) if k == "length"]
    angles = [i for i, k in enumerate(kinds) if k == "angle"]
    if len(lengths) == 1 and len(angles) == 1:
        i, limit, probe = angles[0], _SCAN_ANGLE, 1e-3
    elif len(lengths) == 2 and not angles:
        i, limit, probe = lengths[1], _SCAN_RATIO * start[lengths[1]], 1e-4
    else:
        return None
    rate = model.shift_rate(start, i, probe)
    if not rate > 0.0:
        return None
    step = _SCAN_STEP / rate
    span = min(limit, _SCAN_SPAN / rate)
    if reach[i] <= span:
        n = int(np.floor(span / step + 1e-9))
        values = start[i] + step * np.arange(-n, n + 1)
        return i, values, np.full(len(values), step)
    values, steps = _walk(model, start, i, float(reach[i]), probe, (box[0][i], box[1][i]))
    return i, values, steps


#: A scan of more shapes than this goes coarse first (:func:`_scan`): every ``_COARSE``-th
#: shape on patterns blurred by ``_COARSE_BLUR`` points, then every shape near the best
#: ``starts + _COARSE_EXTRA`` of those.
_COARSE_ABOVE = 30
_COARSE = 3
_COARSE_BLUR = 4.0
_COARSE_EXTRA = 2
#: Points at which :func:`_walk` measures how fast the shape parameter moves the peaks.
_WALK_ANCHORS = 13


def _walk(
    model: ClassPattern,
    start: np.ndarray,
    i: int,
    span: float,
    probe: float,
    limits: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Values of parameter ``i`` from ``start[i] − span`` to ``start[i] + span`` (within
    ``limits``, cells that are cells only) and their steps, each step moving the peaks by
    :data:`_SCAN_STEP` in ``ln d`` at the faster of the two nearest of
    :data:`_WALK_ANCHORS` measured rates."""
    lo, hi = max(start[i] - span, limits[0]), min(start[i] + span, limits[1])
    if not hi > lo:
        return np.array([start[i]]), np.array([_SCAN_STEP])
    anchors = np.linspace(lo, hi, _WALK_ANCHORS)
    rates = np.full(len(anchors), np.nan)
    for k, x in enumerate(anchors):
        cand = start.copy()
        cand[i] = x
        if x > 0.0 and reduced_determinant(model.cell(cand))[0] >= _MIN_DETERMINANT:
            rates[k] = model.shift_rate(cand, i, probe)
    valid = np.isfinite(rates) & (rates > 0.0)
    if not valid.any():
        return np.array([start[i]]), np.array([_SCAN_STEP])
    fastest = float(rates[valid].max())
    rates = np.where(valid, rates, fastest)  # beyond the valid cells: as fast as anywhere
    gap = anchors[1] - anchors[0]

    def step_at(x: float) -> float:
        k = int(np.clip((x - anchors[0]) // gap, 0, len(anchors) - 2))
        return _SCAN_STEP / max(rates[k], rates[k + 1])

    values, steps = [float(start[i])], [step_at(float(start[i]))]
    for sign in (1.0, -1.0):
        x = float(start[i])
        while True:
            h = step_at(x)
            x += sign * h
            if not lo <= x <= hi:
                break
            values.append(x)
            steps.append(h)
    order = np.argsort(values)
    return np.array(values)[order], np.array(steps)[order]


def _offsets(start: np.ndarray, i: int, values: np.ndarray) -> list[np.ndarray]:
    """``start`` with parameter ``i`` set to each of ``values``."""
    out = []
    for v in values:
        cand = start.copy()
        cand[i] = v
        out.append(cand)
    return out


def _scan(
    problem: _Problem,
    start: np.ndarray,
    zero: float,
    starts: int,
    reach: np.ndarray,
    box: tuple[np.ndarray, np.ndarray],
) -> list[np.ndarray]:
    """Up to ``starts`` starting cells (free values), best first: local maxima over a grid of
    the shape parameter of the correlation between observed and calculated patterns, each at
    its best dilation of the cell.

    A dilation of the cell by ``s`` moves every peak by ``ln s`` in ``ln ToF`` (exactly but for
    ``Zero`` and ``difA``), i.e. by a constant number of points of the log-spaced grid, so one
    pattern per shape and a cross-correlation give the best dilation of that shape (within
    :data:`_MAX_DILATION`, or the lengths' ``reach`` where that is larger). Shapes outside
    the refinement's ``box`` (low, high) are not scanned.
    """
    model = problem.model
    log_step = model.grid.log_step
    kinds = problem.kinds[: len(start)]
    lengths = np.array([k == "length" for k in kinds])
    dilation = max(_MAX_DILATION, *(reach[lengths] / start[lengths]))
    lags = int(np.ceil(np.log1p(dilation) / log_step))
    obs = np.where(problem.fitted, problem.observed, 0.0)
    obs = np.where(problem.fitted, obs - gaussian_filter1d(obs, _HIGH_PASS), 0.0)
    obs /= np.linalg.norm(obs) or 1.0
    blurred = gaussian_filter1d(obs, _COARSE_BLUR)
    blurred /= np.linalg.norm(blurred) or 1.0

    def dilated(cand: np.ndarray, coarse: bool = False) -> tuple[float, np.ndarray]:
        """Correlation at the best dilation, and the dilated cell (``coarse``: of the
        blurred patterns)."""
        if reduced_determinant(model.cell(cand))[0] < _MIN_DETERMINANT:
            return -np.inf, cand  # not a cell (e.g. a trigonal α scanned to 120°)
        f = model.pattern(cand, zero)
        problem.n_evaluations += 1
        f = f - gaussian_filter1d(f, _HIGH_PASS)
        if coarse:
            f = gaussian_filter1d(f, _COARSE_BLUR)
        f /= np.linalg.norm(f) or 1.0
        # corr[lags + k] = Σ obs[i]·f[i − k]: the calculated pattern moved right by k points.
        target = blurred if coarse else obs
        corr = correlate(target, f, mode="full", method="fft")[len(f) - 1 - lags : len(f) + lags]
        k = int(np.argmax(corr))
        shift = float(k - lags)
        if 0 < k < len(corr) - 1:  # vertex of the parabola through the peak and neighbours
            c0, c1, c2 = corr[k - 1], corr[k], corr[k + 1]
            curvature = c0 - 2.0 * c1 + c2
            shift += 0.5 * (c0 - c2) / curvature if curvature < 0.0 else 0.0
        out = cand.copy()
        out[lengths] *= np.exp(shift * log_step)
        return float(corr[k]), out

    shape = _shape_grid(model, kinds, start, reach, box)
    if shape is None:
        return [dilated(start)[1]]
    i, values, steps = shape
    inside = (values >= box[0][i]) & (values <= box[1][i])
    values, steps = values[inside], steps[inside]
    if not len(values):
        return [dilated(start)[1]]
    grid = _offsets(start, i, values)
    score = np.full(len(grid), -np.inf)
    if len(grid) > _COARSE_ABOVE:
        # A long scan: every _COARSE-th shape on blurred patterns first, then every shape
        # near the best of those.
        coarse = np.arange(0, len(grid), _COARSE)
        rough = np.array([dilated(grid[j], coarse=True)[0] for j in coarse])
        padded = np.concatenate([[-np.inf], rough, [-np.inf]])
        tops = np.flatnonzero((rough >= padded[:-2]) & (rough >= padded[2:]) & np.isfinite(rough))
        near = {
            j
            for t in coarse[tops[np.argsort(-rough[tops])][: starts + _COARSE_EXTRA]]
            for j in range(max(0, t - _COARSE + 1), min(len(grid), t + _COARSE))
        }
        for j in sorted(near):
            score[j] = dilated(grid[j])[0]
    else:
        score = np.array([dilated(cand)[0] for cand in grid])
    padded = np.concatenate([[-np.inf], score, [-np.inf]])
    peaks = np.flatnonzero((score >= padded[:-2]) & (score >= padded[2:]) & np.isfinite(score))
    found = []
    for j in peaks[np.argsort(-score[peaks])][:starts]:
        fine_values = np.clip(values[j] + steps[j] * np.arange(-4, 5) / 4.0, box[0][i], box[1][i])
        fine = [dilated(c) for c in _offsets(grid[j], i, fine_values)]
        found.append(max(fine, key=lambda sc: sc[0]))
    return [cell for _, cell in sorted(found, key=lambda sc: -sc[0])]


def _twin(kinds: list[str], theta: np.ndarray) -> np.ndarray | None:
    """The pseudo-symmetric twin of a nearly cubic cell, which splits the cubic peaks alike
    and is a local minimum next to it: trigonal α ↔ 180° − α within :data:`_TWIN_ANGLE` of
    90°, two lengths swapped within :data:`_TWIN_RATIO` of each other; ``None`` otherwise."""
    lengths = [i for i, k in enumerate(kinds) if k == "length"]
    angles = [i for i, k in enumerate(kinds) if k == "angle"]
    out = theta.copy()
    if len(lengths) == 1 and len(angles) == 1 and abs(theta[angles[0]] - 90.0) < _TWIN_ANGLE:
        out[angles[0]] = 180.0 - theta[angles[0]]
        return out
    if len(lengths) == 2 and not angles:
        i, j = lengths
        if abs(np.log(theta[i] / theta[j])) < _TWIN_RATIO:
            out[i], out[j] = theta[j], theta[i]
            return out
    return None


def _minimise(
    problem: _Problem,
    theta: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    max_evaluations: int,
) -> tuple[float, np.ndarray, int, str]:
    """One ``least_squares`` pass: ``(χ², theta, status, message)``."""
    cache: dict[bytes, np.ndarray] = {}

    def fun(x: np.ndarray) -> np.ndarray:
        r = problem.residual(x)
        cache.clear()
        cache[x.tobytes()] = r
        return r

    def jac(x: np.ndarray) -> np.ndarray:
        r0 = cache.get(x.tobytes())
        return problem.jacobian(x, problem.residual(x) if r0 is None else r0, high)

    result = least_squares(
        fun,
        np.clip(theta, low, high),
        jac=jac,
        bounds=(low, high),
        x_scale=np.array([_TYPICAL[k] for k in problem.kinds]),
        method="trf",
        max_nfev=max_evaluations,
        xtol=_TOLERANCE,
        ftol=_TOLERANCE,
        gtol=_TOLERANCE,
    )
    return 2.0 * float(result.cost), result.x, int(result.status), str(result.message)


def _bounds(
    model: ClassPattern, kinds: list[str], start: np.ndarray, reach: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Box of the nonlinear parameters around ``start``: lengths ±10 %, angles ±15° (or
    ±1.5 ``reach`` where that is wider) inside the range where the cell stays a cell (e.g.
    trigonal α < 120°), zero ±100 µs."""
    low, high = np.empty(len(start)), np.empty(len(start))
    n_free = len(model.free)
    for i, (kind, x) in enumerate(zip(kinds, start, strict=True)):
        wide = 1.5 * float(reach[i]) if i < n_free else 0.0
        if kind == "length":
            d = max(x * _LENGTH_RANGE, wide)
            low[i], high[i] = max(x - d, 0.5 * x), x + d
        elif kind == "angle":
            d = max(_ANGLE_RANGE, wide)
            low[i] = _valid_limit(model, start[:n_free], i, max(1.0, x - d))
            high[i] = _valid_limit(model, start[:n_free], i, min(179.0, x + d))
        else:
            low[i], high[i] = x - _ZERO_RANGE, x + _ZERO_RANGE
    return low, high


def _valid_start(model: ClassPattern, free: np.ndarray) -> np.ndarray:
    """``free``, or, if its angles make no valid cell (a trigonal α ≥ 120° predicted), its
    angles moved towards 90° just far enough that the cell is valid."""
    angles = np.array([p in ("alpha", "beta", "gamma") for p in model.free])

    def ok(t: float) -> bool:
        trial = np.where(angles, 90.0 + t * (free - 90.0), free)
        return bool(reduced_determinant(model.cell(trial))[0] >= _MIN_DETERMINANT)

    if not angles.any() or ok(1.0):
        return free
    inside, outside = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (inside + outside)
        inside, outside = (mid, outside) if ok(mid) else (inside, mid)
    return np.where(angles, 90.0 + inside * (free - 90.0), free)


def _valid_limit(model: ClassPattern, free: np.ndarray, i: int, limit: float) -> float:
    """``limit`` for free angle ``i``, or (by bisection) the angle closest to it from
    ``free[i]`` at which the cell is still comfortably valid (``det G/(a²b²c²) ≥ 1e-4``)."""

    def ok(angle: float) -> bool:
        trial = free.copy()
        trial[i] = angle
        return bool(reduced_determinant(model.cell(trial))[0] >= _MIN_DETERMINANT)

    if ok(limit):
        return limit
    inside, outside = float(free[i]), limit
    for _ in range(40):
        mid = 0.5 * (inside + outside)
        inside, outside = (mid, outside) if ok(mid) else (inside, mid)
    return inside


def refine(
    pattern: np.ndarray,
    class_name: str,
    cell: Sequence[float],
    *,
    simulator: TofDiffractionSimulator | None = None,
    sigma: np.ndarray | None = None,
    fitted: np.ndarray | None = None,
    background_terms: int = 5,
    zero_shift: float = 0.0,
    refine_zero: bool = True,
    start_sigma: Mapping[str, float] | None = None,
    scan: bool = True,
    runner_up: bool = True,
    max_evaluations: int = 100,
) -> Refinement:
    """Refine a predicted cell of ``class_name`` against ``pattern``.

    Args:
        pattern: ``(grid,)`` observed intensities on the simulator's ToF grid (e.g. a
            measured pattern rebinned onto the model's grid, or a simulated one).
        class_name: The class to refine in (its free parameters vary, the tied ones follow).
        cell: Start ``(a, b, c, α, β, γ)`` (Å, °), e.g. the model's prediction; projected onto
            the class (each free parameter the mean of itself and the ones tied to it).
        simulator: The forward model and its grid; default the paper's
            (:class:`TofDiffractionSimulator` with every class, NOMAD bank 4 grid).
        sigma: ``(grid,)`` standard errors of ``pattern``; default ``√max(y, 1)`` (Poisson
            errors of counts).
        fitted: ``(grid,)`` boolean mask of the points to fit; default every point with a
            finite value and error.
        background_terms: Chebyshev terms of the background (1–12).
        zero_shift: Zero shift (µs) to start from (or to keep, with ``refine_zero=False``).
        refine_zero: Whether the zero shift is refined.
        start_sigma: Uncertainties of the start's free parameters (e.g. the model's σ, by
            parameter name): the scan and the box then reach at least :data:`SCAN_SIGMAS`
            σ from the start, so an uncertain prediction far off is still found.
        scan: Whether to scan the shape and dilation of the cell first (see the module
            docstring); without it the fit starts from ``cell`` itself.
        runner_up: Whether a second start is refined after the scan's best (the twin of a
            nearly cubic cell, else the scan's runner-up; see the module docstring), and the
            lower χ² kept.
        max_evaluations: Limit of ``least_squares`` steps per start (each step also costs a
            pattern per nonlinear parameter for the Jacobian).

    Raises:
        ParameterError: Unknown class, a cell that is not a cell, mismatched lengths, or too
            few points.
    """
    t_start = time.perf_counter()
    sim = simulator or default_simulator()
    model = ClassPattern(sim, class_name)
    y = np.asarray(pattern, dtype=np.float64).reshape(-1)
    if y.shape != (model.size,):
        raise ParameterError(
            f"pattern has {y.size} points but the simulator's grid has {model.size}; put it "
            "on the grid first (streamal.inference.place_on_grid)"
        )
    if sigma is None:
        err = np.sqrt(np.maximum(np.where(np.isfinite(y), y, 0.0), 1.0))
    else:
        err = np.asarray(sigma, dtype=np.float64).reshape(-1)
        if err.shape != y.shape:
            raise ParameterError(f"sigma has {err.size} values but pattern has {y.size}")
    ok = np.isfinite(y) & np.isfinite(err) & (err > 0.0)
    mask = ok if fitted is None else ok & np.asarray(fitted, dtype=bool).reshape(-1)
    if not 1 <= background_terms <= 12:
        raise ParameterError(f"background_terms must be 1..12, got {background_terms}")
    start = _valid_start(model, model.free_values(cell))
    start_cell = model.cell(start)
    model.peaks(start_cell)  # a bad start cell fails here, by name
    theta = np.concatenate([start, [zero_shift] if refine_zero else []])
    n_par = len(theta) + 1 + background_terms
    if mask.sum() <= n_par:
        raise ParameterError(f"{int(mask.sum())} points to fit; need more than {n_par}")

    problem = _Problem(model, y, err, mask, background_terms, refine_zero, zero_shift)
    sigmas = dict(start_sigma or {})
    reach = np.array([SCAN_SIGMAS * abs(float(sigmas.get(q, 0.0))) for q in model.free])
    reach = np.where(np.isfinite(reach), reach, 0.0)
    low, high = _bounds(model, problem.kinds, theta, reach)
    starts = 2 if runner_up else 1
    firsts = _scan(problem, start, zero_shift, starts, reach, (low, high)) if scan else [start]
    theta[: len(start)] = firsts[0]
    best = _minimise(problem, theta, low, high, max_evaluations)
    # A nearly cubic cell's twin stands in for the scan's runner-up (the twin is the usual
    # runner-up, and the scan may not resolve the two).
    twin = _twin(problem.kinds, best[1]) if scan and runner_up else None
    if twin is not None:
        twin[len(start) :] = theta[len(start) :]  # the start's zero shift
        others = [np.clip(twin, low, high)]
    else:
        others = [np.concatenate([first, theta[len(start) :]]) for first in firsts[1:]]
    for other in others:
        # A short pass first: from the right basin it is as good as converged by then.
        outcome = _minimise(problem, other, low, high, min(_RUNNER_UP, max_evaluations))
        if outcome[0] < best[0]:
            outcome = _minimise(problem, outcome[1], low, high, max_evaluations)
            if outcome[0] < best[0]:
                best = outcome
    _, theta, status, message = best
    return _result(problem, theta, (low, high), start_cell, status > 0, message, t_start)


def _result(
    problem: _Problem,
    theta: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    start_cell: np.ndarray,
    converged: bool,
    message: str,
    t_start: float,
) -> Refinement:
    model = problem.model
    low, high = bounds
    f, coef = problem.linear(theta)
    scale, background = float(coef[0]), coef[1:]
    bw = problem.basis[problem.fitted] * problem.w[:, None]
    r = problem.yw - scale * f - bw @ background
    n, p = len(r), len(theta) + len(coef)
    chi2_red = float(r @ r) / (n - p)
    sum_wy2 = float(problem.yw @ problem.yw)
    # Full Jacobian of the weighted model in every parameter, by central differences
    # (one-sided against a bound).
    jac = np.empty((n, p))
    for i, h in enumerate(problem.step):
        up, down = theta.copy(), theta.copy()
        up[i] = min(theta[i] + h, high[i])
        down[i] = max(theta[i] - h, low[i])
        change = problem.weighted_pattern(up) - problem.weighted_pattern(down)
        jac[:, i] = scale * change / (up[i] - down[i])
    jac[:, len(theta)] = f
    jac[:, len(theta) + 1 :] = bw
    try:
        cov = np.linalg.inv(jac.T @ jac) * chi2_red
        esd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        esd = np.full(p, np.nan)
        converged = False
    free, zero = problem.split(theta)
    cell = model.cell(free)
    free_esd = dict(zip(model.free, esd[: len(model.free)], strict=True))
    cell_esd = []
    for name in CELL_PARAMS:
        src = model.class_space.tied.get(name, name)
        cell_esd.append(float(free_esd[src]) if isinstance(src, str) else 0.0)
    pattern = model.pattern(free, zero)
    background_curve = problem.basis @ background
    return Refinement(
        class_name=model.class_name,
        cell=tuple(float(v) for v in cell),
        cell_esd=tuple(cell_esd),
        free=model.free,
        start_cell=tuple(float(v) for v in start_cell),
        scale=scale,
        scale_esd=float(esd[len(theta)]),
        background=tuple(float(v) for v in background),
        background_domain=problem.domain,
        zero_shift=zero,
        zero_shift_esd=float(esd[len(model.free)]) if problem.refine_zero else 0.0,
        r_wp=100.0 * float(np.sqrt(r @ r / sum_wy2)),
        r_exp=100.0 * float(np.sqrt((n - p) / sum_wy2)),
        chi2_red=chi2_red,
        n_points=n,
        n_parameters=p,
        converged=bool(converged and np.isfinite(esd).all()),
        message=str(message),
        n_evaluations=problem.n_evaluations,
        seconds=time.perf_counter() - t_start,
        tof=model.grid.points(),
        observed=problem.observed,
        sigma=problem.sigma,
        calculated=scale * pattern + background_curve,
        background_curve=background_curve,
        fitted=problem.fitted.copy(),
        ticks=model.ticks(free, zero),
    )


_SIMULATORS: dict[str, TofDiffractionSimulator] = {}


def default_simulator() -> TofDiffractionSimulator:
    """The paper's instrument and grid with every class (built once per process)."""
    if "default" not in _SIMULATORS:
        from streamal_diffraction.spaces import ALL_CLASSES

        _SIMULATORS["default"] = TofDiffractionSimulator(preset="e2", classes=list(ALL_CLASSES))
    return _SIMULATORS["default"]


@dataclass(frozen=True)
class Candidate:
    """A class to refine in and the cell to start from.

    Attributes:
        class_name: The class.
        cell: ``(a, b, c, α, β, γ)`` (Å, °); projected onto the class when refined.
        probability: The classifier's probability of the class.
        sigma: Uncertainties of the cell parameters by name (e.g. the model's σ), which widen
            the refinement's scan (:func:`refine`'s ``start_sigma``); empty: the default
            scan.
    """

    class_name: str
    cell: tuple[float, ...]
    probability: float = 1.0
    sigma: Mapping[str, float] = field(default_factory=dict)


def candidates(prediction: Any) -> list[Candidate]:
    """Every class of a prediction (:class:`streamal.inference.Prediction`, or anything with
    ``probabilities: {class: p}`` and ``parameters: {name: estimate with .value}``), most
    probable first, each starting from the predicted six cell parameters."""
    params = prediction.parameters
    try:
        cell = tuple(float(getattr(params[p], "value", params[p])) for p in CELL_PARAMS)
    except KeyError as e:
        raise ParameterError(
            f"the prediction has no {e.args[0]!r}; refining needs all of {list(CELL_PARAMS)}"
        ) from None
    sigma = {q: float(getattr(params[q], "sigma", 0.0)) for q in CELL_PARAMS}
    ranked = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
    return [Candidate(name, cell, float(p), sigma) for name, p in ranked]


def refine_top(
    pattern: np.ndarray,
    predictions: Any,
    k: int = 2,
    *,
    threshold: float = 0.9,
    simulator: TofDiffractionSimulator | None = None,
    **options: Any,
) -> list[Refinement]:
    """Refine the most probable class, and the next ``k − 1`` too when the classifier is unsure.

    Args:
        pattern: ``(grid,)`` observed intensities on the simulator's grid.
        predictions: A prediction (see :func:`candidates`) or :class:`Candidate` s.
        k: Most classes refined.
        threshold: A top probability at or above this refines the top class alone.
        simulator: As for :func:`refine`; its space must know the classes.
        **options: Passed to :func:`refine` (``sigma``, ``fitted``, ``background_terms`` …).

    Returns:
        The refinements, best (lowest χ²_red) first, each with its ``probability``.
    """
    found = list(predictions) if isinstance(predictions, Sequence) else candidates(predictions)
    if not found:
        raise ParameterError("no classes to refine: predictions is empty")
    found.sort(key=lambda c: -c.probability)
    chosen = found[:1] if found[0].probability >= threshold else found[: max(1, k)]
    sim = simulator or default_simulator()
    out = [
        replace(
            refine(
                pattern,
                c.class_name,
                c.cell,
                simulator=sim,
                **({"start_sigma": c.sigma} | options),
            ),
            probability=c.probability,
        )
        for c in chosen
    ]
    return sorted(out, key=lambda r: r.chi2_red)
