"""Serial vs streaming vs continuous: makespan, accuracy and overlap on the same resources.

    python bench/workflows.py [--quick] [--seeds 3] [--json]

Every workflow runs the diffraction app with the same seed, sizes (CPU-scaled Table II
schedule) and node plan; the three run back to back per seed, in rotating order. Reports the
median makespan of each, the ratios to serial, the final test MSE/accuracy per seed and the
overlap efficiency (busy core-seconds / available core-seconds) of each pool.
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

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WORKFLOWS = ("serial", "streaming", "continuous")


def base_config(quick: bool, simulator: str = "diffraction-cryspy") -> dict:
    """CPU-scaled version of the paper's E1 schedule (4 phases).

    ``diffraction-cryspy`` (default; ~1 s per pattern on one core, GSAS-II-like cost) with
    the paper's epochs (400/300/250/200) reproduces the paper's balance: simulating a sample
    costs about as much as training on it for all epochs of a phase, so S0 ≈ 2.5 × T0 and
    S_k ≈ T_k as in Table III. On one simulator core that allows only tiny sets in minutes;
    ``--quick`` also drops the last phase (3 phases, epochs 200/150/100) to stay < 15 min.
    ``diffraction-tof`` (~0.5 ms per pattern) is the opposite regime: simulation is almost
    free and there is next to nothing to overlap.
    """
    if simulator == "diffraction-cryspy":
        n0, batch, study, chunk = (3, 9, 3, 2) if quick else (8, 24, 8, 3)
        epochs = [200, 150, 100] if quick else [400, 300, 250, 200]
    else:
        n0, batch, study, chunk = (120, 240, 60, 32) if quick else (400, 800, 200, 64)
        epochs = [16, 12, 10, 8] if quick else [40, 30, 25, 20]
    return {
        "name": "bench-workflows",
        "scheduler": {"retries": 1, "progress": False},
        "simulator": {"name": simulator, "chunk_size": chunk, "options": {"preset": "e1"}},
        "model": {"name": "diffraction-cnn"},
        "policy": {
            "name": "uncertainty-mixture",
            "options": {"study_size": study, "entropy_weight": 0.5},
        },
        "train": {"batch_size": 64, "learning_rate": 5e-4},
        "workflow": {
            "name": "serial",
            "phases": [{"samples": n0, "epochs": epochs[0]}]
            + [{"samples": batch, "epochs": e} for e in epochs[1:]],
        },
    }


def config_for(workflow: str, seed: int, quick: bool, simulator: str) -> dict:
    cfg = copy.deepcopy(base_config(quick, simulator))
    cfg["seed"] = seed
    cfg["workflow"]["name"] = workflow
    if workflow == "streaming":
        cfg["workflow"]["options"] = {"split_fraction": "auto"}
    return cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", help="keep run directories under this folder")
    p.add_argument(
        "--simulator",
        default="diffraction-cryspy",
        choices=["diffraction-tof", "diffraction-cryspy"],
        help="diffraction-cryspy: the paper's regime; diffraction-tof: simulation ~free",
    )
    args = p.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-wf-"))
    per: dict[str, dict[str, list]] = {
        w: {"makespan": [], "mse": [], "acc": [], "sim_eff": [], "train_eff": []} for w in WORKFLOWS
    }
    for seed in range(args.seeds):
        order = WORKFLOWS[seed % 3 :] + WORKFLOWS[: seed % 3]
        for wf in order:
            run = _runs.run_config(
                config_for(wf, seed, args.quick, args.simulator), root / f"{wf}-{seed}"
            )
            final = _runs.final_metrics(run)
            eff = _runs.overlap_efficiency(run)
            per[wf]["makespan"].append(_runs.makespan(run))
            per[wf]["mse"].append(final["test"].get("mse"))
            per[wf]["acc"].append(final["test"].get("accuracy"))
            per[wf]["sim_eff"].append(eff["sim"])
            per[wf]["train_eff"].append(eff["train"])
    med = {w: statistics.median(per[w]["makespan"]) for w in WORKFLOWS}
    result = {
        "seeds": args.seeds,
        "quick": args.quick,
        "simulator": args.simulator,
        **{f"{w}_s": round(med[w], 2) for w in WORKFLOWS},
        "streaming_over_serial": round(med["streaming"] / med["serial"], 3),
        "continuous_over_serial": round(med["continuous"] / med["serial"], 3),
        "continuous_over_streaming": round(med["continuous"] / med["streaming"], 3),
        "overlap_efficiency": {
            w: {
                "sim": round(statistics.median(per[w]["sim_eff"]), 3),
                "train": round(statistics.median(per[w]["train_eff"]), 3),
            }
            for w in WORKFLOWS
        },
        "test_mse": {w: [round(x, 5) for x in per[w]["mse"]] for w in WORKFLOWS},
        "test_accuracy": {w: [round(x, 4) for x in per[w]["acc"]] for w in WORKFLOWS},
        "makespan_s": {w: [round(x, 2) for x in per[w]["makespan"]] for w in WORKFLOWS},
        "run_dirs": str(root),
    }
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, key, label in zip(
        axes,
        ("makespan", "mse", "sim_eff"),
        ("makespan (s)", "final test MSE", "sim pool busy fraction"),
        strict=True,
    ):
        ax.boxplot([per[w][key] for w in WORKFLOWS], tick_labels=list(WORKFLOWS))
        ax.set_title(label)
    fig.suptitle(
        f"{args.seeds} seeds; streaming/serial {result['streaming_over_serial']:.2f}, "
        f"continuous/serial {result['continuous_over_serial']:.2f}"
    )
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.simulator == "diffraction-cryspy" else "-tof"
    fig.savefig(_common.RESULTS / f"workflows{suffix}.png", dpi=120)
    _common.emit(f"workflows{suffix}", result, args.json)


if __name__ == "__main__":
    main()
