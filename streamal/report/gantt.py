"""Gantt chart of a run's tasks: one lane per worker of each pool."""

from __future__ import annotations

from pathlib import Path

from streamal.runtime.timeline import TIMEOUT, TaskRecord

#: Gantt hatch per attempt status (``done`` is plain); a timed-out attempt also gets a red edge.
STATUS_HATCH = {"failed": "xx", "retried": "xx", "cancelled": "..", "lost": "xx", TIMEOUT: "//"}
TIMEOUT_EDGE = "#d62728"


def gantt_plot(records: list[TaskRecord], path: Path) -> Path:
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
