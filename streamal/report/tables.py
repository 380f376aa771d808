"""The per-task-group timing table (like the paper's Table III)."""

from __future__ import annotations

from collections import defaultdict

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
