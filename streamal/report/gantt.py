"""Gantt chart of a run's tasks: one lane per worker (or concurrent task slot) of each pool.

Colours are fixed per task *kind* (the stage label less its phase number: ``S``, ``S'``,
``T``, ``AL``, ...), one hue per kind and a shade per phase, so a kind looks the same in
every run. Lanes have a fixed height; a pool with more lanes than fit merges neighbouring
lanes and says so in the title, so the figure stays within :data:`~.figure.MAX_PX`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamal.report.figure import DPI, MAX_PX, pyplot, save
from streamal.runtime.timeline import TIMEOUT, TaskRecord

__all__ = [
    "KINDS",
    "Lane",
    "gantt_plot",
    "pack_intervals",
    "plan_lanes",
    "stage_colour",
    "stage_kind",
    "stage_order",
]

#: Task kind -> (matplotlib colour map, what the kind does). Fixed, so that a kind has the
#: same hue in every run; the shade tells its phases apart.
KINDS: dict[str, tuple[str, str]] = {
    "S": ("Blues", "simulate training data"),
    "S'": ("RdPu", "simulate the study set / the overlapped half of an AL batch"),
    "T": ("Oranges", "train"),
    "AL": ("Greens", "rank the study set by uncertainty"),
    "C": ("Purples", "simulate the continuous feed (generation)"),
    # the nas app's tasks
    "train": ("Oranges", "train a candidate architecture"),
    "similarity": ("Greys", "similarity check of a candidate"),
    "predict": ("Greens", "prediction engine (fitness from partial learning curves)"),
}
#: Colour maps of kinds not in :data:`KINDS`, picked by a stable hash of the kind.
OTHER_HUES = ("YlOrBr", "BuGn", "PuBu", "OrRd", "YlGn", "bone_r")

#: Marker, colour and legend text of each unsuccessful attempt status (drawn on the bar,
#: which is also hatched with a black or, for a timeout, red edge).
STATUS_MARK: dict[str, tuple[str, str, str]] = {
    "failed": ("X", "black", "failed"),
    "retried": ("x", "black", "failed, then retried"),
    "lost": ("X", "dimgray", "lost (its driver died)"),
    TIMEOUT: ("v", "#d62728", "timed out (red edge)"),
    "cancelled": ("|", "black", "cancelled"),
}
TIMEOUT_EDGE = "#d62728"
WAIT_ALPHA = 0.35  # fill opacity of a task that mostly waits (``info={"waits": True}``)

LANE_IN = 0.24  # inches of figure height per lane
LEGEND_LINE_IN = 8 * 1.45 / 72  # inches per legend line (8 pt text)
POOL_GAP = 0.5  # lanes of space between pools
MAX_LANES = 44  # lanes in all; beyond, neighbouring lanes of a pool are merged
WIDTH_IN = 15.0
MAX_STAGE_ENTRIES = 24  # legend entries per stage up to this many, then one per kind

_STAGE = re.compile(r"^(.*?)(\d+)$")


def stage_kind(stage: str) -> tuple[str, int | None]:
    """The kind and phase number of a stage label: ``"S'1"`` -> ``("S'", 1)``,
    ``"AL2"`` -> ``("AL", 2)``, ``"train"`` -> ``("train", None)``."""
    m = _STAGE.match(stage)
    if m is None or not m.group(1):
        return stage, None
    return m.group(1), int(m.group(2))


def stage_colour(stage: str) -> tuple[float, float, float, float]:
    """The RGBA colour of a stage: its kind's hue, shaded by its phase number.

    Depends on the label alone, so a stage has the same colour in every run.
    """
    from matplotlib import colormaps

    kind, phase = stage_kind(stage)
    if kind in KINDS:
        cmap = KINDS[kind][0]
    else:
        cmap = OTHER_HUES[zlib.crc32(kind.encode()) % len(OTHER_HUES)]
    shade = 0.6 if phase is None else 0.45 + 0.15 * (phase % 4)
    return tuple(float(c) for c in colormaps[cmap](shade))


def stage_order(records: Sequence[TaskRecord]) -> list[str]:
    """Stage labels in workflow order: by the first start of a task of each stage."""
    first: dict[str, float] = {}
    for r in records:
        if r.started is not None:
            label = r.stage or r.name
            first[label] = min(first.get(label, r.started), r.started)
    return sorted(first, key=lambda s: (first[s], s))


def pack_intervals(spans: Sequence[tuple[float, float]], tolerance: float = 1e-3) -> list[int]:
    """Lane of each ``(start, end)`` span: the first lane free at its start (greedy packing).

    Spans that overlap in time (by more than ``tolerance``, clock rounding) never share a
    lane; a span may start when the previous one of its lane ends.
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    ends: list[float] = []  # end of the last span of each lane
    lanes = [0] * len(spans)
    for i in order:
        start, end = spans[i]
        lane = next((k for k, last in enumerate(ends) if last <= start + tolerance), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = max(end, start)
        lanes[i] = lane
    return lanes


@dataclass
class Lane:
    """One row of the chart: the tasks of one pool drawn at one height."""

    pool: str
    label: str
    tasks: list[TaskRecord] = field(default_factory=list)


def _cores_label(cores: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 8]`` -> ``"0-3,8"``."""
    if not cores:
        return "?"
    cores = sorted(set(cores))
    parts: list[str] = []
    lo = prev = cores[0]
    for c in [*cores[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(lo) if lo == prev else f"{lo}-{prev}")
        if c is not None:
            lo = prev = c
    return ",".join(parts)


def plan_lanes(
    records: Sequence[TaskRecord], max_lanes: int = MAX_LANES
) -> tuple[list[Lane], list[str]]:
    """The chart's lanes and notes on merged lanes.

    Within a pool, tasks are grouped by the cores they ran on (``worker_cores``) and each
    group is packed greedily (:func:`pack_intervals`), so tasks that ran at the same time
    (several nodes, several tasks on one worker's cores) never share a lane. A pool with
    more lanes than its share of ``max_lanes`` has neighbouring lanes merged into one row.
    """
    timed = [r for r in records if r.started is not None and r.ended is not None]
    pools = sorted({r.pool for r in timed}, key=lambda p: (p not in ("sim", "train"), p))
    per_pool: dict[str, list[Lane]] = {}
    for pool in pools:
        groups: dict[tuple[int, ...], list[TaskRecord]] = {}
        for r in timed:
            if r.pool == pool:
                groups.setdefault(tuple(sorted(r.worker_cores)), []).append(r)
        lanes: list[Lane] = []
        for cores in sorted(groups):
            tasks = groups[cores]
            slots = pack_intervals([(r.started, r.ended) for r in tasks])
            n = max(slots) + 1
            for s in range(n):
                label = f"cores {_cores_label(cores)}" + (f" #{s + 1}" if n > 1 else "")
                lanes.append(
                    Lane(pool, label, [r for r, k in zip(tasks, slots, strict=True) if k == s])
                )
        per_pool[pool] = lanes
    total = sum(len(v) for v in per_pool.values())
    notes: list[str] = []
    out: list[Lane] = []
    for pool in pools:
        lanes = per_pool[pool]
        cap = max(2, (max_lanes * len(lanes)) // total) if total > max_lanes else len(lanes)
        if len(lanes) > cap:
            k = -(-len(lanes) // cap)
            merged = []
            for i in range(0, len(lanes), k):
                group = lanes[i : i + k]
                first, last = group[0].label, group[-1].label.removeprefix("cores ")
                label = f"{first} … {last}" if len(group) > 1 else first
                merged.append(Lane(pool, label, [r for g in group for r in g.tasks]))
            notes.append(f"{pool}: {len(lanes)} lanes merged {k} to a row")
            lanes = merged
        out.extend(lanes)
    return out, notes


def _time_unit(span: float) -> tuple[float, str]:
    if span > 3 * 3600:
        return 3600.0, "h"
    if span > 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _bar_text(r: TaskRecord) -> str:
    candidate = r.info.get("candidate") if isinstance(r.info, dict) else None
    return str(candidate) if candidate else (r.stage or r.name)


def _legend_entries(
    stages: list[str], statuses: set[str], waiting: set[str]
) -> tuple[list, list[str], str]:
    """Legend handles and labels (stages, then attempt statuses) and the kinds' explanation.

    ``waiting``: stages whose tasks mostly wait (drawn pale).
    """
    plt = pyplot()
    handles, labels = [], []
    if len(stages) <= MAX_STAGE_ENTRIES:
        for s in stages:
            colour = stage_colour(s)
            if s in waiting:
                handles.append(plt.Rectangle((0, 0), 1, 1, color=(*colour[:3], WAIT_ALPHA)))
                labels.append(f"{s} (waits; pale, not counted as busy)")
            else:
                handles.append(plt.Rectangle((0, 0), 1, 1, color=colour))
                labels.append(s)
    else:  # one entry per kind, in order of first appearance
        kinds: dict[str, list[str]] = {}
        for s in stages:
            kinds.setdefault(stage_kind(s)[0], []).append(s)
        for members in kinds.values():
            handles.append(plt.Rectangle((0, 0), 1, 1, color=stage_colour(members[-1])))
            labels.append(f"{members[0]} … {members[-1]}" if len(members) > 1 else members[0])
    for status in STATUS_MARK:
        if status in statuses:
            marker, colour, text = STATUS_MARK[status]
            edge = TIMEOUT_EDGE if status == TIMEOUT else "black"
            hatch = "//" if status == TIMEOUT else "xxx"
            handles.append(
                (
                    plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor=edge, hatch=hatch),
                    plt.Line2D([], [], ls="", marker=marker, color=colour, mew=1.5),
                )
            )
            labels.append(text)
    if waiting and len(stages) > MAX_STAGE_ENTRIES:
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="lightgrey"))
        labels.append("pale: waits (not counted as busy)")
    present = []
    for s in stages:
        kind = stage_kind(s)[0]
        if kind in KINDS and kind not in present:
            present.append(kind)
    title = "\n".join(f"{k}: {KINDS[k][1]}" for k in present)
    return handles, labels, title


def gantt_plot(records: list[TaskRecord], path: Path) -> Path:
    """Draw the tasks of every pool against time to ``path`` (at most :data:`MAX_PX`)."""
    plt = pyplot()
    from matplotlib.legend_handler import HandlerTuple

    done = [r for r in records if r.started is not None and r.ended is not None]
    t0 = min(r.started for r in done)
    span = max(max(r.ended for r in done) - t0, 1e-9)
    unit, unit_name = _time_unit(span)
    lanes, notes = plan_lanes(done)
    stages = stage_order(done)
    pools = list(dict.fromkeys(lane.pool for lane in lanes))
    rows = len(lanes) + POOL_GAP * (len(pools) - 1)
    statuses = {r.status for r in done}
    waiting = {r.stage or r.name for r in done if isinstance(r.info, dict) and r.info.get("waits")}
    handles, labels, legend_title = _legend_entries(stages, statuses, waiting)
    legend_lines = legend_title.count("\n") + 1 if legend_title else 0
    # tall enough for the lanes, and for the legend in at most three columns
    legend_in = 0.9 + LEGEND_LINE_IN * (legend_lines + -(-len(labels) // 3))
    height = min(max(1.9 + LANE_IN * rows, legend_in, 2.6), MAX_PX[1] / DPI)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    max_rows = max(4, int((height - 0.6) / LEGEND_LINE_IN) - legend_lines)

    ys: list[float] = []
    y, prev_pool = 0.0, None
    for lane in lanes:
        if prev_pool is not None and lane.pool != prev_pool:
            y += POOL_GAP
        ys.append(y)
        prev_pool = lane.pool
        y += 1

    for lane, y in zip(lanes, ys, strict=True):
        groups: dict[tuple[str, str, bool], list[tuple[float, float]]] = {}
        for r in lane.tasks:
            status = r.status if r.status in STATUS_MARK else "done"
            waits = bool(r.info.get("waits")) if isinstance(r.info, dict) else False
            key = (r.stage or r.name, status, waits)
            groups.setdefault(key, []).append(((r.started - t0) / unit, r.duration / unit))
        for (stage, status, waits), xr in groups.items():
            colour = stage_colour(stage)
            face = (*colour[:3], WAIT_ALPHA) if waits else colour
            if status == "done":
                edge, hatch = tuple(0.7 * c for c in colour[:3]), None
            else:
                edge = TIMEOUT_EDGE if status == TIMEOUT else "black"
                hatch = "//" if status == TIMEOUT else "xxx"
            ax.broken_barh(
                xr, (y - 0.4, 0.8), facecolors=face, edgecolor=edge, linewidth=0.5, hatch=hatch
            )
            if status != "done":
                marker, mcolour, _ = STATUS_MARK[status]
                ax.plot(
                    [x + w / 2 for x, w in xr],
                    [y] * len(xr),
                    ls="",
                    marker=marker,
                    color=mcolour,
                    ms=6,
                    mew=1.5,
                    zorder=3,
                )

    ax.set_yticks(ys, [f"{lane.pool} · {lane.label}" for lane in lanes], fontsize=8)
    ax.set_ylim(max(ys) + 0.7, -0.7)
    ax.set_xlim(0, span / unit * 1.01)
    ax.set_xlabel(f"time since the first task started ({unit_name})")
    ax.set_ylabel("pool · worker cores")
    ax.grid(axis="x", alpha=0.3)
    title = f"Tasks per pool and worker: {len(done)} attempts, {len(stages)} task groups"
    if any(lane.label.endswith(" #2") for lane in lanes):
        notes.insert(0, "#n: tasks that ran at once on the same cores")
    if notes:
        title += "\n(" + "; ".join(notes) + ")"
    ax.set_title(title, fontsize=10)

    legend = ax.legend(
        handles,
        labels,
        handler_map={tuple: HandlerTuple(ndivide=None)},
        ncol=-(-len(labels) // max_rows),
        fontsize=8,
        title=legend_title or None,
        title_fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        frameon=False,
    )
    legend._legend_box.align = "left"  # the kind explanations read as a left-aligned list
    fig.tight_layout()
    _label_bars(fig, ax, lanes, ys, t0, unit)
    return save(fig, path)


def _label_bars(fig, ax, lanes: list[Lane], ys: list[float], t0: float, unit: float) -> None:
    """Write each run of same-named bars' name on it where it fits."""
    fig.canvas.draw()
    x0, x1 = ax.get_xlim()
    px_per_unit = ax.get_window_extent().width / (x1 - x0)
    char_px = 0.6 * 7 / 72 * fig.dpi  # width of a 7 pt character, in display pixels
    shortened = False
    for lane, y in zip(lanes, ys, strict=True):
        runs: list[list] = []  # [text, start, end, stage]
        for r in sorted(lane.tasks, key=lambda r: r.started):
            text = _bar_text(r)
            start, end = (r.started - t0) / unit, (r.ended - t0) / unit
            if runs and runs[-1][0] == text and start - runs[-1][2] < 2 / px_per_unit:
                runs[-1][2] = max(runs[-1][2], end)
            else:
                runs.append([text, start, end, r.stage or r.name])
        last: dict[str, float] = {}  # text -> where it was last written in this lane
        for text, start, end, stage in runs:
            mid = (start + end) / 2
            room = (end - start) * px_per_unit - 6
            if char_px * len(text) > room:
                number = re.fullmatch(r"[A-Za-z_\-/]*0*(\d+)", text)
                if text == stage or number is None or char_px * len(number.group(1)) > room:
                    continue
                text, shortened = number.group(1), True  # "c0012" -> "12"
            if (mid - last.get(text, -1e18)) * px_per_unit < 250:
                continue  # written just before: once is enough
            r, g, b, _ = stage_colour(stage)
            ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
            ax.text(mid, y, text, ha="center", va="center", fontsize=7, color=ink)
            last[text] = mid
    if shortened:
        ax.set_title(ax.get_title() + " · numbers on bars: task (candidate) ids", fontsize=10)
