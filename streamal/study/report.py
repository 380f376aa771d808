"""``streamal scale-report``: a study's Table-V-like table, task-group times (Table III),
final accuracy per run (Table IV) and speedup plots (Figs. 4 and 6) as JSON and PNG."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.report import phase_table
from streamal.runtime.timeline import load_records
from streamal.study.layout import Study

#: The workflow other workflows' speedups are measured against, when the study has it.
REFERENCE = "serial"


def run_summary(run_dir: Path) -> dict[str, Any] | None:
    """Makespan, ranks, task groups and final metrics of one finished run, else ``None``."""
    status = durable.read_json(run_dir / "run.json", default=None)
    if not isinstance(status, dict) or status.get("status") != "done":
        return None
    records = load_records(run_dir / "timeline.json")
    spans = [r for r in records if r.started and r.ended]
    plan = status.get("plan", {})
    nodes = int(plan.get("nodes", 1))
    ranks = plan.get("trainer_ranks", [])
    metrics = durable.read_json(run_dir / "metrics.json", default={}) or {}
    phases = metrics.get("phases", []) if isinstance(metrics, dict) else []
    return {
        "nodes": nodes,
        "gpus": nodes * sum(r.get("gpu") is not None for r in ranks),
        "ranks": nodes * len(ranks),
        "sim_cores": nodes * len(plan.get("sim_cores", [])),
        "makespan_s": max(r.ended for r in spans) - min(r.started for r in spans) if spans else 0.0,
        "wall_s": status.get("wall_s"),
        "groups": [
            {k: row[k] for k in ("group", "pool", "tasks", "span_s", "busy_s")}
            for row in phase_table(records)
        ],
        "final": {"phase": phases[-1].get("phase"), **phases[-1].get("test", {})} if phases else {},
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def study_table(study: Study) -> dict[str, Any]:
    """Per run and per (nodes, workflow): makespans, speedups and parallel efficiency.

    ``speedup_vs_serial``: the serial makespan over this workflow's at the same node count
    (medians over repeats). ``parallel_efficiency``: T(n₀)·n₀ / (T(n)·n) with n₀ the smallest
    node count of the workflow.
    """
    runs, missing = [], []
    for run in study.runs:
        summary = run_summary(study.run_dir(run))
        if summary is None:
            missing.append(run.name)
            continue
        runs.append({"run": run.name, "workflow": run.workflow, "repeat": run.repeat, **summary})
    by_key: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for r in runs:
        by_key[(r["nodes"], r["workflow"])].append(r)
    rows = []
    for (nodes, workflow), rs in sorted(by_key.items()):
        rows.append(
            {
                "nodes": nodes,
                "gpus": rs[0]["gpus"],
                "ranks": rs[0]["ranks"],
                "workflow": workflow,
                "repeats": len(rs),
                "makespan_s": _median([r["makespan_s"] for r in rs]),
            }
        )
    for row in rows:
        ref = [r for r in rows if r["nodes"] == row["nodes"] and r["workflow"] == REFERENCE]
        row["speedup_vs_serial"] = ref[0]["makespan_s"] / row["makespan_s"] if ref else None
        first = min((r for r in rows if r["workflow"] == row["workflow"]), key=lambda r: r["nodes"])
        row["parallel_efficiency"] = (first["makespan_s"] * first["nodes"]) / (
            row["makespan_s"] * row["nodes"]
        )
    return {"study": str(study.directory), "rows": rows, "runs": runs, "missing": missing}


def plot_study(table: dict[str, Any], path: Path) -> None:
    """Makespan and speedup over node count per workflow, with the ideal line (Figs. 4, 6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["rows"]
    workflows = sorted({r["workflow"] for r in rows})
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    for w in workflows:
        rs = sorted((r for r in rows if r["workflow"] == w), key=lambda r: r["nodes"])
        nodes = [r["nodes"] for r in rs]
        left.plot(nodes, [r["makespan_s"] for r in rs], "o-", label=w)
        base = rs[0]["makespan_s"] * rs[0]["nodes"]
        mid.plot(nodes, [base / rs[0]["nodes"] / r["makespan_s"] for r in rs], "o-", label=w)
        paired = [r for r in rs if r["speedup_vs_serial"] is not None and w != REFERENCE]
        if paired:
            right.plot(
                [r["nodes"] for r in paired],
                [r["speedup_vs_serial"] for r in paired],
                "o-",
                label=w,
            )
    all_nodes = sorted({r["nodes"] for r in rows})
    if all_nodes:
        n0 = all_nodes[0]
        mid.plot(all_nodes, [n / n0 for n in all_nodes], "k--", label="ideal (linear)")
        right.axhline(1.0, color="k", ls=":", label="no speedup")
    for ax in (left, mid, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_nodes, [str(n) for n in all_nodes])
        ax.set_xlabel("nodes")
        ax.grid(alpha=0.3)
        ax.legend()
    left.set_ylabel("makespan (s)")
    left.set_title("Makespan per workflow")
    mid.set_ylabel(f"speedup over {all_nodes[0] if all_nodes else 1} node(s)")
    mid.set_title("Strong scaling of each workflow")
    right.set_ylabel(f"{REFERENCE} makespan / workflow makespan")
    right.set_title(f"Speedup over {REFERENCE} at each node count")
    fig.suptitle(f"Scaling study {table['study']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(table: dict[str, Any]) -> str:
    """The Table-V-like rows as text a person can read (and paste)."""
    lines = [
        f"{'nodes':>5} {'GPUs':>4} {'ranks':>5} {'workflow':<12} {'runs':>4} "
        f"{'makespan (s)':>12} {'vs serial':>9} {'par. eff.':>9}"
    ]
    for r in table["rows"]:
        vs = f"{r['speedup_vs_serial']:.2f}x" if r["speedup_vs_serial"] is not None else "-"
        lines.append(
            f"{r['nodes']:>5} {r['gpus']:>4} {r['ranks']:>5} {r['workflow']:<12} "
            f"{r['repeats']:>4} {r['makespan_s']:>12.1f} {vs:>9} {r['parallel_efficiency']:>9.2f}"
        )
    lines += ["", "task groups (busy seconds; Table III):"]
    for r in table["runs"]:
        groups = ", ".join(f"{g['group']} {g['busy_s']:.1f}" for g in r["groups"])
        lines.append(f"  {r['run']:<22} {groups}")
    lines += ["", "final test metrics (Table IV):"]
    for r in table["runs"]:
        final = r["final"]
        values = ", ".join(
            f"{k} {v:.4g}" for k, v in final.items() if isinstance(v, (int, float)) and k != "phase"
        )
        lines.append(f"  {r['run']:<22} {final.get('phase', '-')}: {values or '-'}")
    if table["missing"]:
        lines.append(f"not finished (left out): {', '.join(table['missing'])}")
    return "\n".join(lines)


def scale_report(study_dir: str | Path) -> dict[str, Any]:
    """Write ``STUDY_DIR/report/scaling.json`` and ``scaling.png``; return the table."""
    study = Study.load(study_dir)
    table = study_table(study)
    out = study.directory / "report"
    out.mkdir(parents=True, exist_ok=True)
    durable.write_json(out / "scaling.json", table)
    if table["rows"]:
        plot_study(table, out / "scaling.png")
    return table
