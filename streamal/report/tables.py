"""The per-task-group timing table (like the paper's Table III)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from streamal.runtime.timeline import TIMEOUT, TaskRecord


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


def print_table(rows: list[dict], console: Any = None) -> None:
    """Print the timing table to stderr (or ``console``), never clipped.

    On a terminal the table fits the terminal's width (the group column folds); otherwise
    (a log file, a pipe) the console is made as wide as the table needs.
    """
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    cells = [
        (
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
        for r in rows
    ]
    headers = ("group", "pool", "tasks", "failed", "timeout")
    headers += ("start (s)", "end (s)", "span (s)", "busy (s)")
    if console is None:
        console = Console(stderr=True)
    narrow = console.is_terminal and console.width < 100
    if narrow:  # units under the names: every header fits its numbers' width
        headers = tuple(h.replace(" (s)", "\n(s)") for h in headers)
    table = Table(
        title="Task groups (cf. the paper's Table III)",
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
        pad_edge=not narrow,
        collapse_padding=narrow,
    )
    for i, col in enumerate(headers):
        # a narrow terminal folds the group names and wraps the headers, never the numbers
        widest = max((len(c[i]) for c in cells), default=1)
        table.add_column(
            col,
            justify="left" if col in ("group", "pool") else "right",
            overflow="fold",
            min_width=min(widest, 8) if col == "group" else widest,
        )
    for c in cells:
        table.add_row(*c)
    if not console.is_terminal:
        wide = Console(stderr=True, width=10_000)
        need = Measurement.get(wide, wide.options, table).maximum
        console = Console(stderr=True, width=max(console.width, need))
    console.print(table)
