"""Serial vs streaming vs continuous: makespan, accuracy and overlap on the same resources.

    python bench/workflows.py --quick [--seeds 3] [--json]      # time, tiny sets (< 15 min)
    python bench/workflows.py [--json]                          # time, the paper's regime
    python bench/workflows.py --accuracy [--split F] [--json]   # accuracy at real sizes
    python bench/workflows.py --quick --pace P [--json]         # time at another S/T ratio

Every workflow runs the diffraction app with the same seed, sizes and node plan; the three run
back to back per seed, in rotating order. Reports the median and per-seed makespans, the
ratios (median and per seed), the test metrics of every phase's training per seed
(``accuracy_by_phase``), each phase's simulation/training time ratio S_k/T_k (serial runs)
and the overlap efficiency (busy core-seconds / available core-seconds) of each pool.
Phase 0's training, validation and test sets are the same work in every arm of a seed: their
task-seconds per run (``phase0_work``) show the machine's speed, and a run more than 15 % off
its seed's median is listed in ``machine_speed_flags`` (its makespan is not comparable with
the other arms').

Time (cryspy, ~1.3 s per pattern on one simulator core): ``--quick`` keeps tiny sets; the
default is the paper's regime with >= 50 training patterns per phase, epochs calibrated so that
S_k ~ T_k (:func:`calibrated_epochs`; ``--calibrate RUN_DIR`` recomputes them from a run's
fitted costs). Accuracy (``--accuracy``): the fast simulator at real sizes, one 1,500-pattern
test set per seed shared by every arm (the same seed draws the same test set); streaming gets
the split the time regime measured (``--split``), and the simulator is paced
(``bench/_paced.py``) to the time regime's simulation/training cost ratio, so that the
continuous workflow's feeder and retrainings see the data they would see there.
``--quick --pace P``: the tiny sets with the fast simulator paced to P s per pattern (a
sleep: the simulator takes no CPU from the trainer), to measure where the workflows' ratios
go as the simulation/training balance moves.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import tempfile
from pathlib import Path

import _common
import _runs
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WORKFLOWS = ("serial", "streaming", "continuous")


#: Paper regime on one cryspy core: phase 0 has 17 training patterns per class (51), each
#: AL batch 51 patterns; the study set 8 per class. Epochs from :func:`calibrated_epochs`
#: with the costs fitted on a quick streaming run on this machine (``--calibrate RUN_DIR``;
#: that run was measured beside another job: recalibrate on an idle machine).
PAPER_REGIME = {"n0": 17, "batch": 51, "study": 8, "chunk": 3, "epochs": [431, 293, 199]}

#: Accuracy at real sizes (fast simulator): 120 training patterns per class in phase 0
#: (360), AL batches of 360, the al_efficiency benchmark's epochs (the paper's 400:300:250
#: scaled); 500 test patterns per class (1,500), the same for every arm of a seed.
ACCURACY_REGIME = {"n0": 120, "batch": 360, "study": 60, "chunk": 24, "epochs": [48, 36, 30]}
ACCURACY_TEST_PER_CLASS = 500


def calibrated_epochs(costs: dict, n0: int, batch: int, study: int, n_classes: int = 3) -> list:
    """Epochs per phase so that training takes as long as the phase's simulation (Table III).

    With the replay's cost model fitted on a run (``streamal replay RUN_DIR --json``:
    ``sim_sample_s`` per pattern, ``policy_sample_factor``, ``train_start_s``,
    ``train_epoch_s``, ``train_sample_epoch_s``), phase k ≥ 1 simulates ``batch`` policy
    patterns, S_k = batch · sim_sample_s · policy_sample_factor, and trains on
    N_k = 3·n0 + k·batch patterns: T_k = start + E_k · (epoch + N_k · sample_epoch), solved
    for T_k = S_k. Phase 0 keeps the paper's S0 ≈ 2.5 T0 (S0: train, validation, test and
    study sets, uniform).
    """
    sim, factor = costs["sim_sample_s"], costs.get("policy_sample_factor", 1.0)
    start, epoch, per = (
        costs["train_start_s"],
        costs["train_epoch_s"],
        costs["train_sample_epoch_s"],
    )
    n_train0 = n_classes * n0
    s0 = sim * (n_train0 + 2 * n_classes * round(n0 * 0.5) + n_classes * study)
    out = [max(1, round((s0 / 2.5 - start) / (epoch + n_train0 * per)))]
    for k in (1, 2):
        s_k = batch * sim * factor
        out.append(max(1, round((s_k - start) / (epoch + (n_train0 + k * batch) * per))))
    return out


def base_config(quick: bool, simulator: str = "diffraction-cryspy", accuracy: bool = False) -> dict:
    """The campaign every arm runs (3 phases; ``--quick``: tiny sets).

    ``diffraction-cryspy`` (~1 s per pattern on one core, GSAS-II-like cost): ``--quick``
    keeps 3 training patterns per class, AL batches of 9, epochs 200/150/100 (12.5 min for
    3 seeds and 3 workflows); the default is :data:`PAPER_REGIME`. ``diffraction-tof``
    (~0.5 ms per pattern): simulation is almost free and there is next to nothing to overlap;
    with ``accuracy`` it runs :data:`ACCURACY_REGIME` (paced, see the module docstring).
    """
    options: dict = {}
    split: dict = {}
    if accuracy:
        r = ACCURACY_REGIME
        n0, batch, study, chunk, epochs = (
            r[k] for k in ("n0", "batch", "study", "chunk", "epochs")
        )
        split = {"test_fraction": ACCURACY_TEST_PER_CLASS / n0}
    elif simulator == "diffraction-cryspy":
        if quick:
            n0, batch, study, chunk = 3, 9, 3, 2
            epochs = [200, 150, 100]
        else:
            r = PAPER_REGIME
            n0, batch, study, chunk, epochs = (
                r[k] for k in ("n0", "batch", "study", "chunk", "epochs")
            )
    else:
        n0, batch, study, chunk = (120, 240, 60, 32) if quick else (400, 800, 200, 64)
        epochs = [16, 12, 10] if quick else [40, 30, 25]
    return {
        "name": "bench-workflows",
        "scheduler": {"retries": 1, "progress": False},
        "simulator": {
            "name": simulator,
            "chunk_size": chunk,
            "options": {"preset": "e1", **options},
        },
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
            "options": split,
        },
    }


def pacing(seconds_per_pattern: float, chunk: int, unpaced_patterns: int = 0) -> dict:
    """Simulator section of the fast simulator paced to ``seconds_per_pattern``.

    A paced pattern sleeps instead of computing: the simulator pool then takes no CPU from
    the trainer, as on a node whose simulator cores are not the trainer's.
    """
    return {
        "name": "_paced:PacedTofSimulator",
        "chunk_size": chunk,
        "options": {
            "preset": "e1",
            "seconds_per_pattern": seconds_per_pattern,
            "unpaced_patterns": unpaced_patterns,
        },
    }


def accuracy_pacing(seconds_per_pattern: float) -> dict:
    """The accuracy regime's paced simulator: phase 0's sets unpaced (no training waits on
    them, so their cost changes no training's data)."""
    r = ACCURACY_REGIME
    phase0 = 3 * (r["n0"] + round(r["n0"] * 0.5) + ACCURACY_TEST_PER_CLASS + r["study"])
    return pacing(seconds_per_pattern, r["chunk"], phase0)


def config_for(
    workflow: str,
    seed: int,
    quick: bool,
    simulator: str,
    *,
    accuracy: bool = False,
    split: float | None = None,
    pace_s: float = 0.0,
) -> dict:
    cfg = copy.deepcopy(base_config(quick, simulator, accuracy))
    cfg["seed"] = seed
    cfg["workflow"]["name"] = workflow
    if pace_s > 0:
        chunk = cfg["simulator"]["chunk_size"]
        cfg["simulator"] = accuracy_pacing(pace_s) if accuracy else pacing(pace_s, chunk)
    if workflow == "streaming":
        f = "auto" if split is None else split
        cfg["workflow"]["options"] = {**cfg["workflow"]["options"], "split_fraction": f}
    return cfg


def phase_metrics(run: Path) -> list[dict]:
    """Every training's test metrics (class loss, accuracy, MSE) and size, in order."""
    phases = json.loads((run / "metrics.json").read_text())["phases"]
    return [
        {
            "phase": m["phase"],
            "n_train": m["n_train"],
            "epochs": m["epochs"],
            **{
                k: round(m["test"][k], 5)
                for k in ("class_loss", "accuracy", "mse")
                if k in m["test"]
            },
        }
        for m in phases
    ]


def s_over_t(run: Path) -> dict[str, float]:
    """S_k / T_k per phase of a serial run (Table III's balance): simulation span / training."""
    from streamal.runtime.timeline import load_records

    recs = [r for r in load_records(run / "timeline.json") if r.started and r.ended]
    span = {}
    for r in recs:
        a, b = span.get(r.stage, (r.started, r.ended))
        span[r.stage] = (min(a, r.started), max(b, r.ended))
    out = {}
    for k in range(10):
        s, t = span.get(f"S{k}"), span.get(f"T{k}")
        if s and t:
            out[f"S{k}/T{k}"] = round((s[1] - s[0]) / (t[1] - t[0]), 3)
    return out


#: A run whose phase-0 simulation (identical in every arm of a seed) took this much more or
#: less than its seed's median ran on a machine of another speed: its makespan is flagged.
PHASE0_TOLERANCE = 0.15


def phase0_work(run: Path) -> dict[str, float]:
    """Phase 0's seconds in a run: ``S0_task_s``, the task-seconds of its training,
    validation and test sets (the same patterns in every arm of a seed, simulated before any
    training with nothing beside them), and ``T0_s``, its training's span (for information:
    streaming and continuous simulate the study set beside it, serial before it)."""
    from streamal.runtime.timeline import load_records

    recs = [r for r in load_records(run / "timeline.json") if r.started and r.ended]
    sets = [r for r in recs if r.stage == "S0" and (r.info or {}).get("split") != "study"]
    t0 = [r for r in recs if r.stage == "T0"]
    return {
        "S0_task_s": round(sum(r.duration for r in sets), 2),
        "T0_s": round(max(r.ended for r in t0) - min(r.started for r in t0), 2) if t0 else 0.0,
    }


def machine_speed_flags(
    work: dict[str, list[dict]], tolerance: float = PHASE0_TOLERANCE, min_seconds: float = 30.0
) -> list:
    """Runs whose phase-0 sets took more than ``tolerance`` longer or shorter than the median
    of their seed's arms.

    ``work`` maps each workflow to its :func:`phase0_work` per seed. The phase-0 sets are the
    same work under the same conditions in every arm of a seed, so a run that took much
    longer (or shorter) for them ran on a slower (faster) machine, and its makespan is not
    comparable with its seed's other arms. A seed whose median is under ``min_seconds`` is
    not judged (such sets are mostly task start-up: the fast simulator's).
    """
    flags = []
    seeds = len(next(iter(work.values())))
    for seed in range(seeds):
        values = {w: work[w][seed]["S0_task_s"] for w in work}
        med = statistics.median(values.values())
        if med < min_seconds:
            continue
        for w, v in values.items():
            off = v / med - 1 if med > 0 else 0.0
            if abs(off) > tolerance:
                flags.append(
                    {"run": f"{w}-{seed}", "work": "S0_task_s", "s": v, "off": round(off, 3)}
                )
    return flags


def test_set_digest(run: Path) -> str:
    """A digest of the run's test set (params and classes): equal for every arm of a seed."""
    from streamal.data.store import SampleStore

    with SampleStore(run / "store.h5", mode="r") as store:
        test = store.select(split="test")
        h = hashlib.sha256(test.classes().tobytes() + test.params().tobytes())
    return h.hexdigest()[:16]


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "max": round(max(values), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="time with tiny sets (< 15 min)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--keep",
        help="keep run directories under this folder; finished runs of the same config found "
        "there are read, not run again (measure seeds in several sittings)",
    )
    p.add_argument(
        "--simulator",
        default="diffraction-cryspy",
        choices=["diffraction-tof", "diffraction-cryspy"],
        help="diffraction-cryspy: the paper's regime; diffraction-tof: simulation ~free",
    )
    p.add_argument(
        "--accuracy",
        action="store_true",
        help="accuracy at real sizes: fast simulator, 1,500 test patterns shared per seed",
    )
    p.add_argument(
        "--split",
        type=float,
        default=None,
        help="streaming's split fraction (default: auto; with --accuracy give the time "
        "regime's measured split, its JSON's split_fractions)",
    )
    p.add_argument(
        "--pace",
        type=float,
        default=0.0,
        help="seconds per pattern of the fast simulator, paced (sleeping: no CPU taken "
        "from the trainer); with --accuracy: per AL pattern, the time regime's S/T ratio; "
        "without: the time regime's sizes at another S/T ratio",
    )
    p.add_argument(
        "--calibrate",
        metavar="RUN_DIR",
        help="print the paper regime's epochs calibrated from RUN_DIR's fitted costs and exit",
    )
    args = p.parse_args()
    if args.calibrate:
        from streamal.replay.fit import fit_costs, load_run

        costs = fit_costs(load_run(args.calibrate)).to_json()
        r = PAPER_REGIME
        epochs = calibrated_epochs(costs, r["n0"], r["batch"], r["study"])
        print(
            json.dumps({"epochs": epochs, "costs": {k: costs[k] for k in costs if k != "sources"}})
        )
        return
    # the sizes: the accuracy regime's, else those of --simulator (paced: run by the fast one)
    simulator = "diffraction-tof" if args.accuracy else args.simulator
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-wf-"))
    per: dict[str, dict[str, list]] = {
        w: {
            "makespan": [],
            "mse": [],
            "acc": [],
            "sim_eff": [],
            "train_eff": [],
            "phases": [],
            "phase0": [],
        }
        for w in WORKFLOWS
    }
    balance, splits, digests = [], [], []
    for seed in range(args.seeds):
        order = WORKFLOWS[seed % 3 :] + WORKFLOWS[: seed % 3]
        seed_digests = set()
        for wf in order:
            cfg = config_for(
                wf,
                seed,
                args.quick,
                simulator,
                accuracy=args.accuracy,
                split=args.split,
                pace_s=args.pace,
            )
            run = _runs.run_or_reuse(cfg, root / f"{wf}-{seed}")
            final = _runs.final_metrics(run)
            eff = _runs.overlap_efficiency(run)
            per[wf]["makespan"].append(_runs.makespan(run))
            per[wf]["mse"].append(final["test"].get("mse"))
            per[wf]["acc"].append(final["test"].get("accuracy"))
            per[wf]["sim_eff"].append(eff["sim"])
            per[wf]["train_eff"].append(eff["train"])
            per[wf]["phases"].append(phase_metrics(run))
            per[wf]["phase0"].append(phase0_work(run))
            seed_digests.add(test_set_digest(run))
            if wf == "serial":
                balance.append(s_over_t(run))
            if wf == "streaming":
                splits.append([m.get("split_fraction") for m in per_phase_info(run)])
        digests.append(sorted(seed_digests))
    med = {w: statistics.median(per[w]["makespan"]) for w in WORKFLOWS}
    phase0 = {w: per[w]["phase0"] for w in WORKFLOWS}
    ratio = {
        (a, b): [x / y for x, y in zip(per[a]["makespan"], per[b]["makespan"], strict=True)]
        for a, b in (("streaming", "serial"), ("continuous", "serial"), ("continuous", "streaming"))
    }
    result = {
        "seeds": args.seeds,
        "quick": args.quick,
        "simulator": "diffraction-tof (paced)" if args.pace > 0 else simulator,
        "mode": "accuracy" if args.accuracy else ("quick" if args.quick else "paper-regime"),
        "paced": args.pace > 0,
        **{f"{w}_s": round(med[w], 2) for w in WORKFLOWS},
        "streaming_over_serial": round(med["streaming"] / med["serial"], 3),
        "continuous_over_serial": round(med["continuous"] / med["serial"], 3),
        "continuous_over_streaming": round(med["continuous"] / med["streaming"], 3),
        "per_seed_ratios": {
            f"{a}_over_{b}": [round(x, 3) for x in v] for (a, b), v in ratio.items()
        },
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
        "makespan_spread_s": {w: _spread(per[w]["makespan"]) for w in WORKFLOWS},
        "accuracy_by_phase": {w: per[w]["phases"] for w in WORKFLOWS},
        "phase0_work": phase0,
        "machine_speed_flags": machine_speed_flags(phase0),
        "s_over_t_serial": balance,
        "split_fractions": splits,
        "test_set_digest_per_seed": digests,
        "test_patterns": len_test(root / "serial-0"),
        "split": args.split,
        "pace_s": args.pace,
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
        f"continuous/serial {result['continuous_over_serial']:.2f}, "
        f"continuous/streaming {result['continuous_over_streaming']:.2f}"
    )
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    name = (
        "workflows"
        + {"quick": "", "paper-regime": "-paper", "accuracy": "-accuracy"}[result["mode"]]
    )
    if args.pace > 0 and not args.accuracy:
        name = "workflows-paced"
    elif simulator == "diffraction-tof" and not args.accuracy:
        name = "workflows-tof"
    fig.savefig(_common.RESULTS / f"{name}.png", dpi=120)
    plt.close(fig)
    if args.accuracy:
        plot_phases(result, _common.RESULTS / f"{name}-phases.png")
    _common.emit(name, result, args.json)


COLOURS = {"serial": "tab:blue", "streaming": "tab:orange", "continuous": "tab:green"}
PHASE_METRICS = {
    "class_loss": "test class loss (cross-entropy)",
    "accuracy": "test accuracy",
    "mse": "test MSE (scaled parameters)",
}


def plot_phases(result: dict, path: Path) -> None:
    """Test metrics after every training vs its training-set size (the paper's Figs. 9–10):
    a line per workflow and seed; markers at each training."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (metric, label) in zip(axes, PHASE_METRICS.items(), strict=True):
        for wf, seeds in result["accuracy_by_phase"].items():
            for s, phases in enumerate(seeds):
                xs = [p["n_train"] for p in phases if metric in p]
                ys = [p[metric] for p in phases if metric in p]
                ax.plot(
                    xs,
                    ys,
                    "o-",
                    color=COLOURS[wf],
                    alpha=0.75,
                    ms=4,
                    lw=1,
                    label=wf if s == 0 else None,
                )
        ax.set_xlabel("training patterns of the training")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(title="workflow (a line per seed)", fontsize=8)
    fig.suptitle(
        f"Test metrics after each training, {result['seeds']} seeds, "
        f"{result['test_patterns']} test patterns per seed (shared by the workflows)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def per_phase_info(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["phases"]


def len_test(run: Path) -> int | None:
    """Test patterns of a run (every arm of a seed has the same set)."""
    if not (run / "store.h5").exists():
        return None
    from streamal.data.store import SampleStore

    with SampleStore(run / "store.h5", mode="r") as store:
        return len(store.select(split="test"))


if __name__ == "__main__":
    main()
