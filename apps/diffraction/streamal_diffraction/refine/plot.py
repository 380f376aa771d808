"""The refinement drawn as crystallographers draw a Rietveld fit: observed points, calculated
line, difference curve below, tick marks of the refined reflections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamal.report.figure import pyplot, save
from streamal_diffraction.refine.fit import Refinement, format_esd

_SYMBOL = {"a": "a", "b": "b", "c": "c", "alpha": "α", "beta": "β", "gamma": "γ"}
_UNIT = {"a": " Å", "b": " Å", "c": " Å", "alpha": "°", "beta": "°", "gamma": "°"}


def title(refinement: Refinement) -> str:
    """Two lines: class and cell ± esd (free parameters), then zero shift, R_wp and GoF."""
    r = refinement
    cell = ", ".join(
        f"{_SYMBOL[p]} = {format_esd(v, e)}{_UNIT[p]}" for p, (v, e) in r.parameters().items()
    )
    prob = "" if r.probability is None else f" (p = {r.probability:.2f})"
    fit = (
        f"zero shift {format_esd(r.zero_shift, r.zero_shift_esd)} µs    "
        f"$R_{{wp}}$ = {r.r_wp:.2f} %    $R_{{exp}}$ = {r.r_exp:.2f} %    "
        f"GoF = {r.gof:.2f} ($\\chi^2_{{red}}$ = {r.chi2_red:.2f})"
    )
    flag = "" if r.converged else "    NOT CONVERGED"
    return f"{r.class_name}{prob}: {cell}\n{fit}{flag}"


def plot_refinement(
    refinement: Refinement,
    path: str | Path,
    *,
    zoom: tuple[float, float] | None = None,
) -> Path:
    """Write the fit as a PNG (≤ 2000 × 1600 px): the whole pattern above and a zoomed ToF
    window below, each with observed (points), calculated (line), background (dashed),
    difference (offset below) and tick marks of the refined reflections.

    Args:
        refinement: What :func:`~streamal_diffraction.refine.refine` returned.
        path: The PNG file.
        zoom: ToF window (µs) of the lower panel; default the 20 % of the range around the
            strongest calculated peak.
    """
    plt = pyplot()
    r = refinement
    fig, axes = plt.subplots(2, 1, figsize=(13.0, 9.0), gridspec_kw={"height_ratios": [3, 2]})
    t = r.tof
    if zoom is None:
        peak = float(t[int(np.argmax(r.calculated - r.background_curve))])
        half = 0.1 * (t[-1] - t[0])
        lo = min(max(t[0], peak - half), t[-1] - 2.0 * half)
        zoom = (lo, lo + 2.0 * half)
    _panel(axes[0], r, (float(t[0]), float(t[-1])), legend=True)
    _panel(axes[1], r, zoom, legend=False)
    axes[0].axvspan(*zoom, color="0.92", zorder=0)
    axes[0].set_title(title(r), fontsize=11, loc="left")
    axes[1].set_xlabel("time of flight (µs)")
    return save(fig, Path(path))


def _panel(ax: Any, r: Refinement, window: tuple[float, float], *, legend: bool) -> None:
    """One panel over ``window`` (µs): curves, ticks and the difference below."""
    t = r.tof
    inside = (t >= window[0]) & (t <= window[1])
    fit = inside & r.fitted
    obs, calc = r.observed, r.calculated
    top = float(max(np.max(obs[fit], initial=0.0), np.max(calc[inside], initial=0.0)))
    low = float(min(np.min(obs[fit], initial=0.0), np.min(calc[inside], initial=0.0)))
    diff = np.where(r.fitted, obs - calc, np.nan)
    span = float(np.nanmax(np.abs(diff[fit]), initial=1.0)) if fit.any() else 1.0
    tick_row = low - 0.04 * (top - low)
    offset = tick_row - 0.06 * (top - low) - span  # the difference's zero line
    ms = 2.5 if (window[1] - window[0]) < 0.5 * (t[-1] - t[0]) else 1.2
    ax.plot(t[fit], obs[fit], "o", ms=ms, mfc="none", mec="black", mew=0.6, label="observed")
    ax.plot(t[inside], calc[inside], "-", color="tab:red", lw=0.9, label="calculated")
    ax.plot(t[inside], r.background_curve[inside], "--", color="0.5", lw=0.8, label="background")
    ax.plot(t[inside], offset + diff[inside], "-", color="tab:blue", lw=0.7, label="obs − calc")
    ax.axhline(offset, color="tab:blue", lw=0.4, alpha=0.5)
    ticks = r.ticks.tof[(r.ticks.tof >= window[0]) & (r.ticks.tof <= window[1])]
    h = 0.025 * (top - low)
    lw = 0.7 if ms > 2.0 else 0.4
    ax.vlines(ticks, tick_row - h, tick_row + h, color="tab:green", lw=lw, label="reflections")
    ax.set_xlim(*window)
    ax.set_ylim(offset - 1.15 * span, top + 0.05 * (top - low))
    ax.set_ylabel("counts")
    if legend:
        ax.legend(loc="upper right", fontsize=9, frameon=False, markerscale=2)
