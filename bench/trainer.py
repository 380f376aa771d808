"""DDP trainer: epoch time with 1 vs 2 ranks, pinned vs unpinned; accuracy on uniform E1 data.

    python bench/trainer.py [--quick] [--train-per-class N] [--epochs E] [--json]

Simulates a uniform E1-range dataset with the diffraction simulator into a sample store, then
trains the multitask CNN through :func:`streamal.train.ddp.train` (the same code the train
pool runs) in three layouts, side by side: 1 rank pinned to one core, 2 ranks pinned to one
core each, 2 ranks unpinned (no affinity, torch's default threads). Epoch times are medians
over epochs after the first. The 2-rank pinned run's best checkpoint is scored on the test
split: classification accuracy and mean absolute error of the lattice lengths (Å).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _common
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from streamal.cluster.plan import RankPlacement  # noqa: E402
from streamal.data.label import BatchLabel  # noqa: E402
from streamal.data.store import SampleStore  # noqa: E402
from streamal.policy import UniformPolicy  # noqa: E402
from streamal.train.ddp import train  # noqa: E402
from streamal.train.spec import TrainSpec  # noqa: E402
from streamal_diffraction.simulator import TofDiffractionSimulator  # noqa: E402


def make_store(path: Path, per_class: dict[str, int], seed: int) -> dict[str, list[int]]:
    """Uniform E1 samples per split, simulated in blocks; returns the rows of each split."""
    sim = TofDiffractionSimulator(preset="e1")
    policy = UniformPolicy(sim.space)
    rows: dict[str, list[int]] = {}
    with SampleStore(
        path,
        param_names=sim.space.param_names,
        class_names=sim.space.class_names,
        input_shape=sim.output_shape,
    ) as store:
        for i, (split, n) in enumerate(per_class.items()):
            classes, params = policy.sample(n, np.random.default_rng([seed, i]))
            start = len(store)
            for s in range(0, len(classes), 1024):
                block = slice(s, s + 1024)
                store.append(
                    key=f"{split}/{s}",
                    classes=classes[block],
                    params=params[block],
                    inputs=sim.simulate(classes[block], params[block]),
                    label=BatchLabel(0, split, "uniform"),
                )
            rows[split] = list(range(start, len(store)))
    return rows


def run(
    path: Path,
    rows: dict,
    out: Path,
    ranks: list[RankPlacement],
    epochs: int,
    batch: int,
    lr: float,
    test: bool,
) -> dict:
    sim = TofDiffractionSimulator(preset="e1")
    spec = TrainSpec(
        store=str(path),
        train_rows=rows["train"],
        val_rows=rows["val"],
        test_rows=rows["test"] if test else [],
        model="diffraction-cnn",
        model_options={},
        space=sim.space.to_dict(),
        input_shape=sim.output_shape,
        out_dir=str(out),
        epochs=epochs,
        ranks=tuple(ranks),
        batch_size=batch,
        learning_rate=lr,
        seed=0,
    )
    t0 = time.time()
    result = train(spec)
    result["wall_s"] = time.time() - t0
    return result


def epoch_time(result: dict) -> float:
    times = [h["train_s"] for h in result["history"]]
    return statistics.median(times[1:] if len(times) > 1 else times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--train-per-class", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--timing-epochs", type=int, default=4)
    p.add_argument(
        "--timing-patterns",
        type=int,
        default=1200,
        help="training patterns of the three timing runs",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    n_train = args.train_per_class or (400 if args.quick else 6000)
    n_eval = max(100, n_train // 6)
    epochs = args.epochs or (6 if args.quick else 40)
    tmp = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    t0 = time.time()
    rows = make_store(tmp / "store.h5", {"train": n_train, "val": n_eval, "test": n_eval}, 0)
    simulate_s = time.time() - t0
    layouts = {
        "1rank": [RankPlacement(0, (0,), None)],
        "2ranks": [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)],
        "unpinned": [RankPlacement(0, (), None), RankPlacement(1, (), None)],
    }
    subset = {**rows, "train": rows["train"][: args.timing_patterns]}
    timing = {
        name: run(
            tmp / "store.h5",
            subset,
            tmp / name,
            ranks,
            args.timing_epochs,
            args.batch_size,
            args.lr,
            test=False,
        )
        for name, ranks in layouts.items()
    }
    full = run(
        tmp / "store.h5",
        rows,
        tmp / "accuracy",
        layouts["2ranks"],
        epochs,
        args.batch_size,
        args.lr,
        test=True,
    )
    test = full["test"]
    lengths = [v for k, v in test.items() if k.startswith("mae_") and k.endswith("_A")]
    result = {
        "quick": args.quick,
        "train_patterns": len(rows["train"]),
        "timing_patterns": len(subset["train"]),
        "simulate_s": round(simulate_s, 1),
        "epoch_s_1rank": round(epoch_time(timing["1rank"]), 3),
        "epoch_s_2ranks": round(epoch_time(timing["2ranks"]), 3),
        "epoch_s_unpinned": round(epoch_time(timing["unpinned"]), 3),
        "speedup_2_vs_1_ranks": round(
            epoch_time(timing["1rank"]) / epoch_time(timing["2ranks"]), 3
        ),
        "pinned_vs_unpinned": round(
            epoch_time(timing["unpinned"]) / epoch_time(timing["2ranks"]), 3
        ),
        "epochs": epochs,
        "train_wall_s": round(full["wall_s"], 1),
        "test_accuracy": round(test["accuracy"], 4),
        "mae_length_A": round(float(np.mean(lengths)), 5),
        "test_metrics": {k: round(v, 5) for k, v in test.items()},
    }
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.bar(list(layouts), [result[f"epoch_s_{k}"] for k in layouts])
    a1.set_ylabel("s per epoch")
    a1.set_title(f"{len(rows['train'])} training patterns")
    hist = full["history"]
    a2.plot([h["epoch"] for h in hist], [h["val_accuracy"] for h in hist], label="val accuracy")
    a2b = a2.twinx()
    a2b.semilogy([h["epoch"] for h in hist], [h["val_mse"] for h in hist], "r-", label="val MSE")
    a2.set_xlabel("epoch")
    a2.set_title(f"test acc {result['test_accuracy']}, MAE(a,c) {result['mae_length_A']} Å")
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / "trainer.png", dpi=120)
    _common.emit("trainer", result, args.json)


if __name__ == "__main__":
    main()
