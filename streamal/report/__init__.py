"""Pictures and tables of a run, from its run directory alone: Gantt chart per pool, pool
utilisation, metrics per phase, and a per-task-group timing table (like the paper's Table III)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal import durable, plugins
from streamal.errors import StreamalError
from streamal.report.gantt import gantt_plot
from streamal.report.metrics import metrics_plot
from streamal.report.samples import store_summary
from streamal.report.tables import phase_table, print_table
from streamal.report.utilisation import pool_workers, utilisation_plot
from streamal.runtime.timeline import TaskRecord, load_records

if TYPE_CHECKING:
    from streamal.workflows.base import Workflow

__all__ = ["phase_table", "store_summary", "write_report"]


def _records(run_dir: Path) -> list[TaskRecord]:
    for name in ("timeline.json", "timeline.jsonl"):
        if (run_dir / name).exists():
            return load_records(run_dir / name)
    return []


def _workflow(status: dict[str, Any]) -> type[Workflow] | None:
    """The run's workflow class (``run.json``'s config), None if it cannot be loaded."""
    name = (status.get("config") or {}).get("workflow", {}).get("name")
    try:
        return plugins.load("workflows", name) if name else None
    except StreamalError:
        return None


def _workers(status: dict[str, Any]) -> dict[str, int]:
    """Workers per pool from ``run.json`` (plan, workflow, simulator)."""
    cfg = status.get("config") or {}
    workflow = _workflow(status)
    options = (cfg.get("workflow") or {}).get("options") or {}
    try:
        per_rank = bool(workflow and workflow.model_per_rank(options))
    except Exception:  # noqa: BLE001 - options of an older version: fall back
        per_rank = bool(workflow and workflow.train_worker_per_rank)
    ranks = (cfg.get("simulator") or {}).get("mpi_ranks") or 1
    return pool_workers(status.get("plan", {}), train_per_rank=per_rank, sim_cores_per_worker=ranks)


def write_report(run_dir: Path) -> list[Path]:
    """Write ``report/*.png`` and ``report/tasks.json`` and print the timing table."""
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    records = _records(run_dir)
    status = durable.read_json(run_dir / "run.json", default={})
    status = status if isinstance(status, dict) else {}
    plan = status.get("plan", {})
    written: list[Path] = []
    if not records:
        return written
    rows = phase_table(records)
    durable.write_json(out / "tasks.json", rows)
    written.append(out / "tasks.json")
    if any(r.started is not None for r in records):
        written.append(gantt_plot(records, out / "gantt.png"))
        written.append(utilisation_plot(records, plan, out / "utilisation.png", _workers(status)))
    metrics = durable.read_json(run_dir / "metrics.json", default={})
    phases = metrics.get("phases", []) if isinstance(metrics, dict) else []
    if any(p.get("test") for p in phases):
        written.append(metrics_plot(phases, out / "metrics.png"))
    workflow = _workflow(status)
    if workflow is not None:
        written += workflow.report(run_dir, out)
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
