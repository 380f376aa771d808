"""The trained model on the test set: predicted against true parameters with their uncertainty,
and the confusion matrix of the classes.

After the test evaluation rank 0 of a training writes ``checkpoints/<stage>/
test_predictions.npz`` with :func:`write_test_predictions`, when the model plugin implements
:meth:`~streamal.train.model.ModelPlugin.predict`; :func:`predictions_plot` draws the last
stage's file. Its arrays (``n`` test samples, ``T`` regression targets, ``K`` classes):

``classes`` (n,) true class; ``params_true``, ``params``, ``params_sigma`` (n, T) true and
predicted targets and the predicted σ, in the parameters' units; ``class_probabilities``
(n, K), only for a model that predicts classes; ``target_names``, ``units`` (T,);
``class_names`` (K,); ``free`` (K, T): target j is a free parameter of class k.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from streamal import durable
from streamal.data.space import ParameterSpace
from streamal.errors import PluginError
from streamal.report.figure import pyplot, save
from streamal.report.metrics import stage_key
from streamal.train.targets import free_mask, regression_scale

PREDICTIONS_FILE = "test_predictions.npz"
#: Points per predicted-vs-true panel, at most (a random subset beyond).
MAX_POINTS = 2000
#: Panels (targets) in the predicted-vs-true figure, at most.
MAX_PANELS = 12
#: Classes up to which confusion-matrix cells carry their numbers.
ANNOTATE_CLASSES = 12


def write_test_predictions(
    path: Path,
    predicted: Mapping[str, np.ndarray],
    classes: np.ndarray,
    params: np.ndarray,
    space: ParameterSpace,
) -> Path:
    """Save a model's test-set predictions beside its checkpoint, atomically.

    Args:
        path: The ``.npz`` to write (``checkpoints/<stage>/test_predictions.npz``).
        predicted: What the plugin's ``predict()`` returned on the test outputs.
        classes: ``(n,)`` true classes of the test samples, in the outputs' order.
        params: ``(n, P)`` their full true parameter vectors, as stored.
        space: The run's parameter space.

    Returns:
        ``path``.

    Raises:
        PluginError: ``predicted`` lacks ``params``/``params_sigma`` or has the wrong shapes.
    """
    names, _, _ = regression_scale(space)
    classes = np.asarray(classes, dtype=np.int64)
    n, t, k = len(classes), len(names), len(space.classes)
    arrays: dict[str, np.ndarray] = {
        "classes": classes,
        "params_true": np.asarray(params, dtype=np.float64)[
            :, [space.param_names.index(p) for p in names]
        ],
        "target_names": np.array(names, dtype=str),
        "units": np.array([space.unit(p) for p in names], dtype=str),
        "class_names": np.array(space.class_names, dtype=str),
        "free": free_mask(space, names),
    }
    shapes = {"params": (n, t), "params_sigma": (n, t), "class_probabilities": (n, k)}
    for key, shape in shapes.items():
        if key not in predicted and key == "class_probabilities":
            continue
        value = np.asarray(predicted.get(key), dtype=np.float64)
        if value.shape != shape:
            raise PluginError(
                f"predict() must return {key!r} of shape {shape} (targets {names}), "
                f"got {value.shape if key in predicted else 'nothing'}"
            )
        arrays[key] = value
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return durable.write_bytes(path, buf.getvalue())


def load_test_predictions(run_dir: Path) -> tuple[str, dict[str, np.ndarray]] | None:
    """``(stage, arrays)`` of the last training stage with readable test predictions."""
    root = Path(run_dir) / "checkpoints"
    found = sorted(root.glob(f"*/{PREDICTIONS_FILE}"), key=lambda p: stage_key(p.parent.name))
    for path in reversed(found):
        try:
            with np.load(path, allow_pickle=False) as saved:
                data = {key: saved[key] for key in saved.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            continue
        needed = {"classes", "params_true", "params", "params_sigma", "target_names", "free"}
        if needed <= set(data):
            return path.parent.name, data
    return None


def predictions_plot(run_dir: Path, out_dir: Path) -> list[Path]:
    """``predictions.png`` (predicted vs true per parameter, ±1σ) and ``confusion.png``
    (row-normalised confusion matrix and per-class accuracy) of the last stage's test set.

    Args:
        run_dir: The run directory.
        out_dir: Where to write the figures.

    Returns:
        The written paths; ``[]`` when no stage saved test predictions.
    """
    loaded = load_test_predictions(Path(run_dir))
    if loaded is None:
        return []
    stage, data = loaded
    written = []
    if len(data["target_names"]) and len(data["classes"]):
        written.append(_scatter(stage, data, Path(out_dir) / "predictions.png"))
    probs = data.get("class_probabilities")
    if probs is not None and probs.ndim == 2 and probs.shape[1] > 1 and len(probs):
        written.append(_confusion(stage, data, Path(out_dir) / "confusion.png"))
    return written


def _class_names(data: Mapping[str, np.ndarray], k: int) -> list[str]:
    names = [str(c) for c in data.get("class_names", [])]
    return names if len(names) == k else [f"class {i}" for i in range(k)]


def _scatter(stage: str, data: Mapping[str, np.ndarray], path: Path) -> Path:
    plt = pyplot()
    names = [str(p) for p in data["target_names"]][:MAX_PANELS]
    units = [str(u) for u in data.get("units", [""] * len(names))]
    classes = data["classes"]
    free = data["free"]
    k = free.shape[0]
    class_names = _class_names(data, k)
    colors = plt.get_cmap("tab10" if k <= 10 else "tab20")(np.arange(k) % (10 if k <= 10 else 20))
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.6 * nrows + 0.9), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    rng = np.random.default_rng(0)
    for j, (ax, name) in enumerate(zip(axes.flat, names, strict=False)):
        unit = f" ({units[j]})" if j < len(units) and units[j] else ""
        rows = np.flatnonzero(free[np.clip(classes, 0, k - 1), j])
        true, pred, sigma = (data[a][rows, j] for a in ("params_true", "params", "params_sigma"))
        ok = np.isfinite(true) & np.isfinite(pred) & np.isfinite(sigma)
        rows, true, pred, sigma = rows[ok], true[ok], pred[ok], sigma[ok]
        if len(rows) == 0:
            ax.set_title(f"{name}: free in no test sample", fontsize=10)
            continue
        shown = np.arange(len(rows))
        if len(rows) > MAX_POINTS:
            shown = np.sort(rng.choice(len(rows), MAX_POINTS, replace=False))
        for c in np.unique(classes[rows]):
            sel = shown[classes[rows][shown] == c]
            ax.errorbar(
                true[sel],
                pred[sel],
                yerr=sigma[sel],
                fmt="o",
                ms=2.5,
                lw=0.6,
                elinewidth=0.5,
                alpha=0.55,
                color=colors[int(c) % len(colors)],
                label=class_names[int(c)],
            )
        lo = min(true.min(), np.percentile(pred, 0.5))
        hi = max(true.max(), np.percentile(pred, 99.5))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8, zorder=0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        mae = float(np.abs(pred - true).mean())
        within = float((np.abs(pred - true) <= sigma).mean())
        symbol = "" if not unit else units[j] if units[j] in ("°", "%") else f" {units[j]}"
        ax.set_title(f"{name}: MAE {mae:.3g}{symbol}, {within:.0%} within ±1σ", fontsize=10)
        ax.set_xlabel(f"true {name}{unit}")
        ax.set_ylabel(f"predicted {name}{unit}")
        ax.grid(alpha=0.3)
        if k > 1:
            ax.legend(fontsize=7, markerscale=2, loc="upper left", framealpha=0.8)
    n = len(classes)
    fig.suptitle(
        f"Predicted vs true parameters on the test set ({stage}, {n} samples)\n"
        "bars: predicted ±1σ; each parameter over the test samples whose class has it free",
        fontsize=12,
    )
    return save(fig, path)


def _confusion(stage: str, data: Mapping[str, np.ndarray], path: Path) -> Path:
    plt = pyplot()
    probs = data["class_probabilities"]
    k = probs.shape[1]
    names = _class_names(data, k)
    true = np.clip(data["classes"], 0, k - 1)
    pred = probs.argmax(axis=1)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)
    per_class = counts.sum(axis=1)
    fraction = counts / np.maximum(per_class, 1)[:, None]
    accuracy = np.diag(fraction)
    side = max(4.0, 0.55 * k + 2.5)
    fig, (ax, bar) = plt.subplots(
        1, 2, figsize=(side + 3.2, side), gridspec_kw={"width_ratios": (side, 2.2)}
    )
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1, aspect="auto")  # rows = bars
    ticks = np.arange(k)
    size = 9 if k <= 12 else 6
    ax.set_xticks(ticks, names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center")
    ax.set_yticks(ticks, names)
    ax.tick_params(labelsize=size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= ANNOTATE_CLASSES:
        for i in range(k):
            for j in range(k):
                if counts[i, j] or i == j:
                    ax.text(
                        j,
                        i,
                        f"{fraction[i, j]:.0%}\n{counts[i, j]}",
                        ha="center",
                        va="center",
                        fontsize=8 if k <= 6 else 6,
                        color="white" if fraction[i, j] > 0.55 else "black",
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="fraction of the true class")
    bar.barh(ticks, accuracy * 100, color=plt.get_cmap("Blues")(0.45 + 0.5 * accuracy))
    bar.set_ylim(k - 0.5, -0.5)
    bar.set_yticks(ticks, [f"n={c}" for c in per_class])
    bar.tick_params(labelsize=size)
    bar.set_xlim(0, 100)
    bar.set_xlabel("accuracy per class (%)")
    bar.grid(axis="x", alpha=0.3)
    for i, a in enumerate(accuracy):
        inside = a > 0.3
        bar.text(
            a * 100 + (-2 if inside else 2),
            i,
            f"{a:.0%}",
            va="center",
            ha="right" if inside else "left",
            fontsize=size,
            color="white" if inside else "black",
        )
    overall = float((pred == true).mean())
    fig.suptitle(
        f"Classes on the test set ({stage}, {len(true)} samples): accuracy {overall:.1%}",
        fontsize=12,
    )
    return save(fig, path)
