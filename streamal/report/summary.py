"""The end of a run in a few lines: test metrics per phase, and where the outputs are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streamal import durable
from streamal.report.metrics import describe_metric, metric_order, run_space

#: Width of a console that is not a terminal (a batch job's log has no edge to clip at).
LOG_WIDTH = 200


def console_for_tables() -> Console:
    """Standard error, as wide as the terminal, or :data:`LOG_WIDTH` in a log file."""
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=LOG_WIDTH)
    return console


def _header(key: str, space: Any) -> str:
    label = describe_metric(key, space)
    unit = label.ylabel[label.ylabel.rfind("(") :] if label.ylabel.endswith(")") else ""
    if label.scale == 100.0:
        unit = "(%)"
    return f"{label.title} {unit}".strip()


def metrics_table(run_dir: Path) -> Table | None:
    """Test metrics of every training phase (``metrics.json``), with words and units."""
    metrics = durable.read_json(run_dir / "metrics.json", default={})
    phases = metrics.get("phases", []) if isinstance(metrics, dict) else []
    phases = [p for p in phases if isinstance(p, dict)]
    if not phases:
        return None
    space = run_space(run_dir)
    keys = metric_order(sorted({k for p in phases for k in p.get("test") or {}}), space)
    table = Table(title="Test metrics per phase", title_justify="left")
    for col in ("phase", "training samples", "epochs", "training time"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for key in keys:
        table.add_column(_header(key, space), justify="right")
    for p in phases:
        test = p.get("test") or {}
        cells = []
        for key in keys:
            value = test.get(key)
            scale = describe_metric(key, space).scale
            cells.append("" if value is None else f"{value * scale:.4g}")
        wall = p.get("wall_s")
        table.add_row(
            str(p.get("phase", "")),
            str(p.get("n_train", "")),
            str(p.get("epochs", "")),
            f"{wall:.1f} s" if isinstance(wall, int | float) else "",
            *cells,
        )
    return table


def outputs(run_dir: Path, written: list[Path], *, figures: bool = True) -> list[str]:
    """Where a person finds the results, one line each; ``figures=False``: the run drew none
    (``report.figures: false``), the line says how to draw them."""
    lines = [f"run directory:  {run_dir}"]
    if (run_dir / "store.h5").exists():
        lines.append(f"samples:        {run_dir / 'store.h5'}")
    checkpoints = sorted(
        (run_dir / "checkpoints").glob("*/best.pt"), key=lambda p: p.stat().st_mtime
    )
    if checkpoints:
        lines.append(f"latest model:   {checkpoints[-1]}")
    if (run_dir / "metrics.json").exists():
        lines.append(f"metrics:        {run_dir / 'metrics.json'}")
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    if pngs:
        lines.append(f"figures:        {run_dir / 'report'}/ ({', '.join(pngs)})")
    elif not figures:
        lines.append(
            f"figures:        not drawn (report.figures: false); draw them with: "
            f"python -m streamal report {run_dir}"
        )
    return lines


def print_summary(
    run_dir: Path, written: list[Path], console: Console | None = None, *, figures: bool = True
) -> None:
    """Print the test metrics per phase and the outputs' locations (``figures=False``: the
    run's figures were not drawn)."""
    console = console or console_for_tables()
    table = metrics_table(run_dir)
    if table is not None:
        console.print(table)
    for line in outputs(run_dir, written, figures=figures):
        console.print(line, markup=False, highlight=False)
