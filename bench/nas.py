"""Architecture search: plain vs +prediction vs +prediction+similarity vs +transfer.

    python bench/nas.py [--dataset digits|diffraction] [--quick | --smoke] [--seeds 3]
                        [--counts C1,C2] [--json] [--keep DIR]

Every variant is a real ``python -m streamal run`` of the ``nas`` workflow with the same seed,
candidate budget, search strategy (NSGA-II over [error, FLOPs]) and node plan; the
variants run back to back per seed in rotating order. Reported per variant (median over
seeds): search wall time, epochs trained, training FLOPs (FLOPs per forward pass x epochs,
summed), hypervolume (fixed reference, see the workflow); and for the best variant (the
fastest one keeping >= 0.95 of plain's hypervolume, else the one with the highest
hypervolume; on diffraction both the engine's and the measured one, see below) the fraction
of epochs and of training FLOPs saved, the wall-time speedup and the hypervolume ratio.
Finished runs kept by an earlier ``--keep DIR`` with the same config are read, not rerun.

``--dataset digits`` (default; results ``bench/results/nas.json``): scikit-learn's 8x8
digits, fitness validation accuracy. Training settings: batch 64, Adam lr 1e-3 (smooth
curves; batch 32 at 3e-3 jumps by ±3 % between validations, which makes every single-value
fitness a coin toss); the engine fits the paper's ``a - b^(c-x)`` and ``mmf4`` (lowest
residual wins) with t = 0.5, because these curves start flat at chance level, which
``a - b^(c-x)`` cannot follow (its fit then sticks to the upper bound and never settles).

``--dataset diffraction`` (``bench/results/nas_diffraction.json``), A4NN's scientific case:
diffraction-tof E1 patterns simulated at the start of each run (dataset ``simulate``), with
Poisson noise at several peak counts (dataset ``counts``, the analogue of XFEL beam
intensity: :data:`COUNTS`; ``--quick``: the lowest only; ``--counts``: others), searched as
``configs/nas-diffraction-quickstart.yaml`` does (1-D multitask genomes, fitness ``score`` =
validation class loss + MSE, minimised, with a fixed hypervolume reference
:data:`SCORE_REFERENCE`). Ratios to plain are taken per seed and
count level, then the median. Each run's best candidate (one per variant) and the reference
ALBAND CNN (:func:`streamal_nas.reference.alband_options`) are then trained on the run's
training split for the search's full budget and scored on its test split
(``bench/_nas_reference.py``); ``beats_reference`` says whether a found network has fewer
FLOPs, at least the reference's test accuracy and at most its test MSE.
Three hypervolumes per run: ``hypervolume``, the search's own (the engine's predicted fitness
for a candidate it stopped: optimistic when the predictions are), ``hypervolume_measured``
(the validation fitness each candidate had where it stopped: pessimistic, it trained less)
and ``hypervolume_retrained`` (every member of the run's Pareto front trained for the full
budget and scored on the test split: neither bias). A variant is judged by the retrained one.

Prediction-engine quality is measured offline on the plain runs, whose candidates all train
to e_pred: the engine is replayed (with the run's direction and variant) on their curves
and its top-x% set is compared with the top-x% by the fitness reached at e_pred
(sensitivity, specificity, epochs saved). Kendall's tau compares each candidate's score
after a short training (``--short-epochs``) with its fitness at e_pred, without transfer
(plain) and with transfer (an extra variant that trains every candidate to e_pred with
weights transferred from the most similar trained one; with ``--quick`` it runs on the
first seed only, and not at all on diffraction).

``--smoke``: one seed, one count level, 4 candidates of 2 epochs: checks the plumbing only.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
from collections.abc import Mapping, Sequence
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
METRICS = ("wall_s", "epochs", "flops", "hypervolume", "skipped", "stopped_early")
COUNTS = (1e3, 1e4, 1e5)
"""Peak counts of the diffraction patterns' Poisson noise (``--quick``: the first and last)."""
SCORE_REFERENCE = 1.5
"""Hypervolume reference of the diffraction fitness ``score`` (chance: ln 3 + ~0.1 MSE)."""


def _sizes(
    quick: bool, smoke: bool, full: tuple[int, ...], short: tuple[int, ...]
) -> tuple[int, ...]:
    """``(budget, epochs, population, ...)`` of a run size (smoke: 4 candidates, 2 epochs)."""
    return (4, 2, 2, *full[3:]) if smoke else (short if quick else full)


def base_config(quick: bool, dataset: str = "digits", smoke: bool = False) -> dict[str, Any]:
    """The shared search settings (quick: fewer candidates and epochs; smoke: a handful)."""
    if dataset == "diffraction":
        return _diffraction_config(quick, smoke)
    budget, epochs, population = _sizes(quick, smoke, (60, 20, 12), (20, 10, 8))
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


def _diffraction_config(quick: bool, smoke: bool) -> dict[str, Any]:
    """configs/nas-diffraction-quickstart.yaml's search (quick/smoke: smaller)."""
    budget, epochs, population, per_class = _sizes(quick, smoke, (24, 12, 8, 96), (8, 10, 4, 64))
    if smoke:
        per_class = 16
    return {
        "name": "bench-nas-diffraction",
        "site": {"name": "local"},
        "scheduler": {"retries": 0, "progress": False},
        "simulator": {"name": "diffraction-tof", "chunk_size": 24, "options": {"preset": "e1"}},
        "workflow": {
            "name": "nas",
            "phases": [{"samples": budget, "epochs": epochs}],
            "options": {
                "strategy": "nsga2",
                "population": population,
                "phases": 3,
                "nodes": 3,
                "channels": 8,
                "batch_size": 16,
                "learning_rate": 2e-3,
                "epochs_per_iteration": 0.5,
                "network": {
                    "stem_kernels": [9, 5, 3],
                    "strides": [2, 1],
                    "pool": 4,
                    "pool_last": True,
                },
                "dataset": {
                    "name": "simulate",
                    "samples_per_class": per_class,
                    "val_fraction": 0.5,
                    "test_fraction": 0.5,
                    "encoder": {"name": "diffraction-cnn", "options": {"background": "snip"}},
                    "counts": None,
                },
                "fitness": "score",
                "fitness_reference": SCORE_REFERENCE,
                "objective": "flops",
                "prediction": {
                    "enabled": False,
                    "n_predictions": 3,
                    # % of the mean predicted score; 2.0 stopped curves still flat at chance
                    # (engine replayed on full curves: 55 % of epochs saved, mean |error| 0.20;
                    # 1.0: 28 %, 0.088)
                    "tolerance": 1.0,
                    "poll_s": 0.05,
                },
                "similarity": {"enabled": False, "threshold": 2, "mode": "skip"},
                "transfer": {"enabled": False, "method": "lcs"},
            },
        },
    }


def config_for(
    variant: str,
    seed: int,
    quick: bool,
    dataset: str = "digits",
    counts: float | None = None,
    smoke: bool = False,
) -> dict[str, Any]:
    """The config of one variant, seed and (diffraction) count level."""
    cfg = copy.deepcopy(base_config(quick, dataset, smoke))
    cfg["seed"] = seed
    opts = cfg["workflow"]["options"]
    opts["prediction"]["enabled"] = variant.startswith("predict")
    opts["similarity"]["enabled"] = "similar" in variant
    opts["transfer"]["enabled"] = "transfer" in variant
    if dataset == "diffraction":
        opts["dataset"]["counts"] = counts
    return cfg


def count_levels(
    quick: bool, smoke: bool, chosen: Sequence[float] | None = None
) -> tuple[float, ...]:
    """The diffraction count levels run: ``chosen`` if given, else all of :data:`COUNTS`
    (quick: the lowest, the noisiest; smoke: the highest)."""
    if chosen:
        return tuple(chosen)
    if smoke:
        return COUNTS[-1:]
    return COUNTS[:1] if quick else COUNTS


def _read(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = json.loads((run / "summary.json").read_text())
    rows = json.loads((run / "candidates.json").read_text())
    return summary, rows


def engine_quality(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> dict[str, Any]:
    """Replay PENGUIN on full curves: top-x sensitivity/specificity and epochs saved.

    The engine is configured as the run configured it (direction from the fitness, the
    prediction options' variant and curves); the top-x% are the lowest errors.
    """
    from streamal_nas.fitness import fitness_error
    from streamal_nas.options import NasOptions
    from streamal_nas.prediction import analyze_records, prediction_config

    opts = NasOptions.model_validate(cfg["workflow"]["options"])
    e_pred = float(cfg["workflow"]["phases"][0]["epochs"])
    pc = prediction_config(
        opts.prediction.engine_config(opts.epochs_per_iteration, e_pred, direction=opts.direction)
    )
    curves = {r["id"]: r["curve"] for r in rows if r["curve"]}
    decisions = analyze_records(curves, pc)
    ids = sorted(curves)
    final = np.array([fitness_error(curves[i][-1][1], opts.fitness) for i in ids])
    pred = np.array(
        [
            fitness_error(
                decisions[i].fitness if i in decisions else curves[i][-1][1], opts.fitness
            )
            for i in ids
        ]
    )
    stop = np.array([decisions[i].stop_epoch if i in decisions else e_pred for i in ids])
    out: dict[str, Any] = {"epochs_saved_fraction": float(1 - stop.sum() / (e_pred * len(ids)))}
    for x in TOP_X:
        k = max(1, round(x * len(ids)))
        true_top = set(np.argsort(final, kind="stable")[:k].tolist())
        pred_top = set(np.argsort(pred, kind="stable")[:k].tolist())
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


def measured_hypervolume(rows: Sequence[Mapping[str, Any]], reference: Sequence[float]) -> float:
    """Hypervolume of the trained candidates' [measured error, cost] against ``reference``
    (normalised to [1, 1], as the workflow's), without the engine's predictions."""
    from streamal_nas.fitness import fitness_error
    from streamal_nas.strategies import hypervolume

    ref = np.asarray(reference, dtype=float)
    f = [
        [fitness_error(r["actual_fitness"], r.get("fitness_metric", "accuracy")), r["cost"]]
        for r in rows
        if r["status"] == "trained" and r.get("actual_fitness") is not None
    ]
    if not f:
        return 0.0
    return hypervolume(np.asarray(f, dtype=float) / ref, [1.0, 1.0])


def ratios_vs_plain(plain: Mapping[str, float], other: Mapping[str, float]) -> dict[str, float]:
    """Epochs and training FLOPs saved, wall-time speedup and hypervolume ratio vs plain (and
    ``<key>_ratio`` of ``hypervolume_measured`` / ``hypervolume_retrained`` where both have
    it)."""

    def ratio(key: str) -> float:
        return other[key] / plain[key] if plain[key] > 0 else float("nan")

    out = {
        "epochs_saved_fraction": 1 - other["epochs"] / plain["epochs"],
        "flops_saved_fraction": 1 - other["flops"] / plain["flops"],
        "wall_speedup": plain["wall_s"] / other["wall_s"],
        "hypervolume_ratio": ratio("hypervolume"),
    }
    for key in ("hypervolume_measured", "hypervolume_retrained"):
        if key in plain and key in other:
            out[f"{key}_ratio"] = ratio(key)
    return out


def kept_hypervolume(r: Mapping[str, float]) -> float:
    """The hypervolume ratio a variant is judged by: of its Pareto front retrained for the
    full budget, where there is one (unbiased); else the lower of the engine's (predicted
    fitness where it stopped a candidate: optimistic) and the measured one (the fitness where
    it stopped: pessimistic)."""
    if "hypervolume_retrained_ratio" in r:
        return r["hypervolume_retrained_ratio"]
    return min(r["hypervolume_ratio"], r.get("hypervolume_measured_ratio", np.inf))


def best_variant(ratios: Mapping[str, Mapping[str, float]], keep: float = 0.95) -> str:
    """The fastest variant keeping >= ``keep`` of plain's hypervolume (:func:`kept_hypervolume`),
    else the one with the highest such ratio."""
    keeping = [v for v in ratios if kept_hypervolume(ratios[v]) >= keep]
    if keeping:
        return max(keeping, key=lambda v: ratios[v]["wall_speedup"])
    return max(ratios, key=lambda v: np.nan_to_num(kept_hypervolume(ratios[v]), nan=-1.0))


def median_ratios(
    pairs: Sequence[Mapping[str, Mapping[str, float]]],
) -> dict[str, dict[str, float]]:
    """Per variant, the median of each ratio over several (seed, count level) runs."""
    out: dict[str, dict[str, float]] = {}
    for v in pairs[0]:
        keys = pairs[0][v]
        out[v] = {k: float(statistics.median(p[v][k] for p in pairs)) for k in keys}
    return out


def _record(per: dict[str, list[float]], summary: Mapping[str, Any]) -> dict[str, float]:
    """Append one run's summary to ``per`` and return its values."""
    values = {
        "wall_s": summary["wall_s"],
        "epochs": summary["epochs_trained"],
        "flops": summary["flops_trained"],
        "hypervolume": summary["hypervolume"],
        "skipped": summary["skipped"],
        "stopped_early": summary["stopped_early"],
    }
    for k, x in values.items():
        per.setdefault(k, []).append(x)
    return values


def _engine_summary(quality: list[dict[str, Any]]) -> dict[str, Any]:
    return {
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
    }


def _rounded(med: Mapping[str, float]) -> dict[str, float]:
    return {k: round(x, 4 if k.startswith("hypervolume") else 2) for k, x in med.items()}


def _plot(per: Mapping[str, Mapping[str, list[float]]], title: str, name: str) -> None:
    panels = [
        ("wall_s", "search wall time (s)"),
        ("epochs", "epochs trained"),
        ("flops", "training FLOPs (forward × epochs)"),
        ("hypervolume", "hypervolume: the search's fitness\n(predicted where stopped early)"),
        ("hypervolume_measured", "hypervolume: validation fitness\nwhere each candidate stopped"),
        ("hypervolume_retrained", "hypervolume: Pareto front retrained,\ntest split"),
    ]
    panels = [(k, label) for k, label in panels if per[VARIANTS[0]].get(k)]
    rows = (len(panels) + 2) // 3
    fig, grid = plt.subplots(rows, 3, figsize=(13, 3.8 * rows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, label) in zip(axes, panels, strict=False):
        ax.boxplot(
            [per[v][key] for v in VARIANTS], tick_labels=["plain", "+pred", "+p+sim", "+p+s+tr"]
        )
        ax.set_title(label, fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / f"{name}.png", dpi=120)


def run_digits(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The digits benchmark's result (see the module docstring)."""
    names = VARIANTS + EXTRA
    per: dict[str, dict[str, list[float]]] = {v: {k: [] for k in METRICS} for v in names}
    quality, taus = [], {"without_transfer": [], "with_transfer": []}
    for seed in range(args.seeds):
        order = names[seed % len(names) :] + names[: seed % len(names)]
        for variant in order:
            if variant in EXTRA and args.quick and seed > 0:
                continue  # quick: the transfer-to-e_pred variant (tau only) on seed 0 only
            cfg = config_for(variant, seed, args.quick, smoke=args.smoke)
            run = _runs.run_or_reuse(cfg, root / f"{variant}-{seed}")
            summary, rows = _read(run)
            _record(per[variant], summary)
            if variant == "plain":
                quality.append(engine_quality(rows, cfg))
                taus["without_transfer"].append(short_vs_long_tau(rows, args.short_epochs))
            if variant == "transfer":
                taus["with_transfer"].append(short_vs_long_tau(rows, args.short_epochs))
    med = {v: {k: statistics.median(x) for k, x in per[v].items()} for v in names}
    ratios = {v: ratios_vs_plain(med["plain"], med[v]) for v in VARIANTS[1:]}
    best = best_variant(ratios)
    result: dict[str, Any] = {
        "seeds": args.seeds,
        "quick": args.quick,
        "budget": base_config(args.quick, smoke=args.smoke)["workflow"]["phases"][0],
        **{v: _rounded(med[v]) for v in names},
        "ratios_vs_plain": {v: {k: round(x, 3) for k, x in r.items()} for v, r in ratios.items()},
        "engine_offline": _engine_summary(quality),
        "kendall_tau_short_vs_long": {
            k: [None if t is None else round(t, 3) for t in ts] for k, ts in taus.items()
        },
        "short_epochs": args.short_epochs,
        "per_seed": {v: {k: [round(x, 4) for x in xs] for k, xs in per[v].items()} for v in names},
        "run_dirs": str(root),
        "best_variant": best,
        **{k: round(x, 3) for k, x in ratios[best].items()},
    }
    _plot(
        per,
        f"NAS on digits, {args.seeds} seeds; best {best}: "
        f"{result['wall_speedup']:.2f}x wall, {result['epochs_saved_fraction']:.0%} epochs "
        f"saved, HV ratio {result['hypervolume_ratio']:.3f}",
        "nas",
    )
    return result


def retrained_hypervolume(
    tests: Sequence[Mapping[str, Any]], reference: Sequence[float], opts: Mapping[str, Any]
) -> float:
    """Hypervolume of a Pareto front whose members were each trained for the full budget and
    scored on the test split (``tests``: their :func:`_nas_reference.held_out_metrics`), with
    the search's fitness and reference: neither the engine's predictions nor early stops
    in it."""
    from streamal_nas.fitness import fitness_error, fitness_value
    from streamal_nas.strategies import hypervolume

    fitness = opts.get("fitness", "accuracy")
    f = [
        [fitness_error(fitness_value(t, fitness, opts.get("fitness_weights")), fitness), t["flops"]]
        for t in tests
    ]
    if not f:
        return 0.0
    return hypervolume(np.asarray(f, dtype=float) / np.asarray(reference, dtype=float), [1, 1])


def _reference_tests(
    run_dirs: Mapping[str, Path],
    cfg: Mapping[str, Any],
    summaries: Mapping[str, Any],
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[dict[str, Any], dict[str, float]]:
    """ALBAND and each variant's best genome trained for the search's budget, on the test
    split of one (seed, count level)'s runs (the same simulated data: the same seed); and
    each variant's :func:`retrained_hypervolume` (every genome trained once)."""
    from _nas_reference import beats, held_out_metrics

    from streamal_nas.genome import genome_from_key, genome_to_dict
    from streamal_nas.reference import alband_options

    opts = cfg["workflow"]["options"]
    plain_run = run_dirs["plain"]
    ref = alband_options()
    out: dict[str, Any] = {
        "alband": held_out_metrics(plain_run, cfg, ref["genome"], ref["channels"], ref["network"])
    }
    cache: dict[str, dict[str, Any]] = {}

    def tested(key: str) -> dict[str, Any]:
        if key not in cache:
            genome = genome_to_dict(genome_from_key(key))
            cache[key] = held_out_metrics(plain_run, cfg, genome, opts["channels"], opts["network"])
        return cache[key]

    fronts: dict[str, float] = {}
    for variant, summary in summaries.items():
        front = set(summary.get("pareto_front") or [])
        keys = [r["genome"] for r in rows[variant] if r["id"] in front]
        fronts[variant] = retrained_hypervolume(
            [tested(k) for k in keys], summary["hypervolume_reference"], opts
        )
        key = (summary.get("best") or {}).get("genome")
        if key is None:
            continue
        out[variant] = {"genome": key, **tested(key), "beats_reference": False}
        out[variant]["beats_reference"] = beats(out[variant], out["alband"])
    return out, fronts


def _test_summary(tests: Mapping[str, Any]) -> dict[str, Any]:
    """Accuracy, MAE (mean of the mae_* metrics) and FLOPs of one run's tests, rounded."""

    def short(m: Mapping[str, Any]) -> dict[str, Any]:
        mae = {k: round(v, 4) for k, v in m.items() if k.startswith("mae_")}
        s = {
            "accuracy": round(m["accuracy"], 4),
            "mse": round(m["mse"], 5),
            "mae": mae,
            "flops": m["flops"],
            "params": m["params"],
        }
        if "genome" in m:
            s.update(genome=m["genome"], beats_reference=m["beats_reference"])
        return s

    return {k: short(m) for k, m in tests.items()}


def run_diffraction(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The diffraction benchmark's result (see the module docstring)."""
    levels = count_levels(args.quick, args.smoke, args.counts)
    names = VARIANTS + (() if args.quick or args.smoke else EXTRA)
    per: dict[str, dict[str, list[float]]] = {
        v: {k: [] for k in (*METRICS, "hypervolume_measured", "hypervolume_retrained")}
        for v in names
    }
    by_level: dict[str, dict[str, dict[str, list[float]]]] = {}
    pairs: dict[str, list[dict[str, dict[str, float]]]] = {}
    quality, taus = [], {"without_transfer": [], "with_transfer": []}
    tests: dict[str, list[dict[str, Any]]] = {}
    for seed in range(args.seeds):
        for counts in levels:
            level = f"{counts:g}"
            order = names[seed % len(names) :] + names[: seed % len(names)]
            values, runs, summaries, all_rows = {}, {}, {}, {}
            for variant in order:
                cfg = config_for(variant, seed, args.quick, "diffraction", counts, args.smoke)
                run = _runs.run_or_reuse(cfg, root / f"{variant}-{level}-{seed}")
                summary, rows = _read(run)
                values[variant] = _record(per[variant], summary)
                hv = measured_hypervolume(rows, summary["hypervolume_reference"])
                values[variant]["hypervolume_measured"] = hv
                per[variant]["hypervolume_measured"].append(hv)
                lv = by_level.setdefault(level, {v: {} for v in names})
                for k, x in values[variant].items():
                    lv[variant].setdefault(k, []).append(x)
                runs[variant], summaries[variant], all_rows[variant] = run, summary, rows
                if variant == "plain":
                    quality.append(engine_quality(rows, cfg))
                    taus["without_transfer"].append(short_vs_long_tau(rows, args.short_epochs))
                if variant == "transfer":
                    taus["with_transfer"].append(short_vs_long_tau(rows, args.short_epochs))
            cfg = config_for("plain", seed, args.quick, "diffraction", counts, args.smoke)
            searched = {v: summaries[v] for v in VARIANTS}
            tested, fronts = _reference_tests(runs, cfg, searched, all_rows)
            tests.setdefault(level, []).append(_test_summary(tested))
            for v, hv in fronts.items():
                values[v]["hypervolume_retrained"] = hv
                per[v]["hypervolume_retrained"].append(hv)
                by_level[level][v].setdefault("hypervolume_retrained", []).append(hv)
            pairs.setdefault(level, []).append(
                {v: ratios_vs_plain(values["plain"], values[v]) for v in VARIANTS[1:]}
            )
    ratios = median_ratios([p for ps in pairs.values() for p in ps])
    best = best_variant(ratios)
    med = {v: {k: statistics.median(x) for k, x in per[v].items()} for v in names}
    result: dict[str, Any] = {
        "dataset": "diffraction",
        "seeds": args.seeds,
        "quick": args.quick,
        "smoke": args.smoke,
        "counts": list(levels),
        "budget": {
            **base_config(args.quick, "diffraction", args.smoke)["workflow"]["phases"][0],
            "samples_per_class": base_config(args.quick, "diffraction", args.smoke)["workflow"][
                "options"
            ]["dataset"]["samples_per_class"],
        },
        **{v: _rounded(med[v]) for v in names},
        "ratios_vs_plain": {v: {k: round(x, 3) for k, x in r.items()} for v, r in ratios.items()},
        "per_counts": {
            level: {
                **{
                    v: _rounded({k: statistics.median(x) for k, x in by_level[level][v].items()})
                    for v in names
                },
                "ratios_vs_plain": {
                    v: {k: round(x, 3) for k, x in r.items()}
                    for v, r in median_ratios(pairs[level]).items()
                },
                "test": tests[level],
            }
            for level in by_level
        },
        "beats_reference": any(
            t[v]["beats_reference"] for ts in tests.values() for t in ts for v in VARIANTS if v in t
        ),
        "engine_offline": _engine_summary(quality),
        "kendall_tau_short_vs_long": {
            k: [None if t is None else round(t, 3) for t in ts] for k, ts in taus.items()
        },
        "short_epochs": args.short_epochs,
        "run_dirs": str(root),
        "best_variant": best,
        **{k: round(x, 3) for k, x in ratios[best].items()},
    }
    _plot(
        per,
        f"NAS on diffraction (counts {', '.join(f'{c:g}' for c in levels)}), {args.seeds} "
        f"seeds; best {best}: {result['wall_speedup']:.2f}x wall, "
        f"{result['flops_saved_fraction']:.0%} FLOPs saved;\nhypervolume vs plain: search "
        f"{result['hypervolume_ratio']:.2f}, at the stop {result['hypervolume_measured_ratio']:.2f}"
        f", front retrained {result['hypervolume_retrained_ratio']:.2f}",
        "nas_diffraction",
    )
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("digits", "diffraction"), default="digits")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--smoke", action="store_true", help="one seed, tiny budget: plumbing only")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--short-epochs", type=float, default=1.0)
    p.add_argument(
        "--counts",
        type=lambda text: [float(c) for c in text.split(",")],
        help="diffraction: comma-separated peak counts instead of the default levels",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", help="keep run directories under this folder")
    args = p.parse_args()
    if args.smoke:
        args.seeds = 1
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-nas-"))
    if args.dataset == "diffraction":
        _common.emit("nas_diffraction", run_diffraction(args, root), args.json)
    else:
        _common.emit("nas", run_digits(args, root), args.json)


if __name__ == "__main__":
    main()
