"""Architecture search: plain vs +prediction vs +prediction+similarity vs +transfer.

    python bench/nas.py [--quick] [--seeds 3] [--json] [--keep DIR]

Every variant is a real ``python -m streamal run`` of the ``nas`` workflow with the same seed,
candidate budget, search strategy (NSGA-II over [error %, FLOPs]) and node plan; the
variants run back to back per seed in rotating order. Reported per variant (median over
seeds): search wall time, epochs trained, training FLOPs (FLOPs per forward pass x epochs,
summed), hypervolume (fixed reference, see the workflow); and for the best variant (the
fastest one keeping >= 0.95 of plain's hypervolume, else the one with the highest
hypervolume) the fraction of epochs saved, the wall-time speedup and the hypervolume ratio.

Training settings: batch 64, Adam lr 1e-3 (smooth curves; batch 32 at 3e-3 jumps by ±3 %
between validations, which makes every single-value fitness a coin toss); the engine fits
the paper's ``a - b^(c-x)`` and ``mmf4`` (lowest residual wins) with t = 0.5, because these
curves start flat at chance level, which ``a - b^(c-x)`` cannot follow (its fit then sticks
to the upper bound and never settles).

Prediction-engine quality is measured offline on the plain runs, whose candidates all train
to e_pred: the engine is replayed on their curves and its top-x% set is compared with the
top-x% by the fitness reached at e_pred (sensitivity, specificity, epochs saved). Kendall's
tau compares each candidate's score after a short training (``--short-epochs``) with its
fitness at e_pred, without transfer (plain) and with transfer (an extra variant that trains
every candidate to e_pred with weights transferred from the most similar trained one; with
``--quick`` it runs on the first seed only).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import _common
import _runs
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

VARIANTS = ("plain", "predict", "predict_similar", "predict_similar_transfer")
EXTRA = ("transfer",)  # trained to e_pred with transfer: Kendall tau only
TOP_X = (0.2, 0.3)


def base_config(quick: bool) -> dict[str, Any]:
    """The shared search settings (quick: fewer candidates and epochs)."""
    budget, epochs, population = (20, 10, 8) if quick else (60, 20, 12)
    return {
        "name": "bench-nas",
        "site": {"name": "local"},
        "scheduler": {"retries": 0, "progress": False},
        "workflow": {
            "name": "nas",
            "phases": [{"samples": budget, "epochs": epochs}],
            "options": {
                "strategy": "nsga2",
                "population": population,
                "channels": 8,
                "batch_size": 64,
                "learning_rate": 1e-3,
                "epochs_per_iteration": 0.5,
                "objective": "flops",
                "prediction": {
                    "enabled": False,
                    "n_predictions": 3,
                    "tolerance": 0.5,
                    "curves": ["exp_base", "mmf4"],
                    "poll_s": 0.05,
                },
                "similarity": {"enabled": False, "threshold": 2, "mode": "skip"},
                "transfer": {"enabled": False, "method": "lcs"},
            },
        },
    }


def config_for(variant: str, seed: int, quick: bool) -> dict[str, Any]:
    """The config of one variant and seed."""
    cfg = copy.deepcopy(base_config(quick))
    cfg["seed"] = seed
    opts = cfg["workflow"]["options"]
    opts["prediction"]["enabled"] = variant.startswith("predict")
    opts["similarity"]["enabled"] = "similar" in variant
    opts["transfer"]["enabled"] = "transfer" in variant
    return cfg


def _read(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = json.loads((run / "summary.json").read_text())
    rows = json.loads((run / "candidates.json").read_text())
    return summary, rows


def engine_quality(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> dict[str, Any]:
    """Replay PENGUIN on full curves: top-x sensitivity/specificity and epochs saved."""
    from streamal_nas.prediction import analyze_records, prediction_config

    opts = cfg["workflow"]["options"]
    e_pred = float(cfg["workflow"]["phases"][0]["epochs"])
    pc = prediction_config(
        {
            "n_predictions": opts["prediction"]["n_predictions"],
            "tolerance": opts["prediction"]["tolerance"],
            "curves": opts["prediction"]["curves"],
            "epochs_per_iteration": opts["epochs_per_iteration"],
            "e_pred": e_pred,
        }
    )
    curves = {r["id"]: r["curve"] for r in rows if r["curve"]}
    decisions = analyze_records(curves, pc)
    ids = sorted(curves)
    final = np.array([curves[i][-1][1] for i in ids])
    pred = np.array([decisions[i].fitness if i in decisions else curves[i][-1][1] for i in ids])
    stop = np.array([decisions[i].stop_epoch if i in decisions else e_pred for i in ids])
    out: dict[str, Any] = {"epochs_saved_fraction": float(1 - stop.sum() / (e_pred * len(ids)))}
    for x in TOP_X:
        k = max(1, round(x * len(ids)))
        true_top = set(np.argsort(-final)[:k].tolist())
        pred_top = set(np.argsort(-pred)[:k].tolist())
        rest = len(ids) - k
        out[f"top{int(x * 100)}"] = {
            "sensitivity": len(true_top & pred_top) / k,
            "specificity": (rest - len(pred_top - true_top)) / rest if rest else 1.0,
        }
    return out


def short_vs_long_tau(rows: list[dict[str, Any]], short_epochs: float) -> float | None:
    """Kendall tau of fitness after ``short_epochs`` vs the last (longest-trained) fitness."""
    pairs = []
    for r in rows:
        curve = r["curve"]
        early = [f for e, f in curve if e <= short_epochs]
        if early and curve[-1][0] > short_epochs:
            pairs.append((early[-1], curve[-1][1]))
    if len(pairs) < 3:
        return None
    tau = kendalltau(*zip(*pairs, strict=True)).statistic
    return None if np.isnan(tau) else float(tau)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--short-epochs", type=float, default=1.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", help="keep run directories under this folder")
    args = p.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-nas-"))
    names = VARIANTS + EXTRA
    per: dict[str, dict[str, list[float]]] = {
        v: {
            "wall_s": [],
            "epochs": [],
            "flops": [],
            "hypervolume": [],
            "skipped": [],
            "stopped_early": [],
        }
        for v in names
    }
    quality, taus = [], {"without_transfer": [], "with_transfer": []}
    for seed in range(args.seeds):
        order = names[seed % len(names) :] + names[: seed % len(names)]
        for variant in order:
            if variant in EXTRA and args.quick and seed > 0:
                continue  # quick: the transfer-to-e_pred variant (tau only) on seed 0 only
            cfg = config_for(variant, seed, args.quick)
            run = _runs.run_config(cfg, root / f"{variant}-{seed}")
            summary, rows = _read(run)
            per[variant]["wall_s"].append(summary["wall_s"])
            per[variant]["epochs"].append(summary["epochs_trained"])
            per[variant]["flops"].append(summary["flops_trained"])
            per[variant]["hypervolume"].append(summary["hypervolume"])
            per[variant]["skipped"].append(summary["skipped"])
            per[variant]["stopped_early"].append(summary["stopped_early"])
            if variant == "plain":
                quality.append(engine_quality(rows, cfg))
                taus["without_transfer"].append(short_vs_long_tau(rows, args.short_epochs))
            if variant == "transfer":
                taus["with_transfer"].append(short_vs_long_tau(rows, args.short_epochs))
    med = {v: {k: statistics.median(x) for k, x in per[v].items()} for v in names}
    plain = med["plain"]
    ratios = {
        v: {
            "epochs_saved_fraction": 1 - med[v]["epochs"] / plain["epochs"],
            "wall_speedup": plain["wall_s"] / med[v]["wall_s"],
            "hypervolume_ratio": med[v]["hypervolume"] / plain["hypervolume"],
        }
        for v in VARIANTS[1:]
    }
    keeping = [v for v in ratios if ratios[v]["hypervolume_ratio"] >= 0.95]
    best = (
        max(keeping, key=lambda v: ratios[v]["wall_speedup"])
        if keeping
        else max(ratios, key=lambda v: ratios[v]["hypervolume_ratio"])
    )
    result: dict[str, Any] = {
        "seeds": args.seeds,
        "quick": args.quick,
        "budget": base_config(args.quick)["workflow"]["phases"][0],
        **{v: {k: round(med[v][k], 4 if k == "hypervolume" else 2) for k in med[v]} for v in names},
        "ratios_vs_plain": {v: {k: round(x, 3) for k, x in r.items()} for v, r in ratios.items()},
        "engine_offline": {
            "epochs_saved_fraction": round(
                statistics.median(q["epochs_saved_fraction"] for q in quality), 3
            ),
            **{
                f"top{int(x * 100)}": {
                    m: round(statistics.median(q[f"top{int(x * 100)}"][m] for q in quality), 3)
                    for m in ("sensitivity", "specificity")
                }
                for x in TOP_X
            },
        },
        "kendall_tau_short_vs_long": {
            k: [None if t is None else round(t, 3) for t in ts] for k, ts in taus.items()
        },
        "short_epochs": args.short_epochs,
        "per_seed": {v: {k: [round(x, 4) for x in xs] for k, xs in per[v].items()} for v in names},
        "run_dirs": str(root),
        "best_variant": best,
        "epochs_saved_fraction": round(ratios[best]["epochs_saved_fraction"], 3),
        "wall_speedup": round(ratios[best]["wall_speedup"], 3),
        "hypervolume_ratio": round(ratios[best]["hypervolume_ratio"], 3),
    }
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for ax, key, label in zip(
        axes,
        ("wall_s", "epochs", "flops", "hypervolume"),
        ("search wall time (s)", "epochs trained", "training FLOPs", "hypervolume"),
        strict=True,
    ):
        ax.boxplot(
            [per[v][key] for v in VARIANTS], tick_labels=["plain", "+pred", "+p+sim", "+p+s+tr"]
        )
        ax.set_title(label)
    fig.suptitle(
        f"NAS on digits, {args.seeds} seeds; best {best}: "
        f"{result['wall_speedup']:.2f}x wall, {result['epochs_saved_fraction']:.0%} epochs "
        f"saved, HV ratio {result['hypervolume_ratio']:.3f}"
    )
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / "nas.png", dpi=120)
    _common.emit("nas", result, args.json)


if __name__ == "__main__":
    main()
