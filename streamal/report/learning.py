"""Learning curves: training and validation losses and metrics per epoch of every training
stage, from ``checkpoints/<stage>/history.json``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.data.space import ParameterSpace
from streamal.report.figure import pyplot, save
from streamal.report.metrics import (
    describe_metric,
    metric_order,
    phase_colors,
    run_space,
    training_stages,
)

#: Panels in the figure, at most.
MAX_PANELS = 9
#: History entries that are not losses or metrics.
TIMINGS = frozenset({"epoch", "train_s", "epoch_s"})


def _histories(run_dir: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """``(stage, epochs)`` of each stage with a readable, non-empty history."""
    out = []
    for stage in training_stages(run_dir):
        history = durable.read_json(stage / "history.json", default=None)
        if isinstance(history, list):
            rows = [h for h in history if isinstance(h, dict) and isinstance(h.get("epoch"), int)]
            if rows:
                out.append((stage.name, rows))
    return out


def _panels(keys: set[str], space: ParameterSpace | None) -> list[tuple[str, str | None]]:
    """``(main key, validation key drawn dashed beside it or None)`` per panel."""
    parts = metric_order([k[6:] for k in keys if k.startswith("train_")], space)
    panels: list[tuple[str, str | None]] = [
        (f"train_{p}", f"val_{p}" if f"val_{p}" in keys else None) for p in parts
    ]
    if "val_score" in keys:
        panels.append(("val_score", None))
    shown = {v for _, v in panels if v}
    rest = [k for k in keys if k.startswith("val_") and k != "val_score" and k not in shown]
    panels += [(k, None) for k in metric_order(rest, space)]
    return panels[:MAX_PANELS]


def learning_curves(run_dir: Path, out_dir: Path) -> list[Path]:
    """``learning.png``: one panel per quantity against the epoch, one line per stage.

    Training losses are solid with their validation counterpart dashed; the validation score
    marks the epoch whose checkpoint was kept (``best.pt``).

    Args:
        run_dir: The run directory.
        out_dir: Where to write the figure.

    Returns:
        The written path, or ``[]`` when no stage has a history.
    """
    histories = _histories(Path(run_dir))
    if not histories:
        return []
    space = run_space(run_dir)
    metrics = durable.read_json(Path(run_dir) / "metrics.json", default={})
    n_train = {
        str(p.get("phase")): p.get("n_train")
        for p in (metrics.get("phases", []) if isinstance(metrics, dict) else [])
        if isinstance(p, dict)
    }
    keys = {k for _, rows in histories for h in rows for k in h} - TIMINGS
    panels = _panels(keys, space)
    if not panels:
        return []
    plt = pyplot()
    from matplotlib.lines import Line2D

    colors = phase_colors(len(histories))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows + 0.6), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, val_key) in zip(axes.flat, panels, strict=False):
        label = describe_metric(key[6:] if key.startswith("train_") else key, space)
        for color, (_, rows) in zip(colors, histories, strict=True):
            for k, style in ((key, "-"), (val_key, "--")):
                pts = [(h["epoch"], h[k]) for h in rows if k and _finite(h.get(k))]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, [y * label.scale for y in ys], style, color=color, lw=1.4)
            if key == "val_score":
                pts = [(h["epoch"], h[key]) for h in rows if _finite(h.get(key))]
                if pts:
                    best = min(pts, key=lambda p: p[1])
                    ax.plot(*best, "*", color=color, ms=11, mec="k", mew=0.5)
        ax.set_title(label.title, fontsize=11)
        ax.set_ylabel(label.ylabel)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    handles = [
        Line2D(
            [],
            [],
            color=c,
            lw=2,
            label=f"{stage}: {n_train[stage]} samples" if n_train.get(stage) else stage,
        )
        for c, (stage, _) in zip(colors, histories, strict=True)
    ]
    handles += [
        Line2D([], [], color="k", ls="-", label="training"),
        Line2D([], [], color="k", ls="--", label="validation"),
    ]
    if "val_score" in keys:
        handles.append(
            Line2D([], [], ls="", marker="*", color="0.5", mec="k", ms=10, label="kept (best.pt)")
        )
    spare = axes.flat[len(panels)] if len(panels) < nrows * ncols else None
    if spare is not None:  # an empty cell holds the legend, clear of the curves
        spare.set_visible(True)
        spare.axis("off")
        spare.legend(handles=handles, fontsize=9, loc="center", frameon=False)
    else:
        axes.flat[0].legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)
    fig.suptitle("Learning curves of each training stage", fontsize=13)
    return [save(fig, Path(out_dir) / "learning.png")]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
