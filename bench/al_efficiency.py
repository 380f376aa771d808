"""Data efficiency of active learning (paper Figs. 7–8): serial AL vs uniform baselines.

    python bench/al_efficiency.py --quick [--seeds 3] [--json]        # CPU, ~1 k AL samples
    python bench/al_efficiency.py [--json]                            # CPU, ~3 k AL samples
    python bench/al_efficiency.py --gpu [--json]                      # the paper's E1, one GPU
    python bench/al_efficiency.py --quick --arms al,topk,diverse      # policies beside Eqn (4)
    python bench/al_efficiency.py --quick --sizes 1,4                 # the trend: 1 k and 4 k
    python bench/al_efficiency.py --quick --time-to-accuracy [--target-accuracy A] [--pace P]
    python bench/al_efficiency.py --gpu --smoke --seeds 1             # GPU configs, shrunk

Per seed, on the diffraction app (``diffraction-tof``, E1, the paper's three classes):

* **AL arms**: the serial workflow — phase 0 uniform, then AL batches drawn by the arm's
  policy, each phase warm-started, epochs in the paper's 400:300:250:200 proportion.
  ``al`` (the reference): Eqn (4), ``uncertainty-mixture`` with ALBAND's ½·σ² + ½·entropy
  weights sharpened with ``weight_power`` γ = 4; ``al_paper_weights``: the same unsharpened
  (γ = 1, the paper's); ``topk``: ``uncertainty-topk`` (one sample next to each of the
  highest-weighted study points) and ``diverse``: ``uncertainty-diverse`` (uncertain and
  spread out, ``diversity_power`` 1), both with ``al``'s options; ``ensemble``: ``al``'s
  policy fed by a deep ensemble of 3 diffraction-cnn (the ``ensemble`` model: epistemic
  uncertainty, the members' disagreement; its test metrics are the members' mean, one
  network's score, so it compares with the single-network baselines);
* **uniform, phased** (control, ``uniform_phased``): the same workflow and schedule with the
  ``uniform`` policy, which separates what the policy's choice of samples buys from what
  phased, warm-started training buys;
* **baselines**: the baseline workflow (one uniform training set, one training) at several
  multiples of the AL run's final training-set size. Each baseline trains for at least as
  many sample-epochs as the whole AL campaign and at least phase 0's epochs, so a larger
  baseline is never starved of training.

Every run of a seed uses the same uniform validation set and the same large uniform test set.
For test accuracy, classification loss and MSE (Eqn 7) it reports each arm's value (median
over seeds), the baseline curve (median per size), the baseline size that reaches the arm's
value (interpolated in log N between measured sizes; ``null`` when even the largest baseline
falls short, ``ratio_at_least`` then names the largest multiple) and its ratio to the AL size;
``per_seed_ratio`` compares each seed's arm with that seed's own baseline curve. The
top-level ``ratio`` is ``al``'s accuracy ratio, ``ratio_by_policy`` every arm's.

Modes: ``--quick`` (CPU: 120 uniform samples per class, AL batches of 240, epochs 48/36/30/24,
500 test patterns per class; arms ``al,al_paper_weights,uniform_phased``; 51 min for 3 seeds
on 2 cores), the default (CPU: 400/800, 1,000 test per class), ``--gpu`` (the paper's E1,
Table II: 4,500 uniform per class (13,500), AL batches of 13,500, epochs 400/300/250/200,
2,250 validation and 2,250 test per class, a 4,500-per-class study set, chunks of 256, one
trainer rank (its GPU when the node has one), 512 samples per step as
``configs/diffraction-e1.yaml``; arm ``al`` only; needs a CUDA build of torch: install
without ``constraints.txt``, see README). ``--gpu`` cost: per seed the AL campaign trains
3.4·10⁷ sample-epochs and the 1×/2×/4× baselines 1.6·10⁸ (the JSON's
``planned_train_sample_epochs``), 6.0·10⁸ for 3 seeds: under an hour needs the trainer to
sustain ≈ 165 k samples/s (the paper's T3, 54,000 × 200 in 124 s on four A100s, is ≈ 87 k/s).
Measured on one H200 (``--gpu --sizes 0.05``, 2,700 AL samples): 136 k samples/s on the
10,800-sample baseline's epochs and ≈ 15 s of start-up per training task (process, CUDA and
NCCL), 305 s per seed, of it 98 s in epochs: the full mode projects to ≈ 80 min for 3 seeds.
``--smoke`` shrinks any mode's sets ~150× and its epochs ~100× (a check that every config
runs; its numbers mean nothing). Results go to
``bench/results/al_efficiency[-full|-gpu][-<arms>][-smoke].{json,png}``, the arms named
when they are not the mode's default (``--arms al,topk,diverse``: ``al_efficiency-al-topk-
diverse``), so a policy comparison and the default run keep their own files.

``--sizes F1,F2,...``: the campaign at each scale factor (uniform set, AL batches, validation
and study sets scaled; the test set per class and the epochs the same); per size under
``by_size``, ``ratio_by_size`` ({AL samples: accuracy ratio}), and the figure
``<name>_trend.png``: ratio vs AL samples per metric and arm, seeds as points. The top-level
keys are those of the first size.

``--time-to-accuracy``: per seed, on the same node plan, back to back in rotating order
(run directories ``time-<workflow>-<seed>``): the uniform ``baseline`` (one bulk simulation,
one training on the AL run's final size, as long in sample-epochs as the AL campaign), and
``al``'s campaign as the ``serial``, ``streaming`` (split ``auto``) and ``continuous``
workflows (first size). Each training records its test metrics (``metrics.json``) and its end
(``timeline.json``); a run's time to accuracy is the wall time from its first task's start (as
the makespan counts) to the end of the first training whose test accuracy reaches the target.
The target is ``--target-accuracy``, else 0.95 × the median final test accuracy of the serial
runs (below where they end, so the time says how soon a run gets there, not only whether).
``--pace P``: every simulated pattern of these runs takes at least P s (the workflows
benchmark's paced simulator), to give simulation a cost to overlap; default 0: the fast
simulator, where there is almost nothing to overlap. Reports ``time_to_accuracy`` ({arm:
{per_seed, median}}; ``null``: never reached), ``time_to_accuracy_speedup`` (baseline median /
arm median), the target, each run's curve, final accuracy and makespan, and
``al_time_to_accuracy.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import _common
import _runs
import matplotlib
from workflows import pacing

from streamal.runtime.timeline import TaskRecord, load_records

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CLASSES = 3
METRICS = {"accuracy": "higher", "class_loss": "lower", "mse": "lower"}
MODES = ("quick", "full", "gpu")
METRIC_LABELS = {"accuracy": "accuracy", "class_loss": "classification loss", "mse": "MSE (Eqn 7)"}


class Arm(NamedTuple):
    """A policy arm: the policy's entry-point name and its options (study size aside), and
    the model section when it is not the benchmark's ``diffraction-cnn``."""

    policy: str
    options: dict[str, Any] | None
    model: dict[str, Any] | None = None


#: ALBAND's ½·σ² + ½·entropy weights sharpened with γ = 4 (chosen in exploratory runs on
#: seed 0, see README); every uncertainty arm takes these options.
MIXTURE = {"entropy_weight": 0.5, "weight_power": 4.0}
#: Members of the ``ensemble`` arm's deep ensemble (each trains as long as the other arms'
#: one network: the arm costs this many trainings).
ENSEMBLE_MEMBERS = 3
ARMS = {
    "al": Arm("uncertainty-mixture", MIXTURE),
    "al_paper_weights": Arm("uncertainty-mixture", {**MIXTURE, "weight_power": 1.0}),
    "uniform_phased": Arm("uniform", None),
    "topk": Arm("uncertainty-topk", MIXTURE),
    "diverse": Arm("uncertainty-diverse", {**MIXTURE, "diversity_power": 1.0}),
    "ensemble": Arm(
        "uncertainty-mixture",
        MIXTURE,
        {"name": "ensemble", "options": {"base": "diffraction-cnn", "members": ENSEMBLE_MEMBERS}},
    ),
}
#: Arms run without ``--arms``: the CPU modes' three (their cost stays what it was); the GPU
#: mode only the reference (each arm more trains 3.4·10⁷ sample-epochs more per seed).
DEFAULT_ARMS = {
    "quick": ("al", "al_paper_weights", "uniform_phased"),
    "full": ("al", "al_paper_weights", "uniform_phased"),
    "gpu": ("al",),
}
#: The time-to-accuracy runs, in the order of seed 0.
TIME_ARMS = ("baseline", "serial", "streaming", "continuous")
#: Default target: this fraction of the serial AL runs' median final test accuracy.
TARGET_FRACTION = 0.95
#: ``--smoke`` divides the sets by this much, and the epochs by :data:`SMOKE_EPOCHS`.
SMOKE_SAMPLES = 150
SMOKE_EPOCHS = 100


def sizes_for(mode: str = "full", smoke: bool = False) -> dict[str, Any]:
    """The campaign of ``mode`` (``quick``, ``full``, ``gpu``), shrunk by ``smoke``.

    Keys: ``n0`` (phase-0 uniform samples per class), ``batch`` (each AL phase's batch),
    ``epochs`` (per phase), ``val``, ``test`` and ``study`` (per class), ``chunk`` (samples per
    simulation task), ``train_batch`` (samples per optimizer step) and, in the GPU mode,
    ``trainer_ranks``.
    """
    if mode not in MODES:
        raise ValueError(f"mode: one of {MODES}, got {mode!r}")
    if mode == "gpu":
        sizes = _paper_e1()
    else:
        n0, batch, val, test = (120, 240, 60, 500) if mode == "quick" else (400, 800, 200, 1000)
        sizes = {"n0": n0, "batch": batch, "epochs": [48, 36, 30, 24], "val": val, "test": test}
        sizes |= {"study": 200, "chunk": 64, "train_batch": 64}
    return smoke_sizes(sizes) if smoke else sizes


def _paper_e1() -> dict[str, Any]:
    """The paper's E1 (Table II, :data:`streamal.replay.paper.TABLE_II`) on one trainer rank."""
    from streamal.replay.paper import TABLE_II

    e1 = TABLE_II["E1"]
    return {
        "n0": e1["train0"] // CLASSES,
        "batch": e1["serial_batch"],
        "epochs": list(e1["epochs"]),
        "val": e1["val"] // CLASSES,
        "test": e1["test"] // CLASSES,
        "study": e1["study"] // CLASSES,
        "chunk": 256,
        "train_batch": 512,  # configs/diffraction-e1.yaml's global batch
        "trainer_ranks": 1,
    }


def smoke_sizes(sizes: dict[str, Any]) -> dict[str, Any]:
    """``sizes`` with the sets ~:data:`SMOKE_SAMPLES`× and the epochs ~:data:`SMOKE_EPOCHS`×
    smaller (at least 2 samples per set, 1 epoch): the same configs, cheap to run."""
    out = dict(sizes)
    for key in ("n0", "batch", "val", "test", "study"):
        out[key] = max(2, round(sizes[key] / SMOKE_SAMPLES))
    out["chunk"] = max(8, sizes["chunk"] // 16)
    out["epochs"] = [max(1, round(e / SMOKE_EPOCHS)) for e in sizes["epochs"]]
    return out


def scaled(sizes: dict[str, Any], factor: float) -> dict[str, Any]:
    """The campaign ``factor`` times as large: uniform set, AL batches, validation and study
    sets scaled; test set per class, epochs and trainer settings the same."""
    if factor <= 0:
        raise ValueError(f"size factor must be > 0, got {factor}")
    out = dict(sizes)
    for key in ("n0", "batch", "val", "study"):
        out[key] = max(1, round(sizes[key] * factor))
    return out


def al_train_size(sizes: dict[str, Any]) -> int:
    """Training samples of the AL campaign's last phase: phase 0's and every AL batch."""
    return CLASSES * sizes["n0"] + sizes["batch"] * (len(sizes["epochs"]) - 1)


def al_config(
    sizes: dict[str, Any], seed: int, arm: str = "al", workflow: str = "serial"
) -> dict[str, Any]:
    """The campaign of ``arm`` (a key of :data:`ARMS`) as ``workflow``."""
    n0 = sizes["n0"]
    cfg: dict[str, Any] = {
        "name": "bench-al",
        "seed": seed,
        "scheduler": {"retries": 1, "progress": False},
        "simulator": {
            "name": "diffraction-tof",
            "chunk_size": sizes["chunk"],
            "options": {"preset": "e1"},
        },
        "model": {"name": "diffraction-cnn"},
        "train": {"batch_size": sizes["train_batch"], "learning_rate": 5e-4},
        "workflow": {
            "name": workflow,
            "phases": [{"samples": n0, "epochs": sizes["epochs"][0]}]
            + [{"samples": sizes["batch"], "epochs": e} for e in sizes["epochs"][1:]],
            "options": {"val_fraction": sizes["val"] / n0, "test_fraction": sizes["test"] / n0},
        },
    }
    if "trainer_ranks" in sizes:
        cfg["site"] = {"trainer_ranks": sizes["trainer_ranks"]}
    policy, options, model = ARMS[arm]
    cfg["policy"] = {"name": policy}
    if model is not None:
        cfg["model"] = model
    if options is not None:
        cfg["policy"]["options"] = {"study_size": sizes["study"], **options}
    return cfg


def campaign_sample_epochs(sizes: dict[str, Any]) -> int:
    """Σ_k N_k · E_k of the AL campaign (training samples × epochs over all phases)."""
    n = CLASSES * sizes["n0"]
    total = 0
    for k, epochs in enumerate(sizes["epochs"]):
        n += sizes["batch"] if k else 0
        total += n * epochs
    return total


def baseline_epochs(n_train: int, sizes: dict[str, Any]) -> int:
    """Epochs of a baseline on ``n_train`` samples: at least the AL campaign's sample-epochs
    and at least phase 0's epochs."""
    return max(sizes["epochs"][0], math.ceil(campaign_sample_epochs(sizes) / n_train))


def baseline_config(per_class: int, seed: int, sizes: dict[str, Any]) -> dict[str, Any]:
    """The baseline workflow on ``per_class`` uniform samples per class, the AL runs' sets."""
    cfg = al_config(sizes, seed)
    cfg.pop("policy")
    cfg["workflow"] = {
        "name": "baseline",
        "phases": [{"samples": per_class, "epochs": baseline_epochs(CLASSES * per_class, sizes)}],
        "options": {
            "val_fraction": sizes["val"] / per_class,
            "test_fraction": sizes["test"] / per_class,
        },
    }
    return cfg


def baseline_per_class(multiple: float, n_al: int) -> int:
    """Uniform samples per class of the baseline ``multiple`` times the AL run's size."""
    return max(1, round(multiple * n_al / CLASSES))


def arm_trainings(arm: str) -> int:
    """Networks an arm trains side by side (an ensemble's members; else 1)."""
    model = ARMS[arm].model
    return int(model["options"]["members"]) if model and model["name"] == "ensemble" else 1


def planned_sample_epochs(sizes: dict[str, Any], arms: list[str], multiples: list[float]) -> int:
    """Training sample-epochs of one seed: the AL campaign of each of ``arms`` (an ensemble's
    counted once per member) and the baselines."""
    n_al = al_train_size(sizes)
    base = 0
    for mult in multiples:
        n = CLASSES * baseline_per_class(mult, n_al)
        base += n * baseline_epochs(n, sizes)
    return sum(arm_trainings(a) for a in arms) * campaign_sample_epochs(sizes) + base


def time_config(
    workflow: str, sizes: dict[str, Any], seed: int, pace_s: float = 0.0
) -> dict[str, Any]:
    """A time-to-accuracy run: ``baseline`` on the AL run's final size, or ``al``'s campaign
    as ``workflow``; with ``pace_s`` > 0 every pattern is paced to that many seconds."""
    if workflow == "baseline":
        cfg = baseline_config(baseline_per_class(1, al_train_size(sizes)), seed, sizes)
    else:
        cfg = al_config(sizes, seed, "al", workflow)
    if workflow == "streaming":
        cfg["workflow"]["options"]["split_fraction"] = "auto"
    if pace_s > 0:
        cfg["simulator"] = pacing(pace_s, sizes["chunk"])
    return cfg


def samples_to_match(
    sizes: list[int], values: list[float], target: float, better: str
) -> float | None:
    """Smallest training-set size whose baseline value reaches ``target`` (log-N interpolation).

    ``None`` when no measured size reaches it; the smallest size when the first already does
    (then the true size is at most that).
    """
    reached = [(v >= target) if better == "higher" else (v <= target) for v in values]
    for i, ok in enumerate(reached):
        if not ok:
            continue
        if i == 0:
            return float(sizes[0])
        v0, v1 = values[i - 1], values[i]
        frac = 1.0 if v1 == v0 else (target - v0) / (v1 - v0)
        return float(math.exp(math.log(sizes[i - 1]) + frac * math.log(sizes[i] / sizes[i - 1])))
    return None


def match(sizes: list[int], values: list[float], target: float, better: str, n: int) -> dict:
    """The baseline size that reaches ``target`` and its ratio to the AL size ``n``.

    Returns ``baseline_samples_to_match`` and ``ratio`` (``None`` unless the size lies between
    two measured baselines), ``ratio_at_least`` (no baseline reaches it: the largest
    multiple) and ``ratio_at_most`` (the smallest baseline already does: its multiple).
    """
    size = samples_to_match(sizes, values, target, better)
    below = size is not None and size == sizes[0]
    known = size is not None and not below
    return {
        "baseline_samples_to_match": round(size) if known else None,
        "ratio": round(size / n, 2) if known else None,
        "ratio_at_least": round(sizes[-1] / n, 2) if size is None else None,
        "ratio_at_most": round(sizes[0] / n, 2) if below else None,
    }


@dataclass
class SizeRuns:
    """What one campaign size measured, per seed (in seed order).

    Attributes:
        arms: Arm → metric → the final test value of each seed.
        baselines: Per seed, baseline training-set size → metric → test value.
        n_al: Per seed, the AL runs' final training-set size.
    """

    arms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    baselines: list[dict[int, dict[str, float]]] = field(default_factory=list)
    n_al: list[int] = field(default_factory=list)


def metric_summary(runs: SizeRuns, metric: str) -> dict[str, Any]:
    """One metric's baseline curve and, per arm, its value and ratios (median and per seed)."""
    better = METRICS[metric]
    sizes = sorted({s for seed in runs.baselines for s in seed})
    per_size = {s: [seed[s][metric] for seed in runs.baselines if s in seed] for s in sizes}
    curve = [statistics.median(per_size[s]) for s in sizes]
    n = int(statistics.median(runs.n_al))
    entry: dict[str, Any] = {
        "baseline": [round(v, 5) for v in curve],
        "baseline_per_seed": {s: [round(v, 5) for v in per_size[s]] for s in sizes},
    }
    for arm, values in runs.arms.items():
        value = statistics.median(values[metric])
        seeds = [
            _seed_match(seed, v, metric, n_al)
            for seed, v, n_al in zip(runs.baselines, values[metric], runs.n_al, strict=True)
        ]
        entry[arm] = {
            "median": round(value, 5),
            "per_seed": [round(v, 5) for v in values[metric]],
            **match(sizes, curve, value, better, n),
            "per_seed_ratio": [s["ratio"] for s in seeds],
            "per_seed_ratio_text": [ratio_text(s) for s in seeds],
        }
    return entry


def _seed_match(curve: dict[int, dict[str, float]], value: float, metric: str, n: int) -> dict:
    """:func:`match` of one seed's arm against that seed's own baseline curve."""
    sizes = sorted(curve)
    return match(sizes, [curve[s][metric] for s in sizes], value, METRICS[metric], n)


def size_result(runs: SizeRuns, sizes: dict[str, Any]) -> dict[str, Any]:
    """The JSON of one campaign size; its accuracy keys are ``al``'s."""
    per_metric = {m: metric_summary(runs, m) for m in METRICS}
    base_sizes = sorted({s for seed in runs.baselines for s in seed})
    acc = per_metric["accuracy"]["al"]
    return {
        "al_samples": int(statistics.median(runs.n_al)),
        "al_accuracy": acc["median"],
        "baseline_sizes": base_sizes,
        "baseline_epochs": [baseline_epochs(s, sizes) for s in base_sizes],
        "baseline_samples_to_match": acc["baseline_samples_to_match"],
        "ratio": acc["ratio"],
        "ratio_at_least": acc["ratio_at_least"],
        "ratio_by_policy": {a: per_metric["accuracy"][a]["ratio"] for a in runs.arms},
        "ratios": {m: {a: ratio_text(per_metric[m][a]) for a in runs.arms} for m in METRICS},
        "metrics": per_metric,
    }


def efficiency_result(by_size: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The top-level keys: the first size's result, ``ratio_by_size`` ({AL samples: ``al``'s
    accuracy ratio}) and, with several sizes, every size's result under ``by_size``."""
    first = next(iter(by_size.values()))
    out = {**first, "ratio_by_size": {r["al_samples"]: r["ratio"] for r in by_size.values()}}
    if len(by_size) > 1:
        out["by_size"] = by_size
    return out


def ratio_text(entry: dict[str, Any]) -> str:
    """``entry``'s ratio, or its bound (``>= x``, ``<= x``) when the baselines do not bracket it."""
    if entry["ratio"] is not None:
        return f"{entry['ratio']}"
    if entry["ratio_at_least"] is not None:
        return f">= {entry['ratio_at_least']}"
    return f"<= {entry['ratio_at_most']}"


def time_to_target(stages: list[tuple[float, float]], target: float) -> float | None:
    """Seconds until the first training whose test accuracy is ≥ ``target`` ended.

    Args:
        stages: ``(end_s, accuracy)`` of each training, in any order.
        target: Test accuracy to reach.

    Returns:
        The earliest ``end_s`` with ``accuracy >= target``; ``None`` if none reaches it.
    """
    reached = [end for end, accuracy in stages if accuracy >= target]
    return min(reached) if reached else None


def stage_curve(phases: list[dict], records: list[TaskRecord]) -> list[tuple[float, float]]:
    """``(end_s, test accuracy)`` of each training of a run, by end time.

    Args:
        phases: ``metrics.json``'s entries (``phase``: the training's stage, ``test``).
        records: The run's task records; ``end_s`` counts from the first task's start (as
            :func:`_runs.makespan`) to the end of the stage's finished attempt.
    """
    timed = [r for r in records if r.started and r.ended]
    if not timed:
        return []
    t0 = min(r.started for r in timed)
    ends: dict[str, float] = {}
    for r in timed:
        if r.status == "done":
            ends[r.stage] = max(ends.get(r.stage, r.ended), r.ended)
    return sorted(
        (ends[p["phase"]] - t0, p["test"]["accuracy"])
        for p in phases
        if p["phase"] in ends and "accuracy" in p.get("test", {})
    )


def accuracy_curve(run: Path) -> list[tuple[float, float]]:
    """:func:`stage_curve` of the run in ``run``."""
    phases = json.loads((run / "metrics.json").read_text())["phases"]
    return stage_curve(phases, load_records(run / "timeline.json"))


def median_time(times: list[float | None]) -> float | None:
    """Median over seeds, a seed that never reached the target counting as never (``None``)."""
    med = statistics.median([math.inf if t is None else t for t in times])
    return None if math.isinf(med) else med


def default_target(serial_final: list[float]) -> float:
    """:data:`TARGET_FRACTION` × the median final test accuracy of the serial AL runs."""
    return TARGET_FRACTION * statistics.median(serial_final)


def time_summary(curves: dict[str, list[list[tuple[float, float]]]], target: float) -> dict:
    """``time_to_accuracy`` ({arm: {per_seed, median}}) and ``time_to_accuracy_speedup``
    ({arm: baseline median / arm median}; ``None`` where either never reaches ``target``)."""
    times = {a: [time_to_target(c, target) for c in per_seed] for a, per_seed in curves.items()}
    medians = {a: median_time(t) for a, t in times.items()}
    base = medians.get("baseline")
    return {
        "time_to_accuracy": {
            a: {
                "per_seed": [_r(x) for x in t],
                "median": _r(medians[a]),
            }
            for a, t in times.items()
        },
        "time_to_accuracy_speedup": {
            a: round(base / m, 3) if base is not None and m else None for a, m in medians.items()
        },
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def run_size(
    sizes: dict[str, Any],
    tag: str,
    seeds: int,
    arms: list[str],
    multiples: list[float],
    root: Path,
) -> SizeRuns:
    """Run (or read back) every arm and baseline of one campaign size; ``tag`` names its runs."""
    runs = SizeRuns(arms={a: {m: [] for m in METRICS} for a in arms})
    for seed in range(seeds):
        for arm in arms:
            run = _runs.run_or_reuse(al_config(sizes, seed, arm), root / f"{arm}{tag}-{seed}")
            final = _runs.final_metrics(run)
            for m in METRICS:
                runs.arms[arm][m].append(final["test"][m])
            if arm == "al":
                runs.n_al.append(final["n_train"])
        curve = {}
        for mult in multiples:
            per_class = baseline_per_class(mult, runs.n_al[-1])
            cfg = baseline_config(per_class, seed, sizes)
            run = _runs.run_or_reuse(cfg, root / f"base{tag}-{seed}-{per_class}")
            test = _runs.final_metrics(run)["test"]
            curve[CLASSES * per_class] = {m: test[m] for m in METRICS}
        runs.baselines.append(curve)
    return runs


def run_time_arms(
    sizes: dict[str, Any], seeds: int, pace_s: float, root: Path
) -> dict[str, list[Path]]:
    """The time-to-accuracy runs of every seed, back to back in rotating order."""
    out: dict[str, list[Path]] = {a: [] for a in TIME_ARMS}
    for seed in range(seeds):
        k = seed % len(TIME_ARMS)
        for wf in TIME_ARMS[k:] + TIME_ARMS[:k]:
            cfg = time_config(wf, sizes, seed, pace_s)
            out[wf].append(_runs.run_or_reuse(cfg, root / f"time-{wf}-{seed}"))
    return out


def time_result(runs: dict[str, list[Path]], target: float | None) -> dict[str, Any]:
    """The time-to-accuracy keys of the JSON, from the runs of :func:`run_time_arms`."""
    curves = {a: [accuracy_curve(r) for r in paths] for a, paths in runs.items()}
    final = {a: [_runs.final_metrics(r)["test"]["accuracy"] for r in p] for a, p in runs.items()}
    rule = "given" if target is not None else f"{TARGET_FRACTION} x median final serial accuracy"
    target = default_target(final["serial"]) if target is None else target
    return {
        "time_to_accuracy_target": round(target, 5),
        "time_to_accuracy_target_rule": rule,
        **time_summary(curves, target),
        "time_arms_final_accuracy": {a: [round(v, 5) for v in f] for a, f in final.items()},
        "time_arms_makespan_s": {
            a: [round(_runs.makespan(r), 2) for r in p] for a, p in runs.items()
        },
        "time_arms_curves": {
            a: [[[round(t, 2), round(acc, 5)] for t, acc in c] for c in per_seed]
            for a, per_seed in curves.items()
        },
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="CPU, ~1 k AL samples")
    mode.add_argument("--gpu", action="store_true", help="the paper's E1 sizes and epochs")
    p.add_argument("--smoke", action="store_true", help="the mode's configs, ~100x smaller")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--multiples", default="1,2,4", help="baseline sizes / AL size")
    p.add_argument("--arms", help=f"AL arms to run, of {list(ARMS)} (default: the mode's)")
    p.add_argument("--sizes", default="1", help="campaign scale factors, e.g. 1,4")
    p.add_argument("--time-to-accuracy", action="store_true", help="also time the workflows")
    p.add_argument("--target-accuracy", type=float, help="default: 0.95 x serial AL's median")
    p.add_argument("--pace", type=float, default=0.0, help="s per pattern of the timed runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--results-dir", help="write the JSON and PNGs here instead of bench/results")
    p.add_argument(
        "--keep",
        help="keep run directories under this folder; finished runs of the same config found "
        "there are read, not run again",
    )
    return p


def _numbers(p: argparse.ArgumentParser, option: str, text: str) -> list[float]:
    """The comma-separated numbers > 0 of ``option``, or a usage error naming it."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        p.error(f"{option}: comma-separated numbers > 0, got {text!r}")
    if min(values) <= 0:
        p.error(f"{option}: numbers > 0, got {text!r}")
    return values


def result_name(mode: str, smoke: bool, arms: list[str] | None = None) -> str:
    """``bench/results/`` name of a mode's JSON and figure (``al_efficiency`` for --quick);
    arms other than the mode's default name themselves (``al_efficiency-al-topk``)."""
    suffix = {"quick": "", "full": "-full", "gpu": "-gpu"}[mode]
    if arms is not None and tuple(arms) != DEFAULT_ARMS[mode]:
        suffix += "-" + "-".join(arms)
    return f"al_efficiency{suffix}" + ("-smoke" if smoke else "")


def main() -> None:
    p = _parser()
    args = p.parse_args()
    mode = "gpu" if args.gpu else "quick" if args.quick else "full"
    names = args.arms.split(",") if args.arms else list(DEFAULT_ARMS[mode])
    if "al" not in names or not set(names) <= set(ARMS):
        p.error(f"--arms: a comma-separated subset of {list(ARMS)} that includes al")
    multiples = _numbers(p, "--multiples", args.multiples)
    factors = _numbers(p, "--sizes", args.sizes)
    base = sizes_for(mode, args.smoke)
    if args.results_dir:
        _common.RESULTS = Path(args.results_dir)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-al-"))
    by_size = {}
    for factor in factors:
        sizes = scaled(base, factor)
        tag = "" if factor == 1 else f"-x{factor:g}"
        runs = run_size(sizes, tag, args.seeds, names, multiples, root)
        by_size[f"{factor:g}"] = {"scale": factor, **size_result(runs, sizes)}
    planned = sum(planned_sample_epochs(scaled(base, f), names, multiples) for f in factors)
    result = {
        "seeds": args.seeds,
        "mode": mode,
        "quick": args.quick,
        "smoke": args.smoke,
        "arms": {a: ARMS[a]._asdict() for a in names},
        "al_epochs": base["epochs"],
        "test_per_class": base["test"],
        "sizes": base,
        "planned_train_sample_epochs": args.seeds * planned,
        **efficiency_result(by_size),
    }
    if args.time_to_accuracy:
        timed = run_time_arms(scaled(base, factors[0]), args.seeds, args.pace, root)
        result |= {**time_result(timed, args.target_accuracy), "pace_s": args.pace}
    result["run_dirs"] = str(root)
    name = result_name(mode, args.smoke, names)
    _plot(result, name)
    if len(by_size) > 1:
        _plot_trend(result, f"{name}_trend")
    if args.time_to_accuracy:
        _plot_time(result, name.replace("al_efficiency", "al_time_to_accuracy"))
    _common.emit(name, result, args.json)


ARM_STYLES = {
    "al": ("tab:red", "*", "serial AL, Eqn (4), γ = 4"),
    "al_paper_weights": ("tab:purple", "^", "serial AL, Eqn (4), γ = 1"),
    "uniform_phased": ("tab:blue", "s", "serial, uniform policy"),
    "topk": ("tab:green", "D", "serial AL, top-k uncertainty"),
    "diverse": ("tab:orange", "P", "serial AL, uncertainty + diversity"),
    "ensemble": ("tab:brown", "X", "serial AL, Eqn (4), ensemble's epistemic uncertainty"),
}


def _plot(result: dict[str, Any], name: str) -> None:
    """Test metrics vs training samples: the baseline curve and each arm at the AL size."""
    base_sizes, n = result["baseline_sizes"], result["al_samples"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (m, entry) in zip(axes, result["metrics"].items(), strict=True):
        per = [entry["baseline_per_seed"][s] for s in base_sizes]
        lo = [entry["baseline"][i] - min(v) for i, v in enumerate(per)]
        hi = [max(v) - entry["baseline"][i] for i, v in enumerate(per)]
        ax.errorbar(
            base_sizes,
            entry["baseline"],
            yerr=[lo, hi],
            fmt="ko-",
            capsize=3,
            label="baseline (uniform, one training)",
        )
        band = entry["al"]["per_seed"]
        ax.axhspan(min(band), max(band), color="tab:red", alpha=0.2)
        for arm, (color, marker, label) in ARM_STYLES.items():
            if arm in entry:
                size = 14 if arm == "al" else 7
                ax.plot([n], [entry[arm]["median"]], marker, color=color, ms=size, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("training samples")
        ax.set_ylabel(f"test {METRIC_LABELS[m]}")
        title = f"test {METRIC_LABELS[m]}: AL matches {ratio_text(entry['al'])}× samples"
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"AL data efficiency, {result['seeds']} seeds (band: AL seed range)")
    _save(fig, name)


def _ratio_point(text: str) -> tuple[float, str]:
    """A ratio's value and kind (``=``, ``>=``, ``<=``) from :func:`ratio_text`."""
    for kind in (">=", "<="):
        if text.startswith(kind):
            return float(text[len(kind) :]), kind
    return float(text), "="


BOUND_MARKERS = {">=": "^", "<=": "v", "=": "o"}


def _plot_trend(result: dict[str, Any], name: str) -> None:
    """Ratio vs AL samples per metric: a line per arm (medians), seeds as small points;
    open triangles are bounds (▲ at least, ▼ at most)."""
    sizes = list(result["by_size"].values())
    xs = [s["al_samples"] for s in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    arms = [a for a in ARM_STYLES if a in sizes[0]["metrics"]["accuracy"]]
    for ax, m in zip(axes, METRICS, strict=True):
        for k, arm in enumerate(arms):
            shift = SEED_SHIFT ** (k - (len(arms) - 1) / 2)  # each arm's seeds beside the others'
            _trend_arm(ax, arm, xs, [s["metrics"][m][arm] for s in sizes], shift)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("AL training samples (final phase)")
        ax.set_ylabel("baseline samples to match / AL samples (×)")
        ax.set_title(f"test {METRIC_LABELS[m]}", fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"AL data efficiency vs campaign size, {result['seeds']} seeds "
        "(small points: seeds, each against its own baselines; open triangles: bounds)"
    )
    _save(fig, name)


#: Factor between neighbouring arms' seed points on the log size axis of the trend figure.
SEED_SHIFT = 1.04


def _trend_arm(
    ax: Any, arm: str, xs: list[int], entries: list[dict[str, Any]], shift: float = 1.0
) -> None:
    """One arm's median ratio per size (a line) and its seeds' ratios (small points, at
    ``shift`` times the size, so that arms' seeds stay apart)."""
    color, _, label = ARM_STYLES[arm]
    med = [_ratio_point(ratio_text(e)) for e in entries]
    ax.plot(xs, [v for v, _ in med], "-", color=color, label=label)
    for x, (v, kind), entry in zip(xs, med, entries, strict=True):
        fill = color if kind == "=" else "none"
        ax.plot([x], [v], BOUND_MARKERS[kind], color=color, mfc=fill)
        for text in entry["per_seed_ratio_text"]:
            sv, skind = _ratio_point(text)
            marker = "." if skind == "=" else BOUND_MARKERS[skind]
            ax.plot([x * shift], [sv], marker, color=color, ms=5, alpha=0.8, mfc="none")


TIME_STYLES = {
    "baseline": ("black", "uniform baseline (bulk)"),
    "serial": ("tab:red", "serial AL"),
    "streaming": ("tab:blue", "streaming AL"),
    "continuous": ("tab:green", "continuous AL"),
}


def _plot_time(result: dict[str, Any], name: str) -> None:
    """Test accuracy after each training vs wall time, per arm and seed; the target line."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    tta = result["time_to_accuracy"]
    for arm, curves in result["time_arms_curves"].items():
        color, label = TIME_STYLES[arm]
        med = tta[arm]["median"]
        label += f": {med:.0f} s" if med is not None else ": not reached"
        for i, curve in enumerate(curves):
            t = [p[0] for p in curve]
            acc = [p[1] for p in curve]
            ax.plot(t, acc, "o-", color=color, lw=1, ms=3, alpha=0.7, label=None if i else label)
    target = result["time_to_accuracy_target"]
    ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target:.3f}")
    ax.set_xlabel("wall time from the first task's start (s)")
    ax.set_ylabel("test accuracy after each training")
    ax.legend(fontsize=7)
    speed = result["time_to_accuracy_speedup"]
    parts = [f"{a} {speed[a]:.2f}×" for a in ("serial", "streaming", "continuous") if speed[a]]
    ax.set_title(
        f"Time to test accuracy {target:.3f}, {result['seeds']} seeds\nspeed-up over the baseline: "
        + (", ".join(parts) or "n/a"),
        fontsize=9,
    )
    _save(fig, name)


def _save(fig: Any, name: str) -> None:
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / f"{name}.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
