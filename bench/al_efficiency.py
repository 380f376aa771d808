"""Data efficiency of active learning (paper Figs. 7–8): AL vs uniform baselines.

    python bench/al_efficiency.py [--quick] [--json]

Runs the serial AL workflow once per seed and the baseline workflow (uniform sampling) at
several training-set sizes, all with the same validation/test sizes, model and epochs per
sample budget. Reports the AL workflow's final test accuracy and training-set size, the
smallest baseline size that reaches that accuracy (linear interpolation between measured
sizes, ``null`` when even the largest baseline falls short) and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path

import _common
import _runs
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from workflows import base_config  # noqa: E402


def baseline_config(per_class: int, seed: int, quick: bool, val_per_class: int) -> dict:
    cfg = copy.deepcopy(base_config(quick, "diffraction-tof"))
    cfg["seed"] = seed
    epochs = cfg["workflow"]["phases"][0]["epochs"]
    frac = val_per_class / per_class
    cfg["workflow"] = {
        "name": "baseline",
        "phases": [{"samples": per_class, "epochs": epochs}],
        "options": {"val_fraction": frac, "test_fraction": frac},
    }
    cfg.pop("policy")
    return cfg


def samples_to_match(sizes: list[int], accuracy: list[float], target: float) -> float | None:
    """Smallest training-set size whose (interpolated) accuracy reaches ``target``."""
    for i, acc in enumerate(accuracy):
        if acc >= target:
            if i == 0:
                return float(sizes[0])
            a0, a1 = accuracy[i - 1], acc
            return float(np.interp(target, [a0, a1], [sizes[i - 1], sizes[i]]))
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--multiples", default="1,2,4,6", help="baseline sizes / AL size")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-al-"))
    al_acc, al_n = [], []
    base_points: dict[int, list[float]] = {}
    for seed in range(args.seeds):
        cfg = copy.deepcopy(base_config(args.quick, "diffraction-tof"))
        cfg["seed"] = seed
        run = _runs.run_config(cfg, root / f"al-{seed}")
        final = _runs.final_metrics(run)
        al_acc.append(final["test"]["accuracy"])
        al_n.append(final["n_train"])
        n_classes = 3
        val_per_class = cfg["workflow"]["phases"][0]["samples"] // 2
        for m in (float(x) for x in args.multiples.split(",")):
            per_class = max(1, round(m * final["n_train"] / n_classes))
            brun = _runs.run_config(
                baseline_config(per_class, seed, args.quick, val_per_class),
                root / f"base-{seed}-{per_class}",
            )
            acc = _runs.final_metrics(brun)["test"]["accuracy"]
            base_points.setdefault(per_class * n_classes, []).append(acc)
    sizes = sorted(base_points)
    base_acc = [statistics.median(base_points[s]) for s in sizes]
    target, n_al = statistics.median(al_acc), statistics.median(al_n)
    match = samples_to_match(sizes, base_acc, target)
    result = {
        "seeds": args.seeds,
        "al_samples": int(n_al),
        "al_accuracy": round(target, 4),
        "baseline_sizes": sizes,
        "baseline_accuracy": [round(a, 4) for a in base_acc],
        "baseline_samples_to_match": None if match is None else round(match),
        "ratio": None if match is None else round(match / n_al, 3),
        "run_dirs": str(root),
    }
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(sizes, base_acc, "o-", label="baseline (uniform)")
    ax.plot([n_al], [target], "r*", markersize=14, label="serial AL (final phase)")
    ax.set_xlabel("training samples")
    ax.set_ylabel("test accuracy")
    ax.legend()
    ax.set_title(f"AL data efficiency: ratio {result['ratio']}")
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / "al_efficiency.png", dpi=120)
    _common.emit("al_efficiency", result, args.json)


if __name__ == "__main__":
    main()
