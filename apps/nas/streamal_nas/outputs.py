"""What a search leaves in its run directory: candidate table, Pareto plot, summary.

* ``candidates.json`` / ``candidates.csv``: one row per candidate (:data:`COLUMNS`).
* ``report/pareto.png``: validation accuracy vs FLOPs or energy, marker size = parameters,
  the Pareto front highlighted.
* ``summary.json``: best candidate, hypervolume, epochs trained and saved, skips, wall time.

:func:`write_report` makes the report figures again from the run directory alone
(``streamal report RUN_DIR``), also of an interrupted search (from ``nas/state.json``).

Every file is written atomically (:mod:`streamal.durable`): a crash leaves the previous
version, never a torn one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamal import durable

from .fitness import fitness_label
from .objectives import objective_vector
from .strategies import pareto_indices

__all__ = [
    "COLUMNS",
    "cost_label",
    "plot_pareto",
    "read_rows",
    "summarize",
    "write_candidate_table",
    "write_report",
    "write_summary",
]

COLUMNS: tuple[str, ...] = (
    "id",
    "genome",
    "parent",
    "generation",
    "status",
    "epochs",
    "stop_reason",
    "stop_epoch",
    "fitness_metric",
    "fitness",
    "predicted_fitness",
    "actual_fitness",
    "flops",
    "params",
    "cost",
    "cost_is_proxy",
    "energy_j",
    "energy_source",
    "similar_to",
    "distance",
    "transfer_provider",
    "tensors_transferred",
    "similarity_s",
    "train_s",
    "data_wait_s",
    "wall_s",
)
"""Columns of the candidate table (JSON rows hold these keys, plus ``curve`` and ``metrics``,
the validation metrics at the fitness's epoch)."""


def write_candidate_table(
    records: Sequence[Mapping[str, Any]], run_dir: str | Path
) -> tuple[Path, Path]:
    """Write ``candidates.json`` (full rows) and ``candidates.csv`` (:data:`COLUMNS`)."""
    run_dir = Path(run_dir)
    json_path, csv_path = run_dir / "candidates.json", run_dir / "candidates.csv"
    durable.write_json(json_path, [dict(r) for r in records])
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in COLUMNS})
    durable.write_text(csv_path, buf.getvalue())
    return json_path, csv_path


def _objectives(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([objective_vector(r) for r in records], dtype=float)


def plot_pareto(records: Sequence[Mapping[str, Any]], path: str | Path, cost_label: str) -> Path:
    """Accuracy vs cost scatter (marker area ~ parameters), Pareto front as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if records:
        params = np.array([r["params"] for r in records], dtype=float)
        size = 15 + 185 * params / max(params.max(), 1.0)
        cost = np.array([r["cost"] for r in records], dtype=float)
        acc = np.array([r["fitness"] for r in records], dtype=float)
        for status, marker in (("trained", "o"), ("skipped", "x")):
            sel = np.array([r["status"] == status for r in records])
            if sel.any():
                ax.scatter(
                    cost[sel],
                    acc[sel],
                    s=size[sel],
                    marker=marker,
                    alpha=0.55,
                    label=f"{status} ({int(sel.sum())})",
                )
        measured = np.array([r.get("actual_fitness") is not None for r in records])
        if measured.any():
            actual = np.array([r.get("actual_fitness") or np.nan for r in records], dtype=float)
            ax.scatter(
                cost[measured],
                actual[measured],
                s=8,
                color="k",
                marker=".",
                label="last measured fitness",
            )
        front = pareto_indices(_objectives(records))
        order = front[np.argsort(cost[front])]
        ax.step(cost[order], acc[order], where="post", color="k", lw=1.2, label="Pareto front")
        ax.set_xscale("log")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(cost_label)
    metric = records[0].get("fitness_metric", "accuracy") if records else "accuracy"
    ax.set_ylabel(f"{fitness_label(metric)}\n(predicted if stopped early)")
    ax.set_title("search result (marker size = parameters)")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    durable.write_bytes(path, png.getvalue())
    return path


def summarize(
    records: Sequence[Mapping[str, Any]],
    *,
    hypervolume: float,
    hypervolume_reference: Sequence[float],
    objective: str,
    max_epochs: float,
    wall_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """The run's headline numbers.

    ``epochs_saved`` counts the epochs not trained relative to training every candidate for
    ``max_epochs`` (early stops and skipped candidates both save).
    """
    trained = [r for r in records if r["status"] == "trained"]
    skipped = [r for r in records if r["status"] == "skipped"]
    epochs = float(sum(r["epochs"] for r in trained))
    budget = max_epochs * len(records)
    best = min(records, key=lambda r: tuple(objective_vector(r)), default=None)
    front = [records[i]["id"] for i in pareto_indices(_objectives(records))] if records else []
    return {
        "candidates": len(records),
        "trained": len(trained),
        "skipped": len(skipped),
        "stopped_early": sum(r["stop_reason"] in ("converged", "never-learning") for r in trained),
        "best": None if best is None else {k: best.get(k) for k in COLUMNS},
        "pareto_front": front,
        "hypervolume": hypervolume,
        "hypervolume_reference": list(hypervolume_reference),
        "objective": objective,
        "cost_is_proxy": any(r.get("cost_is_proxy") for r in records),
        "epochs_trained": epochs,
        "epochs_saved": budget - epochs,
        "epochs_saved_fraction": (budget - epochs) / budget if budget else 0.0,
        "flops_trained": float(sum(r["flops"] * r["epochs"] for r in trained)),
        "wall_s": wall_s,
        **extra,
    }


def write_summary(summary: Mapping[str, Any], run_dir: str | Path) -> Path:
    """Write ``summary.json``."""
    return durable.write_json(Path(run_dir) / "summary.json", dict(summary))


def cost_label(objective: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The Pareto plot's cost axis label for ``objective`` (``flops`` or ``energy``)."""
    if objective == "flops":
        return "cost: FLOPs per forward pass"
    if any(r.get("cost_is_proxy") for r in records):
        return "cost: energy proxy, FLOPs x epochs (energy unavailable)"
    return "cost: training energy (J)"


def read_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The candidate rows of a run: ``candidates.json``, else (a search that did not finish)
    the completed evaluations saved in ``nas/state.json``; sorted by candidate id."""
    run_dir = Path(run_dir)
    rows = durable.read_json(run_dir / "candidates.json", default=None)
    if not isinstance(rows, list):
        for name in ("state.json", "state.prev.json"):
            state = durable.read_json(run_dir / "nas" / name, default=None)
            if isinstance(state, dict) and isinstance(state.get("completed"), list):
                rows = state["completed"]
                break
        else:
            rows = []
    return sorted((dict(r) for r in rows), key=lambda r: str(r["id"]))


def _objective(run_dir: Path) -> str:
    """The run's ``objective`` option: from ``summary.json``, ``run.json`` or ``config.yaml``."""
    summary = durable.read_json(run_dir / "summary.json", default={})
    if isinstance(summary, dict) and summary.get("objective"):
        return str(summary["objective"])
    config = durable.read_json(run_dir / "run.json", default={})
    config = config.get("config") if isinstance(config, dict) else None
    if not isinstance(config, dict) and (run_dir / "config.yaml").exists():
        import yaml

        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    try:
        return str(config["workflow"]["options"].get("objective", "flops"))
    except (KeyError, TypeError, AttributeError):
        return "flops"


def write_report(run_dir: str | Path, out: str | Path) -> list[Path]:
    """Make ``out/pareto.png`` again from the files of a run directory.

    Args:
        run_dir: A nas run's directory (``candidates.json`` or ``nas/state.json``).
        out: The report folder.

    Returns:
        The files written (none when the run has no candidate yet).
    """
    run_dir, out = Path(run_dir), Path(out)
    rows = read_rows(run_dir)
    if not rows:
        return []
    label = cost_label(_objective(run_dir), rows)
    return [plot_pareto(rows, out / "pareto.png", label)]
