"""Fit a :class:`~streamal.replay.costs.CostModel` from a run directory's own measurements.

Reads ``run.json`` (plan and config), ``timeline.json`` (one :class:`TaskRecord` per attempt)
and ``metrics.json`` (each training's mean epoch time), and fits, by least squares on the
very model the replay runs:

* simulation: seconds per sample per core, a fixed cost per chunk, the cost of policy-drawn
  samples relative to uniform ones and the slowdown while a training runs (from how much of
  each chunk overlapped a training), the first chunk's warm-up on each worker;
* training: start-up, per-epoch and per-sample-epoch seconds and the slowdown while the
  simulator pool is busy (from how busy it was during each training);
* the AL task per study sample (and the first one's warm-up), and the scheduler's overheads:
  submit → start, end → the workflow's next step, and a simulator worker's gap between chunks.

A parameter the run cannot tell apart (no overlap, one chunk size, one kind of sample) keeps
its neutral value and says so in ``sources``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamal.errors import ConfigError
from streamal.replay.costs import CostModel, ddp_factor
from streamal.replay.workload import Phase, Resources, Workload
from streamal.runtime.timeline import TaskRecord, load_records

MIN_OVERLAP = 0.05  # share of a kind's time that must overlap the other to fit a slowdown


@dataclass
class MeasuredRun:
    """What a run directory recorded."""

    path: Path
    records: list[TaskRecord]
    plan: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, dict[str, Any]]

    @property
    def makespan(self) -> float:
        timed = [r for r in self.records if r.started is not None and r.ended is not None]
        return max(r.ended for r in timed) - min(r.started for r in timed)


def load_run(path: str | Path) -> MeasuredRun:
    """A run directory's records, plan, config and metrics (ConfigError naming what is missing)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"RUN_DIR: {path} is not a directory")
    try:
        info = json.loads((path / "run.json").read_text())
        plan, config = info["plan"], info["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"RUN_DIR: {path} has no readable run.json with a plan and config "
            "(is it a run directory?)"
        ) from None
    source = next(
        (path / n for n in ("timeline.json", "timeline.jsonl") if (path / n).exists()), None
    )
    records = load_records(source) if source else []
    done = [r for r in records if r.status == "done" and r.started and r.ended]
    if not done:
        raise ConfigError(f"RUN_DIR: {path} has no finished tasks in timeline.json(l)")
    try:
        phases = json.loads((path / "metrics.json").read_text()).get("phases", [])
    except (OSError, ValueError):
        phases = []
    metrics = {p["phase"]: p for p in phases if isinstance(p, dict) and "phase" in p}
    return MeasuredRun(path, records, plan, config, metrics)


def _done(run: MeasuredRun, pool: str, prefix: str = "") -> list[TaskRecord]:
    return sorted(
        (
            r
            for r in run.records
            if r.pool == pool
            and r.status == "done"
            and r.started
            and r.ended
            and r.stage.startswith(prefix)
        ),
        key=lambda r: r.started,
    )


def _samples(records: list[TaskRecord], split: str, stages: tuple[str, ...]) -> int:
    return sum(
        int(r.info.get("samples", 0))
        for r in records
        if r.info.get("split") == split and r.stage in stages
    )


def recorded_splits(run: MeasuredRun) -> tuple[tuple[int, float], ...]:
    """The streaming splits the run chose (``al/split-k.json``)."""
    out = []
    for path in sorted((run.path / "al").glob("split-*.json")):
        try:
            out.append(
                (int(path.stem.split("-")[1]), float(json.loads(path.read_text())["fraction"]))
            )
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
    return tuple(sorted(out))


def workload_of(run: MeasuredRun) -> Workload:
    """The run's workload: its config's phases, set sizes counted in its timeline, the splits
    it chose."""
    wf, sims = run.config.get("workflow", {}), _done(run, "sim")
    options = wf.get("options") or {}
    cfg_phases = wf.get("phases") or []
    if not cfg_phases:
        raise ConfigError(f"RUN_DIR: {run.path}/run.json config has no workflow.phases")
    train0 = _samples(sims, "train", ("S0",))
    sim_cfg = run.config.get("simulator") or {}
    phases = (
        Phase(train0, int(cfg_phases[0]["epochs"])),
        *(Phase(int(p["samples"]), int(p["epochs"])) for p in cfg_phases[1:]),
    )
    return Workload(
        workflow=wf.get("name", ""),
        phases=phases,
        val=_samples(sims, "val", ("S0",)),
        test=_samples(sims, "test", ("S0",)),
        study=_samples(sims, "study", ("S0", "S'0")),
        split_fraction=options.get("split_fraction", 0.5),
        min_fraction=options.get("min_fraction", 0.1),
        chunk_size=sim_cfg.get("chunk_size"),
        min_new_samples=options.get("min_new_samples"),
        chunks_in_flight=options.get("chunks_in_flight"),
        min_epochs=options.get("min_epochs", 1),
        recorded_splits=recorded_splits(run) if wf.get("name") == "streaming" else (),
    )


def resources_of(run: MeasuredRun) -> Resources:
    """The run's node plan as replay resources."""
    plan, sim_cfg = run.plan, run.config.get("simulator") or {}
    per_worker = int(sim_cfg.get("mpi_ranks") or 1)
    launcher = (run.config.get("train") or {}).get("launcher", "auto")
    return Resources(
        nodes=int(plan.get("nodes", 1)),
        sim_workers=max(1, len(plan["sim_cores"]) // per_worker),
        cores_per_sim_worker=per_worker,
        ranks_per_node=max(1, len(plan["trainer_ranks"])),
        train_all_nodes=launcher != "local",
    )


# -- overlap measurements ------------------------------------------------------------------------
def _overlap(span: tuple[float, float], others: list[tuple[float, float]]) -> float:
    """Seconds of ``span`` covered by the union of ``others``."""
    s, e = span
    covered, cursor = 0.0, s
    for a, b in sorted(others):
        a, b = max(a, cursor), min(b, e)
        if b > a:
            covered, cursor = covered + b - a, b
    return covered


def _busy_pieces(span: tuple[float, float], sims: list[TaskRecord], workers: int) -> list:
    """``[(seconds, busy fraction of the sim pool)]`` over ``span``."""
    s, e = span
    cuts = sorted({s, e, *(t for r in sims for t in (r.started, r.ended) if s < t < e)})
    pieces = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        mid = (a + b) / 2
        running = sum(1 for r in sims if r.started <= mid < r.ended)
        pieces.append((b - a, min(1.0, running / workers)))
    return pieces


def _least_squares(residuals, x0: list[float], lower: list[float], upper: list[float]):  # noqa: ANN001, ANN202
    from scipy.optimize import least_squares

    x0 = [min(max(v, lo + 1e-9), hi - 1e-9) for v, lo, hi in zip(x0, lower, upper, strict=True)]
    return least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac").x


# -- the fits ------------------------------------------------------------------------------------
def _origin(r: TaskRecord) -> str:
    if r.info.get("split") == "study":
        return "sweep"
    return "uniform" if r.stage in ("S0", "C0") else "policy"


def fit_simulation(run: MeasuredRun, res: Resources) -> dict[str, Any]:
    """Simulation parameters (and ``_free``: which the run could tell apart)."""
    sims = [r for r in _done(run, "sim") if r.info.get("samples")]
    trains = [(r.started, r.ended) for r in _done(run, "train", "T")]
    if not sims:
        raise ConfigError(f"RUN_DIR: {run.path} has no finished simulation tasks to fit")
    seen, first, steady = set(), [], []
    for r in sims:
        key = (r.manager, tuple(r.worker_cores))
        (steady if key in seen else first).append(r)
        seen.add(key)
    fit_on = steady if len(steady) >= 2 else sims

    def arrays(rs: list[TaskRecord]) -> tuple[np.ndarray, ...]:
        """Samples, seconds, share overlapped by a training, policy-drawn?"""
        spans = [(r.started, r.ended) for r in rs]
        return (
            np.array([r.info["samples"] for r in rs], float),
            np.array([r.duration for r in rs]),
            np.array([_overlap(sp, trains) / max(sp[1] - sp[0], 1e-12) for sp in spans]),
            np.array([_origin(r) == "policy" for r in rs], bool),
        )

    n, d, phi, policy = arrays(fit_on)
    cores = res.cores_per_sim_worker
    free = {
        "sim_sample_s": True,
        "sim_task_s": len(set(n)) >= 2,
        "policy_sample_factor": 2 <= policy.sum() <= len(policy) - 2,
        "sim_slowdown": (phi * d).sum() >= MIN_OVERLAP * d.sum() and (phi < 0.5).sum() >= 2,
    }
    x0 = {
        "sim_sample_s": float(np.median(d / n)) * cores,
        "sim_task_s": 0.0,
        "policy_sample_factor": 1.0,
        "sim_slowdown": 1.0,
    }
    bounds = {
        "sim_sample_s": (0, np.inf),
        "sim_task_s": (0, np.inf),
        "policy_sample_factor": (0.05, 20),
        "sim_slowdown": (0.2, 20),
    }
    names = [k for k, v in free.items() if v]

    def predict(p: dict[str, float], n, phi, policy) -> np.ndarray:  # noqa: ANN001
        factor = np.where(policy, p["policy_sample_factor"], 1.0)
        work = p["sim_task_s"] + n * p["sim_sample_s"] * factor / cores
        return work / (1 - phi + phi / p["sim_slowdown"])

    def residuals(x: np.ndarray) -> np.ndarray:
        p = {**x0, **dict(zip(names, x, strict=True))}
        return (predict(p, n, phi, policy) - d) / d.mean()  # seconds: the makespan's currency

    x = _least_squares(
        residuals,
        [x0[k] for k in names],
        [bounds[k][0] for k in names],
        [bounds[k][1] for k in names],
    )
    p = {**x0, **{k: float(v) for k, v in zip(names, x, strict=True)}}
    warm: list[float] = []
    if fit_on is steady and first:  # the first chunk on each worker, beyond the model
        n1, d1, phi1, policy1 = arrays(first)
        warm = list(d1 - predict(p, n1, phi1, policy1))
    p["sim_warmup_s"] = max(0.0, statistics.mean(warm)) if warm else 0.0
    p["_free"] = free
    return p


def fit_training(run: MeasuredRun, res: Resources, internode: float) -> dict[str, Any]:
    """Training parameters; ``per_sample`` is per rank on one node (undoing ``ddp(M)/R``)."""
    trains = [r for r in _done(run, "train", "T") if "epochs" in r.info]
    if not trains:
        raise ConfigError(f"RUN_DIR: {run.path} has no finished training tasks to fit")
    sims = _done(run, "sim")
    workers = res.total_sim_workers
    pieces = [_busy_pieces((r.started, r.ended), sims, workers) for r in trains]
    d = np.array([r.duration for r in trains])
    n = np.array([r.info.get("samples", 0) for r in trains], float)
    e = np.array([r.info["epochs"] for r in trains], float)
    m = np.array([run.metrics.get(r.stage, {}).get("epoch_s_mean") or np.nan for r in trains])
    overlapped = sum(t * b for ps in pieces for t, b in ps)
    free = {
        "train_start_s": True,
        "train_epoch_s": len(set(n)) >= 2,
        "train_sample_epoch_s": True,
        "train_slowdown": overlapped >= MIN_OVERLAP * d.sum() and len(trains) >= 3,
    }
    names = [k for k, v in free.items() if v]
    per_rank = ddp_factor(res.train_nodes, internode) / res.ranks
    x0 = {
        "train_start_s": 0.0,
        "train_epoch_s": 0.0,
        "train_slowdown": 1.0,
        "train_sample_epoch_s": float(np.median(d / (e * np.maximum(n, 1)))) / per_rank,
    }

    def work(sigma: float) -> np.ndarray:
        return np.array([sum(t / (1 + (sigma - 1) * b) for t, b in ps) for ps in pieces])

    def residuals(x: np.ndarray) -> np.ndarray:
        p = {**x0, **dict(zip(names, x, strict=True))}
        w = work(p["train_slowdown"])
        epoch = p["train_epoch_s"] + n * p["train_sample_epoch_s"] * per_rank
        out = list((p["train_start_s"] + e * epoch - w) / d.mean())
        out += [v for v in (epoch - m * w / d) * e / d.mean() if np.isfinite(v)]
        return np.array(out)

    upper = {"train_slowdown": 20.0}
    lower = {"train_slowdown": 0.2}
    x = _least_squares(
        residuals,
        [x0[k] for k in names],
        [lower.get(k, 0.0) for k in names],
        [upper.get(k, np.inf) for k in names],
    )
    p = {**x0, **{k: float(v) for k, v in zip(names, x, strict=True)}}
    p["_free"] = free
    return p


def fit_overheads(run: MeasuredRun, study: int) -> dict[str, float]:
    """AL cost and the scheduler's overheads."""
    out: dict[str, float] = {}
    als = _done(run, "train", "AL")
    if als and study:
        rest = [r.duration for r in als[1:]] or [als[0].duration]
        out["al_sample_s"] = statistics.median(rest) / study
        out["al_warmup_s"] = max(0.0, als[0].duration - statistics.median(rest))
    done = [r for r in run.records if r.status == "done" and r.started and r.ended]
    trainpool = [r for r in done if r.pool == "train"]
    out["dispatch_s"] = (
        statistics.median(r.started - r.submitted for r in trainpool) if trainpool else 0.0
    )
    returns = [r.returned - r.ended for r in done]
    firsts: dict[str, float] = {}
    for r in done:
        firsts[r.stage] = min(firsts.get(r.stage, r.submitted), r.submitted)
    reacts = []
    for s in firsts.values():
        before = [r.returned for r in done if r.returned <= s]
        if before:
            reacts.append(s - max(before))
    out["return_s"] = statistics.median(returns) + (statistics.median(reacts) if reacts else 0)
    gaps, workers = [], {}
    for r in _done(run, "sim"):  # the same worker's next chunk, already waiting
        workers.setdefault((r.manager, tuple(r.worker_cores)), []).append(r)
    for chunks in workers.values():
        for a, b in zip(chunks, chunks[1:], strict=False):
            if b.submitted < a.ended <= b.started:
                gaps.append(b.started - a.ended)
    out["release_s"] = statistics.median(gaps) if gaps else 0.0
    return out


def fit_costs(run: MeasuredRun, res: Resources | None = None, internode: float = 0.30) -> CostModel:
    """The cost model of ``run`` (see the module docstring)."""
    res = res or resources_of(run)
    sim = fit_simulation(run, res)
    train = fit_training(run, res, internode)
    over = fit_overheads(run, workload_of(run).study)
    sources = {}
    for part in (sim, train):
        for name, free in part.pop("_free").items():
            sources[name] = (
                f"fitted: {run.path.name} timeline"
                if free
                else f"not measurable in {run.path.name}: kept neutral"
            )
    for name in ("sim_warmup_s", *over):
        sources[name] = f"measured: {run.path.name} timeline"
    sources["ddp_internode_cost"] = (
        "assumed: paper Sec. V-D (4 ranks on 4 nodes: 1.45x)" if internode else "assumed: 0"
    )
    return CostModel(**sim, **train, **over, ddp_internode_cost=internode, sources=sources)
