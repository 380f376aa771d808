"""The trained model on realistic held-out patterns: alone, and after least-squares refinement.

    python bench/predict.py [--quick | --smoke] [--json] [--seed N] [--out DIR]
                            [--model RUN_DIR] [--keep DIR] [--workers N]
                            [--variance shared|per_parameter]

Sizes: ``--smoke`` trains a tiny model (300 patterns, 4 epochs) and refines 20 patterns (for
the tests); ``--quick`` trains 4,500 patterns for 30 epochs and refines 1,000 patterns (500
cells at two count levels); the full run trains 15,000 for 60 epochs and refines 2,000.

1. **Training** (skipped with ``--model``): the baseline workflow on the diffraction app
   (``diffraction-tof``, E1, the paper's three classes; one uniform training set, one
   training) run with ``python -m streamal run``, as users run it. Its patterns are noise-free,
   with no background, the instrument's own zero and the nominal NOMAD bank-4 profile.
2. **Held-out patterns**, none of whose distortions the training saw: cells drawn uniformly
   from the same classes and ranges (equal thirds), each rendered with

   * a perturbed instrument: ``alpha``, ``beta-0`` and ``sig-1`` each scaled by a factor
     drawn in [0.95, 1.05], one of a few such instruments per run (each written as a
     ``.instprm`` file on the paper's grid and simulated by ``diffraction-tof``);
   * a zero shift drawn in [−5, 5] µs on top of the instrument's ``Zero`` (the refinement
     forward model's shift, :class:`~streamal_diffraction.refine.ClassPattern`);
   * a smooth background: ``B·(1 + Σ_{k=1..3} c_k·T_k(x))``, Chebyshev polynomials of the
     ToF scaled to [−1, 1], ``c_k`` in [−0.3, 0.3], level ``B`` a fraction in [0.02, 0.2] of
     the strongest peak (a cubic: inside the refinement's 5-term background);
   * Poisson counting noise at two count levels: the strongest peak scaled to ~10³ and to
     ~10⁵ counts above background, the same cell, instrument, zero and background at both.

3. **The model alone**: :meth:`streamal.inference.Predictor.predict_measurements` on the
   counts (class = the most probable, cell = the regression head's a, c, α); also on the
   same cells with one distortion at a time, noise-free unless it is the noise
   (``model_alone_one_distortion_at_a_time``), which says which distortion costs what.
4. **After refinement**: :meth:`Predictor.refine` (the training simulator as forward model,
   nominal profile; the top class, and the runner-up too when the top probability is < 0.9;
   the lower χ² kept), in ``--workers`` processes (default one per available core), each
   pinned to a core of its own with every thread pool at one thread. Seconds per refinement
   are the wall time of that call on one core (each worker first warms up on one pattern per
   class); on a machine that runs other work too they include its contention.

Errors are absolute errors of each class's *free* parameters against the truth: ``a`` of every
pattern, ``c`` of the tetragonal ones, α of the trigonal ones; the length MAE (Å) pools ``a``
and ``c``. A refinement **converged to the true cell** when the optimiser converged and every
one of the six refined cell parameters is within 0.01 Å (lengths) or 0.1° (angles) of the
truth (a wrong class within those tolerances counts: it is the same cell). Targets: refined
length MAE ≤ 0.001 Å at the higher count level; ≤ 0.5 s per refinement on one core.

Top-level keys (``class_accuracy``, ``model_mae_A``, ``refined_mae_A``, ``converged_fraction``)
are at the higher count level; ``by_counts`` has every measure per level.
``model_sigma_within`` says whether the model's σ are calibrated: the fraction of its errors
(free parameters) within 1σ and 2σ, on the noise-free held-out patterns and at the higher
count level (a calibrated Gaussian σ: 0.683, 0.954). ``--variance per_parameter`` trains the
model with one variance per parameter instead of the paper's shared one.

Writes ``bench/results/predict.json`` and ``predict.png`` (``predict-full``, ``predict-smoke``
for the other sizes; ``-per-parameter`` appended with ``--variance per_parameter``); with
``--json`` the last stdout line is the result object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one-thread refinement timings

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _common  # noqa: E402
import _runs  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.polynomial import chebyshev  # noqa: E402

from streamal.inference import Measurement, Predictor  # noqa: E402
from streamal.policy.uniform import UniformPolicy  # noqa: E402
from streamal_diffraction import TofDiffractionSimulator  # noqa: E402
from streamal_diffraction.cell import CELL_PARAMS  # noqa: E402
from streamal_diffraction.instrument import NOMAD_BANK4, NOMAD_GRID, Instrument  # noqa: E402
from streamal_diffraction.refine import ClassPattern  # noqa: E402

#: Peak counts (strongest peak above background) of the two count levels, low then high.
COUNTS = (1e3, 1e5)
#: Relative spread of the perturbed profile constants, and which ones.
PROFILE_SPREAD = 0.05
PROFILE_FIELDS = ("alpha", "beta0", "sig1")
#: Zero shift range (µs), background level (fraction of the strongest peak) and the spread of
#: its Chebyshev coefficients.
ZERO_US = 5.0
BACKGROUND_LEVEL = (0.02, 0.2)
BACKGROUND_COEF = 0.3
#: A refined cell within these of the truth (Å, °) "converged to the true cell".
TRUE_CELL_LENGTH_A = 0.01
TRUE_CELL_ANGLE_DEG = 0.1
#: Targets (higher count level; one core).
TARGET_MAE_A = 0.001
TARGET_SECONDS = 0.5
#: The distortions the model alone is measured on one at a time (noise-free unless named).
DISTORTIONS = (
    "none",
    "zero shift",
    "profile",
    *(f"noise {level:.0e}" for level in COUNTS),
    "background",
    f"all ({COUNTS[-1]:.0e})",
)
#: The paper's grid, as ``instrument.tof_grid`` options.
PAPER_GRID = {"start_us": 1360.0, "stop_us": 18919.0, "log_step": 0.0009381}
LENGTHS = ("a", "c")


@dataclass(frozen=True)
class Sizes:
    """Training (per class, epochs, model options) and held-out sizes (cells, instruments)."""

    per_class: int
    epochs: int
    model: dict[str, Any]
    cells: int
    instruments: int


SIZES = {
    "smoke": Sizes(100, 4, {"channels": [8, 16], "hidden": 64}, 10, 2),
    "quick": Sizes(1500, 30, {}, 500, 4),
    "full": Sizes(5000, 60, {}, 1000, 8),
}


def train_config(sizes: Sizes, seed: int) -> dict[str, Any]:
    """The baseline workflow on uniform, noise-free E1 patterns of the paper's classes."""
    model: dict[str, Any] = {"name": "diffraction-cnn"}
    if sizes.model:
        model["options"] = dict(sizes.model)
    return {
        "name": "bench-predict",
        "seed": seed,
        "scheduler": {"retries": 1, "progress": False},
        "simulator": {"name": "diffraction-tof", "chunk_size": 64, "options": {"preset": "e1"}},
        "model": model,
        "train": {"batch_size": 64, "learning_rate": 5e-4},
        "workflow": {
            "name": "baseline",
            "phases": [{"samples": sizes.per_class, "epochs": sizes.epochs}],
            "options": {"val_fraction": 0.1, "test_fraction": 0.1},
        },
    }


def write_instprm(path: Path, inst: Instrument) -> Path:
    """``inst`` as a one-bank GSAS-II ``.instprm`` file."""
    items = {
        "Type": "PNT",
        "Bank": "4.0",
        "fltPath": inst.flight_path,
        "2-theta": inst.two_theta,
        "difC": inst.difc,
        "difA": inst.difa,
        "difB": inst.difb,
        "Zero": inst.zero,
        "alpha": inst.alpha,
        "beta-0": inst.beta0,
        "beta-1": inst.beta1,
        "beta-q": inst.beta_q,
        "sig-0": inst.sig0,
        "sig-1": inst.sig1,
        "sig-2": inst.sig2,
        "sig-q": inst.sig_q,
    }
    lines = ["#GSAS-II instrument parameter file; do not add/delete items!"]
    lines += [f"{k}:{v!r}" if not isinstance(v, str) else f"{k}:{v}" for k, v in items.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def perturbed_instruments(n: int, rng: np.random.Generator, folder: Path) -> list[dict]:
    """``n`` NOMAD bank-4 instruments with :data:`PROFILE_FIELDS` each scaled by a factor in
    ``1 ± PROFILE_SPREAD``: ``{"factors", "simulator"}`` (simulated on the paper's grid)."""
    out = []
    for i in range(n):
        factors = {
            f: float(rng.uniform(1 - PROFILE_SPREAD, 1 + PROFILE_SPREAD)) for f in PROFILE_FIELDS
        }
        inst = replace(NOMAD_BANK4, **{f: getattr(NOMAD_BANK4, f) * x for f, x in factors.items()})
        path = write_instprm(folder / f"perturbed-{i}.instprm", inst)
        sim = TofDiffractionSimulator(
            preset="e1", instrument={"file": str(path), "tof_grid": PAPER_GRID}
        )
        if sim.grid != NOMAD_GRID:
            raise RuntimeError(f"{path}: simulated on {sim.grid}, not the paper's grid")
        out.append({"factors": factors, "simulator": sim})
    return out


def held_out(sizes: Sizes, seed: int, folder: Path) -> dict[str, Any]:
    """The held-out cells and their counts at every level of :data:`COUNTS`, and the same
    cells with one distortion at a time (for the model alone, :data:`DISTORTIONS`).

    Returns ``classes (n,)`` (in turn), ``params (n, 6)``, ``instrument (n,)`` (in turn),
    ``zero (n,)``, ``counts {level: (n, grid)}``, ``one_at_a_time {distortion: (n, grid)}``,
    ``space`` and ``instruments`` (the factors of each).
    """
    rng = np.random.default_rng([seed, 1])  # not the training's stream
    instruments = perturbed_instruments(sizes.instruments, rng, folder)
    space = instruments[0]["simulator"].space
    per_class = -(-sizes.cells // len(space.classes))
    classes, params = UniformPolicy(space).sample(per_class, rng)
    k = len(space.classes)  # classes in turn (the draw is grouped by class)
    order = (np.arange(per_class)[:, None] + per_class * np.arange(k)[None, :]).ravel()
    classes, params = classes[order[: sizes.cells]], params[order[: sizes.cells]]
    n = len(classes)
    which = np.arange(n) % len(instruments)
    zero = rng.uniform(-ZERO_US, ZERO_US, n)
    x = np.linspace(-1.0, 1.0, NOMAD_GRID.size)  # the refinement's background variable
    nominal = TofDiffractionSimulator(preset="e1")
    models: dict[tuple[int, int], ClassPattern] = {}

    def pattern(sim: int, i: int, zero_us: float) -> np.ndarray:
        """Cell ``i`` by instrument ``sim`` (−1: nominal), strongest peak 1."""
        key = (sim, int(classes[i]))
        if key not in models:
            simulator = nominal if sim < 0 else instruments[sim]["simulator"]
            models[key] = ClassPattern(simulator, space.class_names[key[1]])
        model = models[key]
        peaks = model.pattern(params[i, [space.param_names.index(p) for p in model.free]], zero_us)
        return peaks / peaks.max()

    counts = {level: np.empty((n, NOMAD_GRID.size)) for level in COUNTS}
    alone = {d: np.empty((n, NOMAD_GRID.size), dtype=np.float32) for d in DISTORTIONS}
    other = np.random.default_rng([seed, 2])  # the one-at-a-time draws: the set stays the same
    for i in range(n):
        peaks = pattern(int(which[i]), i, float(zero[i]))
        coef = np.concatenate([[1.0], rng.uniform(-BACKGROUND_COEF, BACKGROUND_COEF, 3)])
        background = rng.uniform(*BACKGROUND_LEVEL) * chebyshev.chebval(x, coef)
        for level in COUNTS:
            counts[level][i] = rng.poisson(level * (peaks + background))
        clean = pattern(-1, i, 0.0)
        alone["none"][i] = clean
        alone["zero shift"][i] = pattern(-1, i, float(zero[i]))
        alone["profile"][i] = pattern(int(which[i]), i, 0.0)
        for level in COUNTS:
            alone[f"noise {level:.0e}"][i] = other.poisson(level * clean) / level
        alone["background"][i] = clean + background
        alone[DISTORTIONS[-1]][i] = counts[COUNTS[-1]][i] / COUNTS[-1]
    return {
        "classes": classes,
        "params": params,
        "instrument": which,
        "zero": zero,
        "counts": counts,
        "one_at_a_time": alone,
        "space": space,
        "instruments": [i["factors"] for i in instruments],
    }


def model_alone(predictor: Predictor, data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Class accuracy and length MAE (Å, ``a`` and tetragonal ``c``) of the model on the
    patterns with one distortion at a time."""
    space = data["space"]
    truth = [space.class_names[int(k)] for k in data["classes"]]
    out = {}
    for name, patterns in data["one_at_a_time"].items():
        ms = [Measurement(y=y.astype(np.float64)) for y in patterns]
        preds = [
            p
            for s in range(0, len(ms), 256)
            for p in predictor.predict_measurements(ms[s : s + 256])
        ]
        records = [
            {
                "class": t,
                "true": dict(zip(CELL_PARAMS, row.tolist(), strict=True)),
                "model": {q: e.value for q, e in p.parameters.items()},
                "model_sigma": {q: e.sigma for q, e in p.parameters.items()},
            }
            for t, row, p in zip(truth, data["params"], preds, strict=True)
        ]
        err = errors(records, "model")
        out[name] = {
            **calibration(records),
            "class_accuracy": round(
                float(np.mean([p.predicted_class == t for p, t in zip(preds, truth, strict=True)])),
                4,
            ),
            "mae_A": _mean(np.concatenate([err[q] for q in LENGTHS])),
        }
    return out


def one_core(core: int) -> None:
    """Pin this process to ``core``, every BLAS/OpenMP/torch pool to one thread."""
    import torch
    from threadpoolctl import threadpool_limits

    os.sched_setaffinity(0, {core})
    threadpool_limits(1)
    torch.set_num_threads(1)


def predict_all(predictor: Predictor, data: dict[str, Any]) -> tuple[dict[float, list], float]:
    """The model's predictions of every pattern at every count level (batches of 256), and
    the seconds per pattern (this process, on one core)."""
    n = len(data["classes"])
    before = os.sched_getaffinity(0)
    one_core(min(before))
    predictions = {}
    t0 = time.perf_counter()
    for level in COUNTS:
        ms = [
            Measurement(y=data["counts"][level][i], source=f"held-out {i} ({level:g} counts)")
            for i in range(n)
        ]
        predictions[level] = [
            p for s in range(0, n, 256) for p in predictor.predict_measurements(ms[s : s + 256])
        ]
    seconds = (time.perf_counter() - t0) / (n * len(COUNTS))
    os.sched_setaffinity(0, before)
    return predictions, seconds


_WORKER: dict[str, Any] = {}


def _start_worker(model: str, cores: Any, warm_up: list) -> None:
    """A refinement worker: pinned to a core of its own, its predictor warmed up (reflection
    lists and profile table of every class built) on ``warm_up`` predictions."""
    core = cores.get()
    one_core(core)
    predictor = Predictor(model)
    for prediction in warm_up:
        predictor.refine(prediction)
    _WORKER.update(predictor=predictor, core=core)


def _refine(prediction: Any, keep: bool) -> tuple[dict, int, float, int, Any]:
    """``(best fit's to_dict, fits, seconds, core, the best fit when keep)``; a refinement
    that fails is recorded as a fit that did not converge, at the model's cell (its error
    in ``error``)."""
    from streamal.inference import PatternError

    t0 = time.perf_counter()
    try:
        fits = _WORKER["predictor"].refine(prediction)
    except PatternError as exc:
        seconds = time.perf_counter() - t0
        space = _WORKER["predictor"].space
        k = space.class_index(prediction.predicted_class)
        free = [prediction.parameters[p].value for p in space.classes[k].free]
        cell = space.complete(k, np.array([free]))[0]
        failed = {
            "class": prediction.predicted_class,
            "cell": dict(zip(space.param_names, cell.tolist(), strict=True)),
            "zero_shift_us": 0.0,
            "converged": False,
            "r_wp_pct": None,
            "gof": None,
            "error": str(exc),
        }
        return failed, 0, seconds, _WORKER["core"], None
    seconds = time.perf_counter() - t0
    return fits[0].to_dict(), len(fits), seconds, _WORKER["core"], fits[0] if keep else None


def refine_all(
    model: Path, data: dict[str, Any], predictions: dict[float, list], workers: int
) -> tuple[list[dict], Any]:
    """Refine every prediction in ``workers`` processes, one core each: per-pattern records
    and one example fit (the first trigonal pattern at the higher count level)."""
    import multiprocessing

    names = data["space"].class_names
    classes = data["classes"]
    firsts = [np.flatnonzero(classes == k) for k in range(len(names))]
    warm_up = [predictions[COUNTS[-1]][int(f[0])] for f in firsts if len(f)]
    example_i = (
        int(firsts[names.index("trigonal")][0]) if len(firsts[names.index("trigonal")]) else 0
    )
    jobs = [(level, i) for level in COUNTS for i in range(len(classes))]
    ctx = multiprocessing.get_context("spawn")
    cores = ctx.SimpleQueue()
    available = sorted(os.sched_getaffinity(0))
    for k in range(workers):
        cores.put(available[k % len(available)])
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_start_worker, initargs=(str(model), cores, warm_up)
    ) as pool:
        done = list(
            pool.map(
                _refine,
                [predictions[level][i] for level, i in jobs],
                [level == COUNTS[-1] and i == example_i for level, i in jobs],
                chunksize=4,
            )
        )
    records, example = [], None
    for (level, i), (best, n_fits, seconds, core, kept) in zip(jobs, done, strict=True):
        pred = predictions[level][i]
        example = kept or example
        records.append(
            {
                "counts": level,
                "class": names[int(classes[i])],
                "true": dict(zip(CELL_PARAMS, data["params"][i].tolist(), strict=True)),
                "zero_us": float(data["zero"][i]),
                "instrument": int(data["instrument"][i]),
                "model_class": pred.predicted_class,
                "model_p": pred.probabilities[pred.predicted_class],
                "model": {p: e.value for p, e in pred.parameters.items()},
                "model_sigma": {p: e.sigma for p, e in pred.parameters.items()},
                "refined_class": best["class"],
                "refined": best["cell"],
                "refined_zero_us": best["zero_shift_us"],
                "optimiser_converged": bool(best["converged"]),
                "r_wp_pct": best["r_wp_pct"],
                "gof": best["gof"],
                "classes_refined": n_fits,
                "error": best.get("error"),
                "seconds": seconds,
                "core": core,
            }
        )
    return records, example


def errors(records: list[dict], which: str) -> dict[str, np.ndarray]:
    """Absolute errors of the free parameters (``a`` all, ``c`` tetragonal, α trigonal) of
    ``which`` ("model" or "refined") estimates."""
    out: dict[str, list[float]] = {"a": [], "c": [], "alpha": []}
    for r in records:
        est = r[which]
        out["a"].append(abs(est["a"] - r["true"]["a"]))
        if r["class"] == "tetragonal":
            out["c"].append(abs(est["c"] - r["true"]["c"]))
        if r["class"] == "trigonal":
            out["alpha"].append(abs(est["alpha"] - r["true"]["alpha"]))
    return {p: np.array(v) for p, v in out.items()}


def calibration(records: list[dict]) -> dict[str, Any]:
    """How often the model's errors of the free parameters are within 1σ and 2σ of its own
    σ (a calibrated Gaussian σ: 0.683 and 0.954), pooled and per parameter."""
    z: dict[str, list[float]] = {"a": [], "c": [], "alpha": []}
    for r in records:
        free = {"a"} | {"tetragonal": {"c"}, "trigonal": {"alpha"}}.get(r["class"], set())
        for q in free:
            sigma = r["model_sigma"][q]
            z[q].append(abs(r["model"][q] - r["true"][q]) / sigma if sigma > 0 else np.inf)
    pooled = np.concatenate([np.array(v) for v in z.values()])

    def within(values: np.ndarray) -> dict[str, float | None]:
        if not len(values):
            return {"1sigma": None, "2sigma": None}
        return {
            "1sigma": round(float(np.mean(values <= 1)), 4),
            "2sigma": round(float(np.mean(values <= 2)), 4),
        }

    return {
        "within": within(pooled),
        "within_by_parameter": {q: within(np.array(v)) for q, v in z.items()},
    }


def true_cell(r: dict) -> bool:
    """The refinement converged and its six cell parameters are within tolerance of the truth."""
    ok = r["optimiser_converged"]
    for p in CELL_PARAMS:
        tol = TRUE_CELL_LENGTH_A if p in ("a", "b", "c") else TRUE_CELL_ANGLE_DEG
        ok = ok and abs(r["refined"][p] - r["true"][p]) < tol
    return bool(ok)


def _mean(x: np.ndarray) -> float | None:
    return round(float(np.mean(x)), 6) if len(x) else None


def summarise(records: list[dict]) -> dict[str, Any]:
    """Every measure of one count level."""
    out: dict[str, Any] = {"patterns": len(records)}
    out["class_accuracy"] = round(
        float(np.mean([r["model_class"] == r["class"] for r in records])), 4
    )
    out["class_accuracy_refined"] = round(
        float(np.mean([r["refined_class"] == r["class"] for r in records])), 4
    )
    for which in ("model", "refined"):
        err = errors(records, which)
        lengths = np.concatenate([err[p] for p in LENGTHS])
        out[f"{which}_mae_A"] = _mean(lengths)
        out[f"{which}_median_abs_error_A"] = (
            round(float(np.median(lengths)), 6) if len(lengths) else None
        )
        out[f"{which}_mae"] = {
            "a_A": _mean(err["a"]),
            "c_A": _mean(err["c"]),
            "alpha_deg": _mean(err["alpha"]),
        }
    by_class = {}
    for name in sorted({r["class"] for r in records}):
        err = errors([r for r in records if r["class"] == name], "refined")
        by_class[name] = _mean(np.concatenate([err[p] for p in LENGTHS]))
    out["refined_mae_A_by_class"] = by_class
    out["refined_zero_mae_us"] = _mean(
        np.array([abs(r["refined_zero_us"] - r["zero_us"]) for r in records])
    )
    out["model_sigma_calibration"] = calibration(records)
    out["converged_fraction"] = round(float(np.mean([true_cell(r) for r in records])), 4)
    out["refinement_errors"] = [r["error"] for r in records if r["error"]]
    out["optimiser_converged_fraction"] = round(
        float(np.mean([r["optimiser_converged"] for r in records])), 4
    )
    seconds = [r["seconds"] for r in records]
    out["seconds_per_refinement"] = round(statistics.fmean(seconds), 4)
    out["seconds_median"] = round(statistics.median(seconds), 4)
    out["two_class_fraction"] = round(
        float(np.mean([r["classes_refined"] > 1 for r in records])), 4
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="≤ 15 min on 2 cores")
    size.add_argument("--smoke", action="store_true", help="a tiny run, for the tests")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", help="write the JSON and PNG here instead of bench/results")
    p.add_argument("--model", help="use this trained run (or checkpoint) instead of training")
    p.add_argument("--keep", help="keep the training's run directory under this folder")
    p.add_argument(
        "--variance",
        choices=("shared", "per_parameter"),
        default="shared",
        help="the model's variance head (diffraction-cnn option `variance`)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="refinement processes, one core each (default: one per available core)",
    )
    args = p.parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = SIZES[mode]
    sizes = replace(sizes, model={**sizes.model, "variance": args.variance})
    if args.results_dir:
        _common.RESULTS = Path(args.results_dir)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        t0 = time.perf_counter()
        trained: dict[str, Any] = {}
        if args.model:
            model = Path(args.model)
            trained["model"] = str(model)
        else:
            root = Path(args.keep) if args.keep else Path(tmp)
            model = _runs.run_config(train_config(sizes, args.seed), root / f"train-{args.seed}")
            final = _runs.final_metrics(model)
            trained = {
                "n_train": final["n_train"],
                "epochs": final["epochs"],
                "wall_s": round(final["wall_s"], 1),
                "clean_test": {k: round(v, 5) for k, v in final["test"].items()},
            }
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = held_out(sizes, args.seed, Path(tmp))
        make_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        predictor = Predictor(model)
        predictions, model_s = predict_all(predictor, data)
        alone = model_alone(predictor, data)
        workers = args.workers or min(len(os.sched_getaffinity(0)), len(data["classes"]))
        records, example = refine_all(model, data, predictions, workers)
        eval_s = time.perf_counter() - t0
    levels = {
        f"{level:g}": summarise([r for r in records if r["counts"] == level]) for level in COUNTS
    }
    high = levels[f"{COUNTS[-1]:g}"]
    seconds = statistics.fmean(r["seconds"] for r in records)
    result = {
        "mode": mode,
        "quick": args.quick,
        "variance": args.variance,
        "seed": args.seed,
        "class_accuracy": high["class_accuracy"],
        "class_accuracy_refined": high["class_accuracy_refined"],
        "model_mae_A": high["model_mae_A"],
        "refined_mae_A": high["refined_mae_A"],
        "seconds_per_refinement": round(seconds, 4),
        "converged_fraction": high["converged_fraction"],
        "model_sigma_within": {
            "noise-free": alone["none"]["within"],
            f"{COUNTS[-1]:g} counts": high["model_sigma_calibration"]["within"],
            "gaussian": {"1sigma": 0.6827, "2sigma": 0.9545},
        },
        "targets": {
            f"refined_mae_A <= {TARGET_MAE_A} at {COUNTS[-1]:g} counts": bool(
                high["refined_mae_A"] is not None and high["refined_mae_A"] <= TARGET_MAE_A
            ),
            f"seconds_per_refinement <= {TARGET_SECONDS}": bool(seconds <= TARGET_SECONDS),
        },
        "by_counts": levels,
        "model_alone_one_distortion_at_a_time": alone,
        "held_out": {
            "cells": len(data["classes"]),
            "patterns": len(records),
            "counts": list(COUNTS),
            "zero_shift_us": [-ZERO_US, ZERO_US],
            "background_level": list(BACKGROUND_LEVEL),
            "profile_factors": data["instruments"],
        },
        "true_cell_tolerance": {"length_A": TRUE_CELL_LENGTH_A, "angle_deg": TRUE_CELL_ANGLE_DEG},
        "training": trained,
        "model_seconds_per_pattern": round(model_s, 5),
        "refinement_workers": workers,
        "refinement_cores": sorted({r["core"] for r in records}),
        "wall_s": {
            "train": round(train_s, 1),
            "held_out": round(make_s, 1),
            "predict_and_refine": round(eval_s, 1),
        },
    }
    name = {"quick": "predict", "full": "predict-full", "smoke": "predict-smoke"}[mode]
    if args.variance != "shared":
        name += "-per-parameter"
    _plot(records, example, result, _common.RESULTS / f"{name}.png")
    if not args.json:
        for target, met in result["targets"].items():
            print(f"target {target}: {'met' if met else 'NOT met'}")
    _common.emit(name, result, args.json)


def _plot(records: list[dict], example: Any, result: dict, path: Path) -> None:
    fig = plt.figure(figsize=(20, 8.5))
    grid = fig.add_gridspec(2, 5, height_ratios=[1, 1.1])
    colours = {COUNTS[0]: "tab:orange", COUNTS[-1]: "tab:blue"}
    for col, (param, unit, target) in enumerate(
        (("a", "Å", TARGET_MAE_A), ("c", "Å", TARGET_MAE_A), ("alpha", "°", None))
    ):
        ax = fig.add_subplot(grid[0, col])
        for level in COUNTS:
            rs = [r for r in records if r["counts"] == level]
            for which, style in (("model", ":"), ("refined", "-")):
                err = np.clip(errors(rs, which)[param], 1e-7, None)
                if not len(err):
                    continue
                bins = np.logspace(-7, 1, 49)
                ax.hist(
                    err,
                    bins=bins,
                    histtype="step",
                    ls=style,
                    color=colours[level],
                    label=f"{which}, {level:.0e} counts (MAE {np.mean(err):.2g})",
                )
        if target is not None:
            ax.axvline(target, color="k", lw=0.8, label=f"target MAE {target} {unit}")
        ax.set_xscale("log")
        ax.set_xlabel(f"|error of {'α' if param == 'alpha' else param}| ({unit})")
        ax.set_ylabel("patterns")
        label = {"a": "a (every class)", "c": "c (tetragonal)", "alpha": "α (trigonal)"}[param]
        ax.set_title(f"absolute error of {label}", fontsize=10)
        ax.legend(fontsize=6.5)
    ax = fig.add_subplot(grid[0, 3])
    for level in COUNTS:
        ax.hist(
            [r["seconds"] for r in records if r["counts"] == level],
            bins=30,
            histtype="step",
            color=colours[level],
            label=f"{level:.0e} counts",
        )
    ax.axvline(TARGET_SECONDS, color="k", lw=0.8, label=f"target {TARGET_SECONDS} s")
    ax.set_xlabel("seconds per refinement (one core)")
    ax.set_ylabel("patterns")
    ax.set_title(f"refinement time, mean {result['seconds_per_refinement']:.3f} s", fontsize=10)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[0, 4])
    alone = result["model_alone_one_distortion_at_a_time"]
    names = list(alone)
    ax.barh(names, [alone[d]["class_accuracy"] for d in names], color="tab:gray")
    for y, d in enumerate(names):
        ax.text(
            0.02,
            y,
            f"{alone[d]['class_accuracy']:.3f}, MAE {alone[d]['mae_A']:.3f} Å",
            va="center",
            fontsize=7,
            color="white",
        )
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("class accuracy of the model alone")
    ax.set_title("model alone, one distortion at a time", fontsize=10)
    ax = fig.add_subplot(grid[1, :])
    if example is not None:
        r = example.refinement
        fit = r.fitted
        diff = r.observed - r.calculated
        offset = -0.1 * r.observed.max() - np.abs(diff).max()
        ax.plot(r.tof[fit], r.observed[fit], "o", ms=1.5, mfc="none", mec="k", label="observed")
        ax.plot(r.tof, r.calculated, "-", color="tab:red", lw=0.8, label="calculated")
        ax.plot(r.tof, r.background_curve, "--", color="0.5", lw=0.8, label="background")
        ax.plot(r.tof, offset + diff, "-", color="tab:blue", lw=0.6, label="observed − calculated")
        ax.set_xlabel("time of flight (µs)")
        ax.set_ylabel("counts")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title("example: " + example.describe(), fontsize=9, loc="left")
    fig.suptitle(
        f"{result['held_out']['patterns']} held-out patterns (noise, background, zero shift, "
        f"profile ±5 %): class accuracy {result['class_accuracy']:.3f}, length MAE model "
        f"{result['model_mae_A']:.4f} Å → refined {result['refined_mae_A']:.5f} Å "
        f"at {COUNTS[-1]:.0e} counts"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
