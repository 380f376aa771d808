"""How busy each pool was over the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamal.runtime.timeline import TaskRecord


def utilisation(
    records: list[TaskRecord], pool: str, workers: int, resolution: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of a pool's workers busy over time (times relative to the first start)."""
    spans = [
        (r.started, r.ended)
        for r in records
        if r.pool == pool and r.started is not None and r.ended is not None
    ]
    every = [r for r in records if r.started is not None and r.ended is not None]
    if not spans or not every:
        return np.zeros(0), np.zeros(0)
    t0 = min(r.started for r in every)
    t1 = max(r.ended for r in every)
    t = np.linspace(t0, t1, resolution)
    busy = np.zeros_like(t)
    for s, e in spans:
        busy += (t >= s) & (t < e)
    return t - t0, np.minimum(busy / max(workers, 1), 1.0)


def utilisation_plot(records: list[TaskRecord], plan: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = {"sim": len(plan.get("sim_cores", [])) or 1, "train": 1}
    fig, ax = plt.subplots(figsize=(10, 3))
    for pool, n in workers.items():
        t, u = utilisation(records, pool, n)
        if len(t):
            ax.plot(t, 100 * u, label=f"{pool} ({n} worker{'s' if n > 1 else ''})")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of workers busy")
    ax.set_xlabel("seconds since the first task started")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
