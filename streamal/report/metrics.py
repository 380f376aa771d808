"""Test metrics of each training phase against the number of training samples."""

from __future__ import annotations

from pathlib import Path


def metrics_plot(phases: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for p in phases for k in p.get("test", {})})
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        xs = [p["n_train"] for p in phases if key in p.get("test", {})]
        ys = [p["test"][key] for p in phases if key in p.get("test", {})]
        ax.plot(xs, ys, "o-")
        for p, x, yv in zip(phases, xs, ys, strict=False):
            ax.annotate(p["phase"], (x, yv), fontsize=7)
        ax.set_title(f"test {key}", fontsize=9)
        ax.set_xlabel("training samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
