"""How busy each pool was over the run.

A task that mostly waits (a poller such as the nas prediction engine, marked with
``info={"waits": True}`` when it is submitted) holds a worker but is not counted as busy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamal.report.figure import pyplot, save
from streamal.runtime.timeline import TaskRecord

__all__ = ["pool_workers", "utilisation", "utilisation_plot", "waits"]

WAITS = "waits"  # TaskRecord.info key: the task mostly waits (not counted as busy)


def waits(record: TaskRecord) -> bool:
    """Whether a task was marked as mostly waiting (``info={"waits": True}``)."""
    return isinstance(record.info, dict) and bool(record.info.get(WAITS))


def pool_workers(
    plan: Mapping[str, Any], *, train_per_rank: bool = False, sim_cores_per_worker: int = 1
) -> dict[str, int]:
    """Workers of the ``sim`` and ``train`` pools over every node, from ``run.json``'s plan.

    Args:
        plan: :meth:`~streamal.cluster.plan.NodePlan.to_json` (``sim_cores``,
            ``trainer_ranks`` of one node, ``nodes``).
        train_per_rank: One train worker per trainer rank (the workflow's
            ``model_per_rank``), else one training at a time over all ranks.
        sim_cores_per_worker: Cores of one simulator worker (MPI simulators: its ranks).
    """
    nodes = int(plan.get("nodes", 1) or 1)
    sim = max(1, len(plan.get("sim_cores", [])) // max(sim_cores_per_worker, 1))
    ranks = len(plan.get("trainer_ranks", [])) or 1
    return {"sim": sim * nodes, "train": ranks * nodes if train_per_rank else 1}


def _concurrency(spans: Sequence[tuple[float, float]]) -> int:
    """The most spans that overlap at one time (by more than clock rounding)."""
    from streamal.report.gantt import pack_intervals

    return max(pack_intervals(spans), default=-1) + 1


def utilisation(
    records: list[TaskRecord], pool: str, workers: int, resolution: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of a pool's workers busy over time (times relative to the first start).

    Each of ``resolution`` time bins holds the busy worker-seconds in it over the bin's
    worker-seconds (short tasks count in full). Tasks that wait (:func:`waits`) are skipped.
    """
    every = [r for r in records if r.started is not None and r.ended is not None]
    spans = np.array(
        [(r.started, r.ended) for r in every if r.pool == pool and not waits(r)], dtype=float
    ).reshape(-1, 2)
    if not len(spans) or not every:
        return np.zeros(0), np.zeros(0)
    t0 = min(r.started for r in every)
    t1 = max(max(r.ended for r in every), t0 + 1e-9)
    edges = np.linspace(t0, t1, resolution + 1)
    lo, hi = edges[:-1], edges[1:]
    busy = np.zeros(resolution)
    for chunk in np.array_split(spans, max(1, len(spans) // 512)):
        overlap = np.minimum(chunk[:, 1:2], hi) - np.maximum(chunk[:, 0:1], lo)
        busy += np.clip(overlap, 0.0, None).sum(axis=0)
    frac = busy / ((hi - lo) * max(workers, 1))
    return (lo + hi) / 2 - t0, np.minimum(frac, 1.0)


def utilisation_plot(
    records: list[TaskRecord],
    plan: Mapping[str, Any],
    path: Path,
    workers: Mapping[str, int] | None = None,
) -> Path:
    """Plot the percentage of busy workers of each pool over time to ``path``.

    Args:
        records: The run's task records.
        plan: ``run.json``'s plan (sizes the pools when ``workers`` is not given).
        path: The PNG to write.
        workers: Workers per pool (:func:`pool_workers`); a pool is never given fewer
            workers than it had tasks running at once.
    """
    plt = pyplot()
    workers = dict(workers or pool_workers(plan))
    timed = [r for r in records if r.started is not None and r.ended is not None]
    pools = sorted({r.pool for r in timed}, key=lambda p: (p not in ("sim", "train"), p))
    t0 = min((r.started for r in timed), default=0.0)
    span = max((r.ended for r in timed), default=t0 + 1) - t0
    unit, unit_name = (
        (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 180 else (1, "s")
    )
    fig, ax = plt.subplots(figsize=(11, 3.6))
    skipped = 0
    for pool in pools:
        spans = [(r.started, r.ended) for r in timed if r.pool == pool and not waits(r)]
        n = max(workers.get(pool, 1), _concurrency(spans))
        t, u = utilisation(timed, pool, n)
        waiting = sum(waits(r) for r in timed if r.pool == pool)
        skipped += waiting
        if not len(t):
            continue
        mean = 100 * float(u.mean())
        label = f"{pool}: {n} worker{'s' if n > 1 else ''}, {mean:.0f} % busy on average"
        if waiting:
            label += f" ({waiting} waiting task{'s' if waiting > 1 else ''} not counted)"
        ax.plot(t / unit, 100 * u, label=label, lw=1.2)
    ax.set_ylim(0, 105)
    ax.set_xlim(0, span / unit)
    ax.set_ylabel("workers busy (%)")
    ax.set_xlabel(f"time since the first task started ({unit_name})")
    title = "Pool utilisation (busy worker-seconds per time bin)"
    if skipped:
        title += "; tasks that mostly wait (pollers) count as idle"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return save(fig, path)
