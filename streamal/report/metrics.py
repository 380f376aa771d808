"""Test metrics of each training phase against the number of training samples, and what the
report's figures share: metric names in words with units, the run's space, training stages in
order, a colour per phase.

Metric keys follow the model contract (:mod:`streamal.train.model`): ``accuracy``,
``class_loss``, ``nll``, ``mse`` and per-parameter ``<stat>_<param>_<unit>``
(:func:`streamal.train.targets.metric_name`, e.g. ``mae_a_A``: the mean absolute error of
``a`` in Å). :func:`describe_metric` turns a key into a title and a y label.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.data.space import ParameterSpace, unit_suffix
from streamal.report.figure import pyplot, save

#: Whole-run statistics: key → (title, y label).
RUN_STATS: dict[str, tuple[str, str]] = {
    "accuracy": ("Class accuracy", "accuracy (%)"),
    "class_loss": ("Class cross-entropy", "cross-entropy (nats)"),
    "nll": ("Regression NLL", "negative log-likelihood"),
    "mse": ("Regression MSE (scaled targets)", "Σ squared error, targets in [0, 1]"),
    "loss": ("Total loss", "loss (what training minimises)"),
    "score": ("Validation score (picks best.pt)", "score (lower is better)"),
}

#: Per-parameter statistics ``<stat>_<param>[_<unit>]``: stat → (title word, y label, whether
#: the unit is squared, whether the statistic has a unit).
PARAM_STATS: dict[str, tuple[str, str, bool, bool]] = {
    "mae": ("MAE", "mean absolute error", False, True),
    "rmse": ("RMSE", "root-mean-square error", False, True),
    "mse": ("MSE", "mean squared error", True, True),
    "bias": ("Bias", "mean error", False, True),
    "sigma": ("Predicted σ", "mean predicted σ", False, True),
    "r2": ("R²", "coefficient of determination R²", False, False),
}

#: Unit words of metric names back to symbols (the inverse of ``unit_suffix``'s common cases).
_SYMBOLS = {"A": "Å", "deg": "°", "pct": "%", "Ohm": "Ω"}


@dataclass(frozen=True)
class MetricLabel:
    """How a figure shows one metric.

    Attributes:
        title: In words: ``"MAE of a"``.
        ylabel: With the unit: ``"mean absolute error (Å)"``.
        scale: Multiply the stored value by this to plot it (accuracy in %).
    """

    title: str
    ylabel: str
    scale: float = 1.0


def _param_and_unit(rest: str, space: ParameterSpace | None) -> tuple[str, str]:
    """``"a_A"`` → ``("a", "Å")``, the unit from the space where there is one."""
    if space is not None:
        for p in sorted(space.param_names, key=len, reverse=True):
            unit = space.unit(p)
            if rest == p or (unit and rest == f"{p}_{unit_suffix(unit)}"):
                return p, unit
    if "_" in rest:
        p, suffix = rest.rsplit("_", 1)
        return p, _SYMBOLS.get(suffix, suffix)
    return rest, ""


def describe_metric(key: str, space: ParameterSpace | None = None) -> MetricLabel:
    """A metric key in words, with its unit.

    Args:
        key: A metric name as a model's ``metrics()`` returns it (``mae_a_A``); a
            ``test_``/``val_``/``train_`` prefix names the split in the title.
        space: The run's space, which gives parameter names and units exactly; without it
            the unit is the key's last part.

    Example:
        ``describe_metric("mae_alpha_deg")`` is ``MetricLabel("MAE of alpha",
        "mean absolute error (°)")``.
    """
    split = ""
    for prefix, word in (("test_", "Test "), ("val_", "Validation "), ("train_", "Training ")):
        if key.startswith(prefix) and key != "val_score":
            split, key = word, key[len(prefix) :]
            break
    if key == "val_score":
        key = "score"
    if key in RUN_STATS:
        title, ylabel = RUN_STATS[key]
        label = MetricLabel(title, ylabel, 100.0 if key == "accuracy" else 1.0)
    else:
        stat = next((s for s in PARAM_STATS if key.startswith(f"{s}_")), None)
        if stat is None:
            label = MetricLabel(key.replace("_", " ").capitalize(), key.replace("_", " "))
        else:
            word, ylabel, squared, has_unit = PARAM_STATS[stat]
            param, unit = _param_and_unit(key[len(stat) + 1 :], space)
            unit = f"{unit}²" if unit and squared else unit
            shown = f"{ylabel} ({unit})" if unit and has_unit else ylabel
            label = MetricLabel(f"{word} of {param}", shown)
    if split:
        title = label.title
        if not title[:2].isupper():  # "Class accuracy" → "Test class accuracy"; "MAE" stays
            title = title[0].lower() + title[1:]
        label = MetricLabel(split + title, label.ylabel, label.scale)
    return label


def metric_order(keys: list[str], space: ParameterSpace | None = None) -> list[str]:
    """Keys in reading order: class metrics, regression losses, per-parameter metrics in the
    space's parameter order, then the rest alphabetically."""
    params = list(space.param_names) if space is not None else []

    def rank(key: str) -> tuple[int, int, str]:
        bare = re.sub(r"^(test|val|train)_", "", key)
        if bare in RUN_STATS:
            return 0, list(RUN_STATS).index(bare), key
        stat = next((s for s in PARAM_STATS if bare.startswith(f"{s}_")), None)
        if stat is not None:
            p = _param_and_unit(bare[len(stat) + 1 :], space)[0]
            return 1, (params.index(p) if p in params else len(params)), key
        return 2, 0, key

    return sorted(keys, key=rank)


def stage_key(name: str) -> tuple[str, int, str]:
    """Natural order of stage names: ``T2`` before ``T10``."""
    m = re.match(r"(\D*)(\d*)(.*)", name)
    assert m is not None  # the pattern matches every string
    prefix, number, rest = m.groups()
    return prefix, int(number) if number else -1, rest


def training_stages(run_dir: Path) -> list[Path]:
    """``checkpoints/<stage>`` folders that hold a ``history.json``, in stage order."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / "history.json").is_file()]
    return sorted(found, key=lambda p: stage_key(p.name))


def run_space(run_dir: Path) -> ParameterSpace | None:
    """The run's parameter space, from a training stage's ``spec.json``; None without one."""
    root = Path(run_dir) / "checkpoints"
    specs = sorted(root.glob("*/spec.json"), key=lambda p: stage_key(p.parent.name), reverse=True)
    for path in specs:
        spec = durable.read_json(path, default=None)
        if isinstance(spec, dict) and isinstance(spec.get("space"), dict):
            try:
                return ParameterSpace.from_dict(spec["space"])
            except (KeyError, TypeError, ValueError):
                continue
    return None


def phase_colors(n: int) -> list[Any]:
    """One colour per phase 0..n-1, light to dark along one colour map (same in every figure)."""
    cmap = pyplot().get_cmap("viridis")
    if n <= 1:
        return [cmap(0.0)]
    return [cmap(0.85 * k / (n - 1)) for k in range(n)]


def metrics_plot(
    phases: list[dict[str, Any]], path: Path, space: ParameterSpace | None = None
) -> Path:
    """Each test metric against the number of training samples, one panel per metric.

    Args:
        phases: ``metrics.json``'s ``phases`` (each with ``phase``, ``n_train``, ``test``).
        path: The PNG to write.
        space: The run's space (:func:`run_space`), for parameter names and units.

    Returns:
        ``path``.
    """
    plt = pyplot()
    phases = sorted(
        (p for p in phases if p.get("test")), key=lambda p: stage_key(str(p.get("phase", "")))
    )
    keys = metric_order(sorted({k for p in phases for k in p["test"]}), space)
    ncols = min(3, max(1, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.3 * nrows + 0.5), squeeze=False)
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys, strict=False):
        label = describe_metric(key, space)
        rows = [p for p in phases if key in p["test"]]
        xs = [p["n_train"] for p in rows]
        ys = [p["test"][key] * label.scale for p in rows]
        ax.plot(xs, ys, "-", color="0.6", zorder=1)
        colors = phase_colors(len(phases))
        for p, x, y in zip(rows, xs, ys, strict=True):
            ax.scatter([x], [y], color=colors[phases.index(p)], s=36, zorder=2)
            ax.annotate(
                str(p["phase"]),
                (x, y),
                textcoords="offset points",
                xytext=(4, 5),
                fontsize=8,
            )
        ax.set_title(label.title, fontsize=11)
        ax.set_ylabel(label.ylabel)
        ax.set_xlabel("training samples")
        ax.grid(alpha=0.3)
        ax.margins(x=0.12, y=0.15)
    fig.suptitle("Test-set metrics after each training phase", fontsize=13)
    return save(fig, path)
