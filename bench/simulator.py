"""Speed of the ``diffraction-tof`` simulator against cryspy 0.18 on the same cells.

    python bench/simulator.py [--quick] [--json]

Draws cells of the paper's three classes (E1 ranges, equal thirds, fixed seed) and measures,
with every BLAS/OpenMP pool at one thread:

* ours: batches of ``--batch`` patterns, ``--repeats`` runs (median): wall time per pattern and
  process CPU time per pattern; per class as well. ``ms_per_pattern_per_core`` is the larger of
  the two medians (one thread, so one core);
* cryspy 0.18 (``profile_cutoff_fwhm = 5``) on the first few of the same cells: one parse per
  class, then per cell the cell is set in the parsed dictionary and the pattern computed (parse
  time excluded, cryspy's fastest repeated use); it also checks that both codes give the same
  patterns up to one scale factor.

Writes ``bench/results/simulator.json`` and ``simulator.png``; with ``--json`` the last stdout
line is the result object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: single-thread timings

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import _common  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from streamal_diffraction import TofDiffractionSimulator  # noqa: E402

PAPER_CLASSES = ("trigonal", "tetragonal", "cubic")


def draw_cells(
    sim: TofDiffractionSimulator, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cells, classes in turn, free parameters uniform in the class bounds."""
    rng = np.random.default_rng(seed)
    classes = np.arange(n) % len(sim.space.classes)
    params = np.empty((n, len(sim.space.param_names)))
    for k, c in enumerate(sim.space.classes):
        idx = np.flatnonzero(classes == k)
        while True:
            free = rng.uniform(c.low, c.high, size=(len(idx), len(c.free)))
            full = sim.space.complete(k, free)
            try:
                sim.space.check(np.full(len(idx), k), full)
                break
            except ValueError:  # a tetragonal draw with |a - c| <= 0.001: draw again
                continue
        params[idx] = full
    return classes, params


def _time(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def measure_ours(
    sim: TofDiffractionSimulator, classes: np.ndarray, params: np.ndarray, repeats: int
) -> dict[str, Any]:
    """Median wall and CPU ms per pattern over ``repeats`` runs of the batch, and per class."""
    sim.simulate(classes[: len(sim.space.classes)], params[: len(sim.space.classes)])  # warm
    n = len(classes)
    runs = [_time(lambda: sim.simulate(classes, params)) for _ in range(repeats)]
    wall = [1e3 * w / n for w, _ in runs]
    cpu = [1e3 * c / n for _, c in runs]
    per_class = {}
    for k, name in enumerate(sim.space.class_names):
        sel = classes == k
        n_k = int(sel.sum())
        class_runs = [
            _time(lambda s=sel: sim.simulate(classes[s], params[s])) for _ in range(repeats)
        ]
        per_class[name] = {
            "wall_ms": round(statistics.median(1e3 * w / n_k for w, _ in class_runs), 4),
            "cpu_ms": round(statistics.median(1e3 * c / n_k for _, c in class_runs), 4),
        }
    return {
        "batch": n,
        "repeats": repeats,
        "wall_ms_per_pattern": round(statistics.median(wall), 4),
        "cpu_ms_per_pattern": round(statistics.median(cpu), 4),
        "wall_ms_all": [round(x, 4) for x in wall],
        "cpu_ms_all": [round(x, 4) for x in cpu],
        "per_class": per_class,
    }


def measure_cryspy(
    sim: TofDiffractionSimulator, classes: np.ndarray, params: np.ndarray, per_class: int
) -> dict[str, Any]:
    """cryspy ms per pattern on the first ``per_class`` cells of each class, and agreement."""
    t0 = time.perf_counter()
    import cryspy  # noqa: F401

    import_s = time.perf_counter() - t0
    from streamal_diffraction.reference import cryspy_compute, cryspy_dictionary

    times: dict[str, list[float]] = {}
    worst = 0.0
    for k, name in enumerate(sim.space.class_names):
        idx = np.flatnonzero(classes == k)[:per_class]
        dictionary = cryspy_dictionary(name, params[idx[0]])
        crystal = dictionary["crystal_ph"]
        times[name] = []
        ours = sim.simulate(classes[idx], params[idx]).astype(np.float64)
        for j, i in enumerate(idx):
            cell = params[i].copy()
            cell[3:] = np.radians(cell[3:])
            crystal["unit_cell_parameters"] = cell
            w0 = time.perf_counter()
            ref = cryspy_compute(dictionary).pattern
            times[name].append(1e3 * (time.perf_counter() - w0))
            scale = (ours[j] @ ref) / (ref @ ref)
            worst = max(worst, float(np.abs(ours[j] - scale * ref).max() / ours[j].max()))
    every = [x for v in times.values() for x in v]
    return {
        "reference": "cryspy 0.18.0",
        "settings": "profile_cutoff_fwhm=5, parse excluded, d(ToF) root patched",
        "import_s": round(import_s, 2),
        "patterns": len(every),
        "ms_per_pattern": round(statistics.median(every), 1),
        "per_class_ms": {k: round(statistics.median(v), 1) for k, v in times.items()},
        "max_pattern_diff_after_scale": round(worst, 5),
    }


def _pool_rate(workers: int, chunks: int, chunk: int) -> float:
    """Patterns per second through a Parsl ``sim`` pool of ``workers`` pinned workers."""
    import asyncio
    import json as _json

    from streamal.cluster.parsl_config import build_parsl_config
    from streamal.cluster.plan import NodePlan, RankPlacement
    from streamal.config import SchedulerConfig, SiteConfig
    from streamal.policy import UniformPolicy
    from streamal.runtime.scheduler import Scheduler
    from streamal.simulation.batches import simulate_chunk

    cores = sorted(os.sched_getaffinity(0))[:workers]
    # the trainer rank is idle here; it may share a core with the simulators
    plan = NodePlan("local", tuple(cores), (RankPlacement(0, (cores[0],), None),))
    sim = TofDiffractionSimulator(preset="e1")
    classes, params = UniformPolicy(sim.space).sample(
        chunks * chunk // 3 + 1, np.random.default_rng(1)
    )
    opts = _json.dumps(sim.options(), sort_keys=True)

    async def go(tmp: str) -> float:
        config = build_parsl_config(plan, SiteConfig(), SchedulerConfig(), tmp)
        async with Scheduler(config, run_dir=tmp, progress=False) as s:
            warm = [
                s.start("sim", simulate_chunk, "diffraction-tof", opts, classes[:4], params[:4])
                for _ in range(workers * 2)
            ]
            await asyncio.gather(*warm)  # every worker has built its simulator
            t0 = time.perf_counter()
            await asyncio.gather(
                *(
                    s.start(
                        "sim",
                        simulate_chunk,
                        "diffraction-tof",
                        opts,
                        classes[i * chunk : (i + 1) * chunk],
                        params[i * chunk : (i + 1) * chunk],
                    )
                    for i in range(chunks)
                )
            )
            return chunks * chunk / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(go(tmp))


def measure_pool_scaling(chunks: int = 40, chunk: int = 256) -> float | None:
    """Throughput of two pinned simulation workers over one, through real Parsl pools.

    ``None`` on a machine with a single usable core.
    """
    if len(os.sched_getaffinity(0)) < 2:
        return None
    one = _pool_rate(1, chunks, chunk)
    two = _pool_rate(2, chunks, chunk)
    return round(two / one, 3)


def plot(ours: dict[str, Any], ref: dict[str, Any], speedup: float, path) -> None:
    names = list(ours["per_class"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.bar(x - 0.27, [ours["per_class"][n]["wall_ms"] for n in names], 0.27, label="ours, wall")
    ax.bar(x, [ours["per_class"][n]["cpu_ms"] for n in names], 0.27, label="ours, CPU")
    ax.bar(x + 0.27, [ref["per_class_ms"][n] for n in names], 0.27, label="cryspy 0.18")
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("ms per pattern (1 core)")
    ax.set_title(f"2806-point ToF patterns: {speedup:.0f}x faster than cryspy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and cryspy cells (< 2 min)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    repeats, cryspy_cells = (5, 2) if args.quick else (7, 5)

    sim = TofDiffractionSimulator(preset="e1", classes=list(PAPER_CLASSES))
    classes, params = draw_cells(sim, args.batch)
    ours = measure_ours(sim, classes, params, repeats)
    ref = measure_cryspy(sim, classes, params, cryspy_cells)
    per_core = max(ours["wall_ms_per_pattern"], ours["cpu_ms_per_pattern"])
    speedup = ref["ms_per_pattern"] / per_core
    result = {
        "ms_per_pattern_per_core": per_core,
        "reference": ref["reference"],
        "reference_ms_per_pattern": ref["ms_per_pattern"],
        "speedup_vs_reference": round(speedup, 1),
        "pool_scaling_2_vs_1": measure_pool_scaling(),
        "preset": "e1",
        "classes": list(PAPER_CLASSES),
        "ours": ours,
        "cryspy": ref,
    }
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    plot(ours, ref, speedup, _common.RESULTS / "simulator.png")
    _common.emit("simulator", result, args.json)


if __name__ == "__main__":
    main()
