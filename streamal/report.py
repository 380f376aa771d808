"""Pictures and tables of a run: Gantt chart per pool, pool utilisation, metrics per phase,
and a per-task-group timing table (like the paper's Table III)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from streamal import durable
from streamal.runtime.timeline import TIMEOUT, TaskRecord, load_records

#: Gantt hatch per attempt status (``done`` is plain); a timed-out attempt also gets a red edge.
STATUS_HATCH = {"failed": "xx", "retried": "xx", "cancelled": "..", "lost": "xx", TIMEOUT: "//"}
TIMEOUT_EDGE = "#d62728"


def _records(run_dir: Path) -> list[TaskRecord]:
    for name in ("timeline.json", "timeline.jsonl"):
        if (run_dir / name).exists():
            return load_records(run_dir / name)
    return []


def phase_table(records: list[TaskRecord]) -> list[dict]:
    """One row per task group (``stage`` label): pool, tasks, span start/end, busy seconds."""
    groups: dict[str, list[TaskRecord]] = defaultdict(list)
    for r in records:
        if r.started is not None and r.ended is not None:
            groups[r.stage or r.name].append(r)
    if not groups:
        return []
    t0 = min(r.started for rs in groups.values() for r in rs)
    rows = []
    for phase, rs in groups.items():
        start, end = min(r.started for r in rs), max(r.ended for r in rs)
        rows.append(
            {
                "group": phase,
                "pool": "/".join(sorted({r.pool for r in rs})),
                "tasks": len(rs),
                "failed": sum(r.status == "failed" for r in rs),
                "timeout": sum(r.status == TIMEOUT for r in rs),
                "start_s": start - t0,
                "end_s": end - t0,
                "span_s": end - start,
                "busy_s": sum(r.duration for r in rs),
            }
        )
    return sorted(rows, key=lambda r: r["start_s"])


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


def _gantt(records: list[TaskRecord], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in records if r.started is not None and r.ended is not None]
    t0 = min(r.started for r in done)
    span = max(r.ended for r in done) - t0
    pools = sorted({r.pool for r in done}, key=lambda p: (p != "sim", p))
    phases = sorted({r.stage for r in done})
    colours = {p: plt.cm.tab20(i % 20) for i, p in enumerate(phases)}
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.9 * len(pools) + 0.04 * len(done)))
    yticks, ylabels, y = [], [], 0
    for pool in pools:
        # one lane per worker core so concurrent tasks do not hide each other
        lanes = sorted({tuple(r.worker_cores) for r in done if r.pool == pool})
        for lane in lanes:
            for r in (r for r in done if r.pool == pool and tuple(r.worker_cores) == lane):
                hatch = STATUS_HATCH.get(r.status, "xx") if r.status != "done" else None
                ax.barh(
                    y,
                    r.ended - r.started,
                    left=r.started - t0,
                    height=0.8,
                    color=colours[r.stage],
                    # a tiny task still shows as a line; a timed-out one has a red edge
                    edgecolor=TIMEOUT_EDGE if r.status == TIMEOUT else colours[r.stage],
                    linewidth=1.0,
                    hatch=hatch,
                )
                if r.ended - r.started > 0.04 * span:  # name the long tasks on their bar
                    ax.text(
                        r.started - t0 + (r.ended - r.started) / 2,
                        y,
                        r.stage,
                        ha="center",
                        va="center",
                        fontsize=8,
                    )
            yticks.append(y)
            ylabels.append(f"{pool} cores {','.join(map(str, lane))}")
            y += 1
        y += 0.5
    ax.set_yticks(yticks, ylabels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first task started")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in phases]
    labels = list(phases)
    for status in sorted({r.status for r in done} - {"done"}):
        edge = TIMEOUT_EDGE if status == TIMEOUT else "black"
        hatch = STATUS_HATCH.get(status, "xx")
        handles.append(plt.Rectangle((0, 0), 1, 1, fill=False, edgecolor=edge, hatch=hatch))
        labels.append(status)
    ax.legend(
        handles,
        labels,
        ncol=1 + len(labels) // 12,
        fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    ax.set_title("Tasks per pool (hatched: failed, retried, cancelled; // red edge: timeout)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _utilisation_plot(records: list[TaskRecord], plan: dict, path: Path) -> Path:
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


def _metrics_plot(phases: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for p in phases for k in p.get("test", {})})
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        xs = [p["n_train"] for p in phases if key in p.get("test", {})]
        ys = [p["test"][key] for p in phases if key in p.get("test", {})]
        ax.plot(xs, ys, "o-")
        for p, x, yv in zip(phases, xs, ys, strict=False):
            ax.annotate(p["phase"], (x, yv), fontsize=7)
        ax.set_title(f"test {key}", fontsize=9)
        ax.set_xlabel("training samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Task groups (cf. the paper's Table III)")
    columns = ("group", "pool", "tasks", "failed", "timeout")
    for col in (*columns, "start (s)", "end (s)", "span (s)", "busy (s)"):
        table.add_column(col, justify="left" if col in ("group", "pool") else "right")
    for r in rows:
        table.add_row(
            r["group"],
            r["pool"],
            str(r["tasks"]),
            str(r["failed"]),
            str(r.get("timeout", 0)),
            f"{r['start_s']:.1f}",
            f"{r['end_s']:.1f}",
            f"{r['span_s']:.1f}",
            f"{r['busy_s']:.1f}",
        )
    Console(stderr=True).print(table)


def write_report(run_dir: Path) -> list[Path]:
    """Write ``report/*.png`` and ``report/tasks.json`` and print the timing table."""
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    records = _records(run_dir)
    written: list[Path] = []
    if not records:
        return written
    rows = phase_table(records)
    durable.write_json(out / "tasks.json", rows)
    written.append(out / "tasks.json")
    if any(r.started is not None for r in records):
        written.append(_gantt(records, out / "gantt.png"))
        status = durable.read_json(run_dir / "run.json", default={})
        plan = status.get("plan", {}) if isinstance(status, dict) else {}
        written.append(_utilisation_plot(records, plan, out / "utilisation.png"))
    metrics = durable.read_json(run_dir / "metrics.json", default={})
    phases = metrics.get("phases", []) if isinstance(metrics, dict) else []
    if any(p.get("test") for p in phases):
        written.append(_metrics_plot(phases, out / "metrics.png"))
    print_table(rows)
    if (run_dir / "store.h5").exists():
        summary = store_summary(run_dir / "store.h5")
        durable.write_json(out / "samples.json", summary)
        written.append(out / "samples.json")
        from rich.console import Console

        Console(stderr=True).print(
            f"samples stored: {summary['stored']} "
            + " ".join(f"{k}={v}" for k, v in summary["by_split"].items())
            + f"; failed: {summary['failed']}"
            + (f" (first error: {summary['first_error']})" if summary["failed"] else "")
        )
    return written


def store_summary(path: Path) -> dict:
    """Samples per split and phase, and the failed samples, of a store."""
    from streamal.data.store import SPLITS, SampleStore

    with SampleStore(path, mode="r") as store:
        failures = store.failures()
        by_split = {s: len(store.select(split=s)) for s in SPLITS}
        phases = sorted({b.phase for b in store.batches()})
        return {
            "stored": len(store),
            "by_split": {k: v for k, v in by_split.items() if v},
            "by_phase": {str(p): len(store.select(phase=p)) for p in phases},
            "failed": len(failures),
            "first_error": failures[0]["error"] if failures else None,
        }
