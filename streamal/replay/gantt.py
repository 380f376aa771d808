"""A predicted Gantt chart beside a measured one: one lane per concurrently busy worker of each
pool, stages coloured alike in both, times in seconds since each run's first task started."""

from __future__ import annotations

from pathlib import Path

from streamal.runtime.timeline import TaskRecord

#: More concurrent tasks than this in a pool: draw each stage's span instead of each task.
MAX_LANES = 12


def _timed(records: list[TaskRecord]) -> list[TaskRecord]:
    return [r for r in records if r.started is not None and r.ended is not None]


def _pack(bars: list[tuple[float, float, str]]) -> list[list[tuple[float, float, str]]]:
    """Bars ``(start, end, stage)`` on the fewest lanes where none overlap (first fit)."""
    lanes: list[list[tuple[float, float, str]]] = []
    for bar in sorted(bars):
        for lane in lanes:
            if lane[-1][1] <= bar[0] + 1e-9:
                lane.append(bar)
                break
        else:
            lanes.append([bar])
    return lanes


def _lanes(records: list[TaskRecord]) -> list[tuple[str, list[tuple[float, float, str]]]]:
    """``[(label, bars)]`` per pool, ``sim`` first; times relative to the first start."""
    timed = _timed(records)
    t0 = min(r.started for r in timed)
    out = []
    for pool in sorted({r.pool for r in timed}, key=lambda p: (p != "sim", p)):
        bars = [(r.started - t0, r.ended - t0, r.stage) for r in timed if r.pool == pool]
        lanes = _pack(bars)
        if len(lanes) > MAX_LANES:  # many small chunks: one bar per stage span
            spans: dict[str, tuple[float, float]] = {}
            for s, e, stage in bars:
                a, b = spans.get(stage, (s, e))
                spans[stage] = (min(a, s), max(b, e))
            lanes = _pack([(s, e, stage) for stage, (s, e) in spans.items()])
            label = f"{pool} (stage spans)"
        else:
            label = pool
        out += [
            (f"{label} {i + 1}" if len(lanes) > 1 else label, lane) for i, lane in enumerate(lanes)
        ]
    return out


def _makespan(records: list[TaskRecord]) -> float:
    timed = _timed(records)
    return max(r.ended for r in timed) - min(r.started for r in timed) if timed else 0.0


def draw(
    predicted: list[TaskRecord],
    path: str | Path,
    *,
    measured: list[TaskRecord] | None = None,
    title: str = "Replay",
    labels: tuple[str, str] = ("measured", "predicted"),
    compare: bool = True,
) -> Path:
    """Write the chart to ``path`` (PNG): ``measured`` above ``predicted`` when given; the
    title gives the makespan error unless ``compare`` is false (a what-if of another run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(labels[0], measured)] if measured else []
    panels.append((labels[1], predicted))
    lanes = [_lanes(records) for _, records in panels]
    first: dict[str, float] = {}
    for ls in lanes:
        for _, bars in ls:
            for s, _, stage in bars:
                first[stage] = min(first.get(stage, s), s)
    stages = sorted(first, key=first.get)  # legend in order of first start
    colours = {s: plt.cm.tab20(i % 20) for i, s in enumerate(stages)}
    heights = [max(1, len(ls)) for ls in lanes]
    fig, axes = plt.subplots(
        len(panels),
        1,
        sharex=True,
        squeeze=False,
        figsize=(11, 1.6 + 0.45 * sum(heights) + 0.6 * len(panels)),
        gridspec_kw={"height_ratios": heights},
    )
    span = max(_makespan(records) for _, records in panels) or 1.0
    for ax, (name, records), pool_lanes in zip(axes[:, 0], panels, lanes, strict=True):
        for y, (_, bars) in enumerate(pool_lanes):
            for s, e, stage in bars:
                ax.barh(
                    y,
                    max(e - s, span * 1e-3),
                    left=s,
                    height=0.8,
                    color=colours[stage],
                    edgecolor="black",
                    linewidth=0.3,
                )
                if e - s > 0.05 * span:
                    ax.text((s + e) / 2, y, stage, ha="center", va="center", fontsize=7)
        ax.set_yticks(range(len(pool_lanes)), [label for label, _ in pool_lanes], fontsize=8)
        ax.invert_yaxis()
        ax.set_ylabel(f"{name}\n{_makespan(records):.1f} s", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the first task started")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in stages]
    fig.legend(
        handles, stages, loc="center right", fontsize=7, frameon=False, ncol=1 + len(stages) // 16
    )
    if measured:
        err = _makespan(predicted) / max(_makespan(measured), 1e-12) - 1
        title = (
            f"{title}: makespan {labels[0]} {_makespan(measured):.1f} s, "
            f"{labels[1]} {_makespan(predicted):.1f} s" + (f" ({err:+.1%})" if compare else "")
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
