"""Strong scaling on this machine, and how well the replay's fitted cost model predicts a run.

    python bench/scaling.py [--quick] [--json] [--results-dir DIR]

Three measurements, side by side in one run:

1. Simulation, 1 → 2 pinned simulator cores: the same batch of samples through the real
   pieces (``build_parsl_config`` → :class:`~streamal.runtime.scheduler.Scheduler` →
   :func:`~streamal.simulation.batches.simulate_batch` into a sample store), once with a sim
   pool of one pinned worker and once with two. Both simulators: ``diffraction-cryspy``
   (~1 s per pattern here, compute-bound: the paper's regime) and ``diffraction-tof`` (~0.5 ms
   per pattern: the pool's per-chunk overheads and the 11 kB patterns' transfer show). Each
   worker builds its simulator in a warm-up first; seconds are the median over repeats, in
   pools started in alternating order.
2. Training, 1 → 2 DDP ranks: the same training (``diffraction-cnn`` on diffraction-tof
   patterns, global batch fixed, so 2 ranks take per-rank batches half as large) with 1 rank
   on core 0, 2 ranks on one node (:func:`streamal.train.ddp.train`) and 2 ranks on two
   emulated nodes started by MPICH hydra (:func:`streamal.train.mpi_launch.train_mpi`,
   ``mpiexec -hosts localhost,127.0.0.1 -n 2 -ppn 1``); rank ``r`` pinned to core ``r``.
   Epoch time is the median training time per epoch after each run's first epoch.
3. The replay (:mod:`streamal.replay`): a small real campaign (``configs/diffraction-ci.yaml``,
   the streaming workflow; the full run adds the same campaign as the serial workflow) is run
   with ``python -m streamal run``; ``python -m streamal replay RUN_DIR --json`` fits the cost
   model on the run's timeline and replays it. Reports predicted vs measured makespan (first
   task start to last task end) and the relative error; in the full run also each fitted
   model's prediction of the other workflow's run (``--workflow``), which it was not fitted on.

Writes ``bench/results/scaling.json`` and ``scaling.png``; with ``--json`` the last stdout line
is the result object.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one thread per pinned core

import argparse  # noqa: E402
import asyncio  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _common  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CI_CONFIG = ROOT / "configs" / "diffraction-ci.yaml"
BIN = Path(sys.executable).parent

#: Per simulator, for --quick and for the full run: (samples, chunk_size, rounds, repeats).
#: A round starts one pool per core count (the second round in the reverse order, so a drift
#: of the machine's speed does not favour one count) and times the batch ``repeats`` times.
SIM_SIZES = {
    "diffraction-cryspy": {True: (12, 1, 1, 2), False: (24, 1, 2, 2)},
    "diffraction-tof": {True: (4096, 256, 1, 3), False: (8192, 256, 2, 2)},
}
#: Training: (training patterns, epochs, repeats of each layout) for --quick and full.
TRAIN_SIZES = {True: (800, 4, 1), False: (2400, 6, 3)}


#: Share of the machine's CPU time other processes may use during a part before the result
#: carries a warning (timings on a busy 2-core machine measure the other load, not scaling).
BUSY_SHARE = 0.05


class OtherLoad:
    """CPU seconds that processes outside this benchmark used while it ran.

    A process is this benchmark's when it descends from it or inherited
    ``$STREAMAL_BENCH_SCALING`` (Parsl workers and MPI ranks are re-parented). A thread samples
    every process's CPU time each ``period`` s and adds up the growth of the others (one that
    lives less than a period is missed). Use as a context manager; :attr:`cpu_s` is the
    running total, :attr:`by_name` the same per process name.
    """

    MARK = "STREAMAL_BENCH_SCALING"

    def __init__(self, period: float = 2.0) -> None:
        self.period = period
        self.cpu_s = 0.0
        self.by_name: dict[str, float] = {}
        self._mark = str(os.getpid())
        self._mine: dict[tuple[int, float], bool] = {}
        self._last: dict[tuple[int, float], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = 0.0

    def __enter__(self) -> OtherLoad:
        os.environ[self.MARK] = self._mark
        self._t0 = time.time()
        self.sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self, first: bool = False) -> None:
        """Add the CPU time other processes used since the last sample."""
        with self._lock:
            self._sample(first)

    def _sample(self, first: bool) -> None:
        for proc in psutil.process_iter():
            try:
                key = (proc.pid, proc.create_time())
                if key not in self._mine:  # a descendant, or one that carries the mark
                    me = os.getpid()
                    self._mine[key] = (
                        proc.pid == me
                        or any(a.pid == me for a in proc.parents())
                        or proc.environ().get(self.MARK) == self._mark
                    )
                if self._mine[key]:
                    continue
                t = sum(proc.cpu_times()[:2])
                # a process that started since the benchmark began counts from zero
                before = self._last.get(key, t if first or key[1] < self._t0 else 0.0)
                grew = max(0.0, t - before)
                self.cpu_s += grew
                self.by_name[proc.name()] = self.by_name.get(proc.name(), 0.0) + grew
                self._last[key] = t
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue


def _steal_s() -> float:
    """CPU seconds the hypervisor has taken from this machine since boot (0 if unknown)."""
    return float(getattr(psutil.cpu_times(), "steal", 0.0))


# -- 1. simulation ---------------------------------------------------------------------------------
def sim_seconds(name: str, workers: int, samples: int, chunk: int, repeats: int) -> dict:
    """Seconds to simulate and store ``samples`` samples, ``repeats`` times, on a new sim pool
    of ``workers`` cores; also the pool's start-up and each chunk's time in its worker."""
    from streamal import plugins
    from streamal.cluster.parsl_config import build_parsl_config
    from streamal.cluster.plan import NodePlan, RankPlacement
    from streamal.config import SchedulerConfig, SiteConfig
    from streamal.data.label import BatchLabel
    from streamal.data.store import SampleStore
    from streamal.policy import UniformPolicy
    from streamal.runtime.pools import SIM_POOL
    from streamal.runtime.scheduler import Scheduler
    from streamal.runtime.timeline import load_records
    from streamal.simulation.batches import simulate_batch, simulate_chunk

    cores = sorted(os.sched_getaffinity(0))[:workers]
    # the train pool's one worker stays idle; it may share a core with the simulators
    plan = NodePlan("local", tuple(cores), (RankPlacement(0, (cores[0],), None),))
    options = {"preset": "e1"}
    sim = plugins.load("simulators", name)(**options)
    per_class = -(-samples // len(sim.space.classes))
    classes, params = UniformPolicy(sim.space).sample(per_class, np.random.default_rng(7))
    classes, params = classes[:samples], params[:samples]
    opts = json.dumps(options, sort_keys=True)

    async def go(tmp: Path) -> dict:
        t0 = time.perf_counter()
        config = build_parsl_config(plan, SiteConfig(), SchedulerConfig(), tmp)
        async with Scheduler(config, run_dir=tmp, progress=False) as s:
            warm = [
                s.submit(
                    SIM_POOL, simulate_chunk, name, opts, classes[:1], params[:1], stage="warm-up"
                )
                for _ in range(2 * workers)
            ]
            await asyncio.gather(*warm)  # every worker has built its simulator
            ready_s = time.perf_counter() - t0
            seconds = []
            with SampleStore(
                tmp / "store.h5",
                param_names=sim.space.param_names,
                class_names=sim.space.class_names,
                input_shape=sim.output_shape,
            ) as store:
                for r in range(repeats):
                    t1 = time.perf_counter()
                    report = await simulate_batch(
                        s,
                        store,
                        simulator=name,
                        options=options,
                        key=f"repeat-{r}",
                        classes=classes,
                        params=params,
                        label=BatchLabel(0, "train", "uniform"),
                        chunk_size=chunk,
                        stage=f"S{r}",
                    )
                    seconds.append(time.perf_counter() - t1)
                    if report.stored != samples:
                        raise RuntimeError(f"{name}: stored {report.stored} of {samples}")
        chunks = [
            r
            for r in load_records(tmp / "timeline.json")
            if r.stage.startswith("S") and r.status == "done"
        ]
        return {
            "seconds": seconds,
            "pool_ready_s": ready_s,
            "worker_cores": {tuple(r.worker_cores) for r in chunks},
            "chunk_s": [r.duration for r in chunks],
        }

    with tempfile.TemporaryDirectory(prefix="bench-scaling-sim-") as tmp:
        return asyncio.run(go(Path(tmp)))


def measure_sim(quick: bool, max_cores: int) -> dict[str, Any]:
    """Per simulator: seconds on 1..max_cores workers, speedup and parallel efficiency."""
    out: dict[str, Any] = {}
    for name, sizes in SIM_SIZES.items():
        samples, chunk, rounds, repeats = sizes[quick]
        runs: dict[int, list[dict]] = {k: [] for k in range(1, max_cores + 1)}
        for r in range(rounds):
            for k in list(runs) if r % 2 == 0 else list(runs)[::-1]:
                runs[k].append(sim_seconds(name, k, samples, chunk, repeats))
        by_cores = {}
        for k, done in runs.items():
            seconds = [t for run in done for t in run["seconds"]]
            chunk_s = [t for run in done for t in run["chunk_s"]]
            by_cores[str(k)] = {
                "seconds": [round(t, 3) for t in seconds],
                "median_s": round(statistics.median(seconds), 3),
                "pool_ready_s": [round(run["pool_ready_s"], 2) for run in done],
                "worker_cores_used": sorted(set().union(*(run["worker_cores"] for run in done))),
                "chunk_run_s": round(statistics.median(chunk_s), 4),
                # time inside the simulator tasks / (workers x timed seconds); the rest is the
                # pool's dispatch, the results' transfer and waits for the driver
                "worker_busy_share": round(sum(chunk_s) / (k * sum(seconds)), 3),
            }
        one = by_cores["1"]["median_s"]
        out[name] = {
            "samples": samples,
            "chunk_size": chunk,
            "pools_per_core_count": rounds,
            "repeats_per_pool": repeats,
            "by_cores": by_cores,
            "speedup": {k: round(one / v["median_s"], 3) for k, v in by_cores.items()},
            "efficiency": {k: round(one / v["median_s"] / int(k), 3) for k, v in by_cores.items()},
        }
    return out


# -- 2. training -----------------------------------------------------------------------------------
def make_train_store(path: Path, n_train: int, n_val: int) -> dict[str, list[int]]:
    """Uniform E1 diffraction-tof patterns: ``n_train`` training and ``n_val`` validation rows."""
    from streamal.data.label import BatchLabel
    from streamal.data.store import SampleStore
    from streamal.policy import UniformPolicy
    from streamal_diffraction.simulator import TofDiffractionSimulator

    sim = TofDiffractionSimulator(preset="e1")
    k = len(sim.space.classes)
    rows: dict[str, list[int]] = {}
    with SampleStore(
        path,
        param_names=sim.space.param_names,
        class_names=sim.space.class_names,
        input_shape=sim.output_shape,
    ) as store:
        for i, (split, n) in enumerate((("train", n_train), ("val", n_val))):
            classes, params = UniformPolicy(sim.space).sample(
                -(-n // k), np.random.default_rng([3, i])
            )
            classes, params = classes[:n], params[:n]
            start = len(store)
            store.append(
                key=split,
                classes=classes,
                params=params,
                inputs=sim.simulate(classes, params),
                label=BatchLabel(0, split, "uniform"),
            )
            rows[split] = list(range(start, len(store)))
    return rows


def train_once(
    store: Path, rows: dict, out: Path, ranks: list, epochs: int, mpi_prefix: str | None
) -> dict[str, Any]:
    """One training; its epoch times (training part, s) and where its ranks ran."""
    from streamal.train.ddp import train
    from streamal.train.mpi_launch import train_mpi
    from streamal.train.spec import TrainSpec
    from streamal_diffraction.simulator import TofDiffractionSimulator

    sim = TofDiffractionSimulator(preset="e1")
    spec = TrainSpec(
        store=str(store),
        train_rows=rows["train"],
        val_rows=rows["val"],
        test_rows=[],
        model="diffraction-cnn",
        model_options={},
        space=sim.space.to_dict(),
        input_shape=sim.output_shape,
        out_dir=str(out),
        epochs=epochs,
        ranks=tuple(ranks),
        batch_size=64,
        learning_rate=1e-3,
        seed=0,
    )
    t0 = time.perf_counter()
    result = train_mpi(spec, mpi_prefix, timeout=600) if mpi_prefix else train(spec)
    wall = time.perf_counter() - t0
    return {
        "epoch_train_s": [h["train_s"] for h in result["history"]],
        "wall_s": wall,
        "ranks": [
            {k: r.get(k) for k in ("rank", "host", "node", "cores", "launcher")}
            for r in result["ranks"]
        ],
        "launcher": result.get("launcher", "streamal.train.ddp.train"),
    }


def measure_training(quick: bool, tmp: Path) -> dict[str, Any]:
    """Epoch times of 1 rank, 2 ranks on one node and 2 ranks on two emulated nodes."""
    from streamal.cluster.plan import RankPlacement

    n_train, epochs, repeats = TRAIN_SIZES[quick]
    rows = make_train_store(tmp / "train.h5", n_train, max(100, n_train // 6))
    mpiexec = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    two = [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)]
    layouts: dict[str, tuple[list, str | None]] = {
        "1rank": ([RankPlacement(0, (0,), None)], None),
        "2ranks_1node": (two, None),
    }
    if mpiexec:
        layouts["2ranks_2nodes"] = (two, f"{mpiexec} -hosts localhost,127.0.0.1 -n 2 -ppn 1")
    runs: dict[str, list[dict]] = {name: [] for name in layouts}
    names = list(layouts)
    for r in range(repeats):  # rotating order: no layout always runs first
        for name in names[r % len(names) :] + names[: r % len(names)]:
            ranks, prefix = layouts[name]
            runs[name].append(
                train_once(tmp / "train.h5", rows, tmp / f"{name}-{r}", ranks, epochs, prefix)
            )
    out: dict[str, Any] = {
        "model": "diffraction-cnn",
        "train_patterns": len(rows["train"]),
        "val_patterns": len(rows["val"]),
        "epochs": epochs,
        "repeats": repeats,
        "global_batch_size": 64,
        "mpiexec": mpiexec,
        "layouts": {},
    }
    for name, done in runs.items():
        steady = [t for run in done for t in run["epoch_train_s"][1:]]
        out["layouts"][name] = {
            "epoch_s": round(statistics.median(steady), 4),
            "epoch_s_all": [[round(t, 4) for t in run["epoch_train_s"]] for run in done],
            "wall_s": [round(run["wall_s"], 2) for run in done],
            "ranks": done[0]["ranks"],
            "launcher": done[0]["launcher"],
        }
    one = out["layouts"]["1rank"]["epoch_s"]
    out["speedup"] = {name: round(one / v["epoch_s"], 3) for name, v in out["layouts"].items()}
    return out


# -- 3. replay -------------------------------------------------------------------------------------
def ci_config(quick: bool, workflow: str) -> dict[str, Any]:
    """``configs/diffraction-ci.yaml`` as ``workflow``; ``--quick`` drops its last phase."""
    cfg = copy.deepcopy(yaml.safe_load(CI_CONFIG.read_text()))
    if quick:
        cfg["workflow"]["phases"] = cfg["workflow"]["phases"][:2]
    if workflow != cfg["workflow"]["name"]:
        cfg["workflow"] = {"name": workflow, "phases": cfg["workflow"]["phases"]}
    return cfg


def replay_json(run_dir: Path, *extra: str) -> dict[str, Any]:
    """``python -m streamal replay RUN_DIR --json [extra]``: its last stdout line."""
    res = subprocess.run(
        [sys.executable, "-m", "streamal", "replay", str(run_dir), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if res.returncode != 0:
        raise RuntimeError(f"replay of {run_dir} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure_replay(quick: bool, tmp: Path) -> dict[str, Any]:
    """Run the CI campaign(s), replay each from its own timeline, and cross-predict."""
    import _runs

    from streamal.runtime.timeline import load_records

    workflows = ("streaming",) if quick else ("streaming", "serial")
    runs: dict[str, dict[str, Any]] = {}
    for wf in workflows:
        t0 = time.perf_counter()
        run_dir = _runs.run_config(ci_config(quick, wf), tmp / f"ci-{wf}", timeout=900)
        wall = time.perf_counter() - t0
        own = replay_json(run_dir)
        runs[wf] = {
            "run_dir": str(run_dir),
            "campaign_wall_s": round(wall, 1),
            "measured_makespan_s": own["measured_makespan_s"],
            "tasks": len(load_records(run_dir / "timeline.json")),
            "costs": own["costs"],
        }
        runs[wf]["self_prediction"] = {
            "predicted_s": own["predicted_makespan_s"],
            "measured_s": own["measured_makespan_s"],
            "error": own["error"],
        }
    predictions = [
        {
            "case": f"{wf}, fitted on itself",
            "predicted_s": v["self_prediction"]["predicted_s"],
            "measured_s": v["measured_makespan_s"],
            "error": v["self_prediction"]["error"],
        }
        for wf, v in runs.items()
    ]
    for fit_on in runs:
        for target in runs:
            if target == fit_on:
                continue
            other = replay_json(Path(runs[fit_on]["run_dir"]), "--workflow", target)
            measured = runs[target]["measured_makespan_s"]
            predictions.append(
                {
                    "case": f"{target}, fitted on {fit_on}",
                    "predicted_s": other["predicted_makespan_s"],
                    "measured_s": measured,
                    "error": round(other["predicted_makespan_s"] / measured - 1, 4),
                }
            )
    return {
        "config": str(CI_CONFIG.relative_to(ROOT)),
        "phases": ci_config(quick, "streaming")["workflow"]["phases"],
        "runs": runs,
        "predictions": predictions,
    }


# -- plot ------------------------------------------------------------------------------------------
def _spread(one: float, times: list[float]) -> tuple[float, float]:
    """``(below, above)`` a speedup's median: ``one / t`` over every repeat's time ``t``."""
    ratios = [one / t for t in times]
    mid = one / statistics.median(times)
    return mid - min(ratios), max(ratios) - mid


def plot(result: dict[str, Any], path: Path) -> None:
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(17, 4.8))
    top = max(int(k) for v in result["simulation"].values() for k in v["speedup"])
    ideal = np.arange(1, max(top, 2) + 1)
    a1.plot(ideal, ideal, "--", color="grey", lw=1, label="ideal (speedup = cores)", zorder=1)
    for name, v in result["simulation"].items():
        ks = [int(k) for k in v["speedup"]]
        one = v["by_cores"]["1"]["median_s"]
        err = np.array([_spread(one, v["by_cores"][str(k)]["seconds"]) for k in ks]).T
        secs = " → ".join(f"{v['by_cores'][str(k)]['median_s']:.1f}" for k in ks)
        label = f"{name}: {v['samples']} patterns, {secs} s"
        a1.errorbar(ks, list(v["speedup"].values()), yerr=err, fmt="o-", capsize=4, label=label)
    a1.set_xticks(ideal)
    a1.set_xlabel("pinned simulator cores (Parsl sim pool workers)")
    a1.set_ylabel("speedup over 1 core (×; bars: range of repeats)")
    a1.set_title("Simulation: the same batch through simulate_batch", fontsize=10)
    a1.legend(fontsize=8, loc="upper left")

    tr = result["training"]
    lay = tr["layouts"]

    def steady(key: str) -> list[float]:
        return [t for run in lay[key]["epoch_s_all"] for t in run[1:]]

    series = {
        "2ranks_1node": ("2 ranks, one node (streamal launcher)", -0.02),
        "2ranks_2nodes": ("2 ranks, two emulated nodes (MPICH hydra)", 0.02),
    }
    a2.plot([1, 2], [1, 2], "--", color="grey", lw=1, label="ideal (speedup = ranks)", zorder=1)
    one = lay["1rank"]["epoch_s"]
    for key, (label, dx) in series.items():
        if key in lay:
            err = np.array([_spread(one, steady("1rank")), _spread(one, steady(key))]).T
            secs = f"{one:.2f} → {lay[key]['epoch_s']:.2f} s/epoch"
            a2.errorbar(
                [1 + dx, 2 + dx],
                [1.0, tr["speedup"][key]],
                yerr=err,
                fmt="o-",
                capsize=4,
                label=f"{label}: {secs}",
            )
    a2.set_xticks([1, 2])
    a2.set_xlabel("DDP ranks (one pinned core each)")
    a2.set_ylabel("epoch-time speedup over 1 rank (×; bars: range)")
    a2.set_title(
        f"Training: {tr['model']}, {tr['train_patterns']} patterns, "
        f"global batch {tr['global_batch_size']}",
        fontsize=10,
    )
    a2.legend(fontsize=8, loc="upper left")

    preds = result["replay"]["predictions"]
    x = np.arange(len(preds))
    a3.bar(x - 0.18, [p["measured_s"] for p in preds], 0.36, label="measured")
    a3.bar(x + 0.18, [p["predicted_s"] for p in preds], 0.36, label="replay prediction")
    for i, p in enumerate(preds):
        a3.annotate(
            f"{p['error']:+.1%}" if abs(p["error"]) >= 0.0005 else "±0.0%",
            (i + 0.18, p["predicted_s"]),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=8,
        )
    a3.set_xticks(x, [p["case"].replace(", ", "\n") for p in preds], fontsize=8)
    a3.set_xlim(-0.7, len(preds) - 0.3)
    a3.set_ylim(0, 1.3 * max(max(p["measured_s"], p["predicted_s"]) for p in preds))
    a3.set_xlabel(
        f"campaign: {result['replay']['config']} (label: error of the prediction)", fontsize=9
    )
    a3.set_ylabel("makespan (s, first task start to last end)")
    a3.set_title("Replay cost model: predicted vs measured makespan", fontsize=10)
    a3.legend(fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="smaller batches and one campaign (< 5 min)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--results-dir", help="write the JSON and PNG here instead of bench/results")
    args = p.parse_args()
    if args.results_dir:
        _common.RESULTS = Path(args.results_dir)
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        raise SystemExit("bench/scaling.py needs at least 2 usable cores")
    t0 = time.perf_counter()
    parts: dict[str, dict[str, float]] = {}
    measured: dict[str, Any] = {}
    steps = {
        "simulation": lambda tmp: measure_sim(args.quick, 2),
        "training": lambda tmp: measure_training(args.quick, tmp),
        "replay": lambda tmp: measure_replay(args.quick, tmp),
    }
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp, OtherLoad() as other:
        for name, step in steps.items():
            t, before, steal = time.perf_counter(), other.cpu_s, _steal_s()
            measured[name] = step(Path(tmp))
            wall = time.perf_counter() - t
            other.sample()
            parts[name] = {
                "wall_s": round(wall, 1),
                "other_processes_cpu_s": round(other.cpu_s - before, 1),
                "other_share": round((other.cpu_s - before) / (wall * cores), 3),
                # a virtual machine's CPU time taken by its host
                "steal_share": round((_steal_s() - steal) / (wall * cores), 3),
            }
    simulation, training, replay = measured["simulation"], measured["training"], measured["replay"]
    busy = [k for k, v in parts.items() if v["other_share"] + v["steal_share"] > BUSY_SHARE]
    heaviest = sorted(other.by_name.items(), key=lambda kv: -kv[1])[:5]
    self_fit = replay["runs"]["streaming"]["self_prediction"]
    result = {
        "quick": args.quick,
        "sim_speedup_2_cores_cryspy": simulation["diffraction-cryspy"]["speedup"]["2"],
        "sim_speedup_2_cores_tof": simulation["diffraction-tof"]["speedup"]["2"],
        "train_epoch_s_1rank": training["layouts"]["1rank"]["epoch_s"],
        "train_epoch_s_2ranks_1node": training["layouts"]["2ranks_1node"]["epoch_s"],
        "train_epoch_s_2ranks_2nodes": training["layouts"].get("2ranks_2nodes", {}).get("epoch_s"),
        "train_speedup_2ranks_1node": training["speedup"]["2ranks_1node"],
        "train_speedup_2ranks_2nodes": training["speedup"].get("2ranks_2nodes"),
        "replay_predicted_makespan_s": self_fit["predicted_s"],
        "replay_measured_makespan_s": self_fit["measured_s"],
        "replay_error": self_fit["error"],
        "replay_cross_errors": {
            p["case"]: p["error"] for p in replay["predictions"] if "itself" not in p["case"]
        },
        "simulation": simulation,
        "training": training,
        "replay": replay,
        "notes": [
            *(
                [
                    f"WARNING: other processes (or the hypervisor) took more than "
                    f"{BUSY_SHARE:.0%} of the CPU during {', '.join(busy)} (see parts): "
                    "those timings are not clean"
                ]
                if busy
                else []
            ),
            f"this machine has {cores} cores: with 2 simulator cores nothing else has a core of "
            "its own; the driver (asyncio loop, store appends), Parsl's interchange and the "
            "idle train-pool worker share them with the simulators",
            "simulation seconds: submit of the first chunk to the last chunk stored, after a "
            "warm-up in which every worker built its simulator; Parsl start-up excluded",
            "training: the global batch is fixed, so 2 ranks each run the same number of "
            "steps on half-size batches (the same training, strong scaling); epoch time is "
            "the training part of an epoch (validation excluded), median after the first epoch",
            "two emulated nodes: both hosts (localhost, 127.0.0.1) are this machine; the ranks "
            "meet over loopback, so this measures the MPI launch path, not a network",
            "replay error = predicted / measured makespan - 1; 'fitted on itself' predicts the "
            "run whose timeline it was fitted on; 'fitted on X' predicts another workflow's run",
        ],
        "parts": parts,
        "other_processes_cpu_s": {k: round(v, 1) for k, v in heaviest},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    plot(result, _common.RESULTS / "scaling.png")
    _common.emit("scaling", result, args.json)


if __name__ == "__main__":
    main()
