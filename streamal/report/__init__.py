"""Pictures and tables of a run, from its run directory alone.

``report/``: ``gantt.png`` (tasks per pool and worker), ``utilisation.png`` (workers busy),
``metrics.png`` (test metrics per phase), ``learning.png`` (learning curves per phase),
``samples.png`` (where each phase's samples lie, with the policy's study-set weights),
``predictions.png`` and ``confusion.png`` (the last phase's test predictions), a workflow's own
figures (NAS: ``pareto.png``), ``tasks.json`` (the per-task-group timing table, like the
paper's Table III) and ``samples.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal import durable, plugins
from streamal.errors import StreamalError
from streamal.report.diagnostic import sample_distribution_plot
from streamal.report.gantt import gantt_plot
from streamal.report.learning import learning_curves
from streamal.report.metrics import metrics_plot, run_space
from streamal.report.predictions import predictions_plot
from streamal.report.samples import store_summary
from streamal.report.tables import phase_table, print_table
from streamal.report.utilisation import pool_workers, utilisation_plot
from streamal.runtime.timeline import TaskRecord, load_records

if TYPE_CHECKING:
    from rich.console import Console

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


def write_report(run_dir: Path, *, figures: bool = True) -> list[Path]:
    """Write every figure and table of a run under ``report/`` and print the timing table.

    Everything comes from the run directory alone, so ``streamal report`` redraws a finished,
    stopped or copied run. A figure whose data is absent (no store, no trainings yet, a NAS
    run) is skipped; one that fails is named on standard error and the others are still drawn.

    Args:
        run_dir: The run directory.
        figures: False: the tables only, no figure (nor the workflow's own report), as a
            run with ``report.figures: false`` ends.

    Returns:
        The files written.
    """
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    records = _records(run_dir)
    status = durable.read_json(run_dir / "run.json", default={})
    status = status if isinstance(status, dict) else {}
    metrics = durable.read_json(run_dir / "metrics.json", default={})
    phases = metrics.get("phases", []) if isinstance(metrics, dict) else []
    timed = [r for r in records if r.started is not None]
    workflow = _workflow(status)
    figure_makers: list[tuple[str, Callable[[], Path | list[Path]]]] = [
        ("gantt.png", lambda: gantt_plot(records, out / "gantt.png") if timed else []),
        (
            "utilisation.png",
            lambda: (
                utilisation_plot(
                    records, status.get("plan", {}), out / "utilisation.png", _workers(status)
                )
                if timed
                else []
            ),
        ),
        (
            "metrics.png",
            lambda: (
                metrics_plot(phases, out / "metrics.png", space=run_space(run_dir))
                if any(p.get("test") for p in phases)
                else []
            ),
        ),
        ("learning.png", lambda: learning_curves(run_dir, out)),
        ("samples.png", lambda: sample_distribution_plot(run_dir, out)),
        ("predictions.png", lambda: predictions_plot(run_dir, out)),
        ("workflow figures", lambda: workflow.report(run_dir, out) if workflow else []),
    ]
    written: list[Path] = []
    if records:
        rows = phase_table(records)
        durable.write_json(out / "tasks.json", rows)
        written.append(out / "tasks.json")
    for name, draw in figure_makers if figures else []:
        try:
            made = draw()
        except Exception as exc:  # noqa: BLE001 - one figure must not cost the others
            _console().print(f"report: {name} not drawn: {type(exc).__name__}: {exc}")
            continue
        written += made if isinstance(made, list) else [made]
    if records:
        print_table(rows)
    if (run_dir / "store.h5").exists():
        written += _store_summary(run_dir, out)
    return written


def _console() -> Console:
    from streamal.report.summary import console_for_tables

    return console_for_tables()


def _store_summary(run_dir: Path, out: Path) -> list[Path]:
    """``report/samples.json`` and one line on what the store holds."""
    try:
        summary = store_summary(run_dir / "store.h5")
    except (OSError, StreamalError) as exc:  # held open by a running campaign
        _console().print(f"report: store summary skipped: {exc}")
        return []
    durable.write_json(out / "samples.json", summary)
    _console().print(
        f"samples stored: {summary['stored']} "
        + " ".join(f"{k}={v}" for k, v in summary["by_split"].items())
        + f"; failed: {summary['failed']}"
        + (f" (first error: {summary['first_error']})" if summary["failed"] else "")
    )
    return [out / "samples.json"]
