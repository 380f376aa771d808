"""Where the active-learning policy put its samples: each phase's training samples over each
class's free parameters, against the weight the policy gave the study set.

Reads the store's training samples (phase per batch) and, from ``al/phase-<k>.npz``, the
study-set weights the policy fitted before drawing phase ``k`` (``study_rows``,
``study_weights``; absent from runs of older versions and from model-free policies, whose
figure then shows the samples alone).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import StoreError
from streamal.report.figure import pyplot, save
from streamal.report.metrics import phase_colors, run_space

#: Classes (rows of the figure) and histogram panels per class, at most.
MAX_CLASSES = 8
MAX_PARAMS = 4
#: Points per phase in a 2-D scatter, at most (a random subset beyond).
MAX_SCATTER = 500
#: Histogram bins of a phase with many samples; fewer (about 2√n, at least 6) for few.
BINS = 20


def _study_weights(run_dir: Path, n_rows: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Phase k → (study rows, weights) fitted before drawing phase k, where saved."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for path in (Path(run_dir) / "al").glob("phase-*.npz"):
        m = re.fullmatch(r"phase-(\d+)\.npz", path.name)
        if m is None:
            continue
        try:
            with np.load(path, allow_pickle=False) as saved:
                if not {"study_rows", "study_weights"} <= set(saved.files):
                    continue
                rows = np.asarray(saved["study_rows"], dtype=np.int64)
                weights = np.asarray(saved["study_weights"], dtype=np.float64)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            continue
        good = rows.shape == weights.shape and (len(rows) == 0 or rows.max() < n_rows)
        if good and len(rows) and rows.min() >= 0:
            out[int(m.group(1))] = (rows, weights)
    return dict(sorted(out.items()))


def _read(run_dir: Path) -> dict[str, Any] | None:
    """Training samples by phase and the study set with its weights, or None."""
    from streamal.data.store import SampleStore, StoreView

    path = Path(run_dir) / "store.h5"
    if not path.exists():
        return None
    try:
        with SampleStore(path, mode="r") as store:
            phases = sorted({b.phase for b in store.batches() if b.split == "train"})
            train = {}
            for p in phases:
                view = store.select(split="train", phase=p)
                train[p] = (view.classes(), view.params())
            fits = _study_weights(run_dir, len(store))
            study = {
                k: (StoreView(store, rows).classes(), StoreView(store, rows).params(), w)
                for k, (rows, w) in fits.items()
            }
    except (OSError, StoreError):
        return None
    return {"train": train, "study": study} if train else None


def _panels(space: ParameterSpace, k: int) -> list[tuple[str, ...]]:
    """Panels of class k: one per free parameter (capped), and a scatter for two."""
    free = space.classes[k].free
    panels: list[tuple[str, ...]] = [(p,) for p in free[:MAX_PARAMS]]
    if len(free) == 2:
        panels.append(tuple(free))
    return panels


def _label(space: ParameterSpace, p: str) -> str:
    unit = space.unit(p)
    return f"{p} ({unit})" if unit else p


def _weight_density(
    values: np.ndarray, weights: np.ndarray, lo: float, hi: float, n_free: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where the study weights send samples along one parameter, as a density on ``lo..hi``
    that compares with the samples' histograms: the weights smoothed by a Gaussian as wide as
    the study grid's spacing (how the uncertainty-mixture policy draws, ``tau_factor`` 1)."""
    per_dim = max(1, int(np.ceil(len(values) ** (1 / max(n_free, 1)) - 1e-9)))
    tau = (hi - lo) / per_dim if hi > lo else 1.0
    x = np.linspace(lo, hi, 200) if hi > lo else np.linspace(lo - 0.5, lo + 0.5, 200)
    density = np.zeros(len(x))
    for s in range(0, len(values), 50_000):  # a large study set in slices
        v, w = values[s : s + 50_000], weights[s : s + 50_000]
        density += (w * np.exp(-0.5 * ((x[:, None] - v) / tau) ** 2)).sum(axis=1)
    area = float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(x)))
    return x, density / area if area > 0 else density


def sample_distribution_plot(run_dir: Path, out_dir: Path) -> list[Path]:
    """``samples.png``: for each class, each phase's training samples over the class's free
    parameters (density histograms; a scatter for two parameters) and, dashed, the study-set
    weight the policy fitted from the model's uncertainty before each AL phase.

    Args:
        run_dir: The run directory.
        out_dir: Where to write the figure.

    Returns:
        The written path; ``[]`` for a run without a store, a space or training samples.
    """
    space = run_space(Path(run_dir))
    data = _read(Path(run_dir)) if space is not None else None
    if space is None or data is None:
        return []
    plt = pyplot()
    from matplotlib.lines import Line2D

    train, study = data["train"], data["study"]
    n_phases = max(max(train), max(study, default=0)) + 1
    colors = phase_colors(n_phases)
    classes = list(range(min(len(space.classes), MAX_CLASSES)))
    ncols = max(1, max(len(_panels(space, k)) for k in classes))
    nrows = len(classes)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows + 0.9), squeeze=False)
    rng = np.random.default_rng(0)
    for row, k in zip(axes, classes, strict=True):
        c = space.classes[k]
        panels = _panels(space, k)
        for ax in row[len(panels) :]:
            ax.set_visible(False)
        counts = {p: int((cl == k).sum()) for p, (cl, _) in train.items()}
        heading = f"{c.name}: " + ", ".join(f"{n} in phase {p}" for p, n in counts.items() if n)
        if not panels:
            row[0].set_visible(True)
            row[0].axis("off")
            row[0].text(0.5, 0.5, f"{heading}\n(no free parameter)", ha="center", va="center")
            continue
        for ax, panel in zip(row, panels, strict=False):
            cols = [space.param_names.index(p) for p in panel]
            if len(panel) == 1:
                _histogram(ax, space, k, panel[0], cols[0], train, study, colors)
            else:
                _scatter(ax, space, k, panel, cols, train, study, colors, rng)
        row[0].set_title(heading, fontsize=10, loc="left")
    handles = [
        Line2D([], [], color=colors[p], lw=2, label=f"phase {p} samples" + " (uniform)" * (p == 0))
        for p in sorted(train)
    ]
    handles += [
        Line2D([], [], color=colors[p], lw=1.2, ls="--", label=f"policy's aim, AL batch {p}")
        for p in study
    ]
    spare = next((ax for ax in axes.flat if not ax.get_visible()), None)
    if spare is not None:  # an empty cell holds the legend, clear of the histograms
        spare.set_visible(True)
        spare.axis("off")
        spare.legend(handles=handles, fontsize=9, loc="center", frameon=False)
    else:
        axes[0][0].legend(handles=handles, fontsize=7, loc="best", framealpha=0.85)
    hidden = len(space.classes) - len(classes)
    fig.suptitle(
        "Where each phase's training samples lie, per class"
        + (f" ({hidden} more classes not shown)" if hidden else "")
        + "\ndashed: where the policy's study-set weights (from the model's uncertainty) sent"
        " the samples of that phase",
        fontsize=12,
    )
    return [save(fig, Path(out_dir) / "samples.png")]


def _histogram(ax, space, k, name, col, train, study, colors) -> None:  # noqa: ANN001
    c = space.classes[k]
    lo, hi = c.bounds[name]
    span = (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)
    for p, (cl, params) in train.items():
        values = params[cl == k, col]
        if len(values):
            n_bins = int(np.clip(2 * np.sqrt(len(values)), 6, BINS))
            edges = np.linspace(*span, n_bins + 1)
            ax.hist(values, bins=edges, density=True, histtype="step", color=colors[p], lw=1.5)
    for p, (cl, params, weights) in study.items():
        sel = cl == k
        if sel.any() and weights[sel].sum() > 0:
            x, density = _weight_density(params[sel, col], weights[sel], lo, hi, len(c.free))
            ax.plot(x, density, "--", color=colors[p], lw=1.2)
    ax.set_xlabel(_label(space, name))
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)


def _scatter(ax, space, k, panel, cols, train, study, colors, rng) -> None:  # noqa: ANN001
    if study:
        last = max(study)
        cl, params, weights = study[last]
        sel = cl == k
        if sel.any():
            w = weights[sel] / max(weights[sel].max(), 1e-300)
            ax.scatter(
                params[sel, cols[0]],
                params[sel, cols[1]],
                c=w,
                cmap="Oranges",
                vmin=0,
                vmax=1,
                marker="s",
                s=40,
                alpha=0.8,
                lw=0,
                zorder=0,
            )
            ax.set_title(f"squares: study weight before phase {last}", fontsize=8, loc="right")
    for p, (cl, params) in train.items():
        rows = np.flatnonzero(cl == k)
        if len(rows) > MAX_SCATTER:
            rows = rng.choice(rows, MAX_SCATTER, replace=False)
        ax.scatter(params[rows, cols[0]], params[rows, cols[1]], s=4, color=colors[p], alpha=0.6)
    ax.set_xlabel(_label(space, panel[0]))
    ax.set_ylabel(_label(space, panel[1]))
    ax.grid(alpha=0.3)
