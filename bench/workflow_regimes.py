"""Where each workflow wins: makespan ratios against the simulation/training balance S/T.

    python bench/workflow_regimes.py RUNS [--measured RUNS ...] [--json]

``RUNS`` is a folder that ``bench/workflows.py --keep RUNS`` filled. The replay model's costs
are fitted on each seed's streaming run there (``streamal replay``); the simulation cost per
pattern is then scaled from 1/8 to 4 times the measured one, and serial, streaming and
continuous are replayed at the run's sizes and at the paper regime's
(:data:`workflows.PAPER_REGIME`), with the simulator/trainer contention the run measured
(``sim_slowdown``, ``train_slowdown``) and without it (a node whose simulator cores are not
the trainer's). S/T on the x axis is the serial replay's mean S_k/T_k over the AL phases.
Each ``--measured`` folder (another ``bench/workflows.py --keep`` run: cryspy, paced, ...)
adds its measured per-seed ratios at its serial runs' measured S/T.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import _common
import _runs
import matplotlib
import workflows

from streamal.replay.fit import fit_costs, load_run, resources_of, workload_of
from streamal.replay.flows import replay
from streamal.replay.workload import Phase, Workload

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

SCALES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
WORKFLOWS = workflows.WORKFLOWS


def paper_workload(work: Workload) -> Workload:
    """``work`` at the paper regime's sizes (the split rule and chunking kept)."""
    r = workflows.PAPER_REGIME
    n0, epochs = r["n0"], r["epochs"]
    phases = (Phase(3 * n0, epochs[0]), *(Phase(r["batch"], e) for e in epochs[1:]))
    half = 3 * round(n0 * 0.5)
    return work.with_(
        phases=phases, val=half, test=half, study=3 * r["study"], chunk_size=r["chunk"]
    )


def al_balance(spans: dict[str, tuple[float, float]]) -> float:
    """Mean S_k/T_k over the AL phases (k >= 1) of a serial schedule's stage spans."""
    ratios = []
    for k in range(1, 10):
        s, t = spans.get(f"S{k}"), spans.get(f"T{k}")
        if s and t:
            ratios.append((s[1] - s[0]) / (t[1] - t[0]))
    return statistics.mean(ratios)


def sweep(run: Path, paper: bool, contention: bool) -> list[dict]:
    """Replayed makespans of the three workflows at each simulation-cost scale."""
    data = load_run(run)
    res, costs = resources_of(data), fit_costs(data, resources_of(data))
    work = workload_of(data).with_(split_fraction="auto", recorded_splits=())
    if paper:
        work = paper_workload(work)
    if not contention:
        costs = costs.with_(sim_slowdown=1.0, train_slowdown=1.0)
    out = []
    for scale in SCALES:
        scaled = costs.with_(sim_sample_s=costs.sim_sample_s * scale)
        results = {w: replay(work.with_(workflow=w), res, scaled) for w in WORKFLOWS}
        out.append(
            {
                "scale": scale,
                "s_over_t": round(al_balance(results["serial"].spans()), 3),
                **{f"{w}_s": round(results[w].makespan, 1) for w in WORKFLOWS},
            }
        )
    return out


def measured_points(root: Path) -> dict:
    """Per-seed measured ratios of a ``bench/workflows.py --keep`` folder, at its S/T."""
    seeds = sorted(int(p.name.split("-")[1]) for p in root.glob("serial-*") if p.is_dir())
    points = []
    for seed in seeds:
        runs = {w: root / f"{w}-{seed}" for w in WORKFLOWS}
        if not all((r / "timeline.json").exists() for r in runs.values()):
            continue
        span = {w: _runs.makespan(r) for w, r in runs.items()}
        balance = workflows.s_over_t(runs["serial"])
        al = [v for k, v in balance.items() if not k.startswith("S0")]
        points.append(
            {
                "seed": seed,
                "s_over_t": round(statistics.mean(al), 3),
                "streaming_over_serial": round(span["streaming"] / span["serial"], 3),
                "continuous_over_streaming": round(span["continuous"] / span["streaming"], 3),
            }
        )
    return {"folder": str(root), "points": points}


def _ratios(rows_per_seed: list[list[dict]]) -> list[dict]:
    """Median over seeds of each scale's ratios (and S/T), with the per-seed values."""
    out = []
    for i, scale in enumerate(SCALES):
        rows = [seed_rows[i] for seed_rows in rows_per_seed]
        cs = [r["continuous_s"] / r["streaming_s"] for r in rows]
        ss = [r["streaming_s"] / r["serial_s"] for r in rows]
        out.append(
            {
                "scale": scale,
                "s_over_t": round(statistics.median(r["s_over_t"] for r in rows), 3),
                "continuous_over_streaming": round(statistics.median(cs), 3),
                "streaming_over_serial": round(statistics.median(ss), 3),
                "per_seed_continuous_over_streaming": [round(x, 3) for x in cs],
                "per_seed_streaming_over_serial": [round(x, 3) for x in ss],
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, help="a bench/workflows.py --keep folder (its streaming-*)")
    p.add_argument("--measured", type=Path, nargs="*", default=[], help="more --keep folders")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    fitted = sorted(r for r in args.runs.glob("streaming-*") if (r / "timeline.json").exists())
    if not fitted:
        p.error(f"{args.runs}: no streaming-* run directories (bench/workflows.py --keep)")
    curves = {}
    for size in ("run", "paper"):
        for contention in (True, False):
            rows = [sweep(r, size == "paper", contention) for r in fitted]
            curves[f"{size}_sizes_{'contention' if contention else 'no_contention'}"] = _ratios(
                rows
            )
    measured = [measured_points(root) for root in [args.runs, *args.measured]]
    result = {"fitted_on": [str(r) for r in fitted], "scales": list(SCALES), "replay": curves}
    result["measured"] = measured

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharex=True)
    styles = {"contention": "-", "no_contention": "--"}
    for key, rows in curves.items():
        size, _, kind = key.partition("_sizes_")
        label = (
            f"replay, {'run' if size == 'run' else 'paper-regime'} sizes, {kind.replace('_', ' ')}"
        )
        x = [r["s_over_t"] for r in rows]
        for ax, ratio in zip(
            axes, ("continuous_over_streaming", "streaming_over_serial"), strict=True
        ):
            ax.plot(
                x,
                [r[ratio] for r in rows],
                styles[kind],
                marker="o" if size == "run" else "s",
                label=label,
            )
    for m in measured:
        name = Path(m["folder"]).name
        for ax, ratio in zip(
            axes, ("continuous_over_streaming", "streaming_over_serial"), strict=True
        ):
            ax.scatter(
                [q["s_over_t"] for q in m["points"]],
                [q[ratio] for q in m["points"]],
                marker="x",
                s=60,
                zorder=5,
                label=f"measured: {name}",
            )
    for ax, title, target in zip(
        axes,
        ("continuous / streaming makespan", "streaming / serial makespan"),
        (0.95, 0.85),
        strict=True,
    ):
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.axhline(target, color="red", lw=0.8, ls=":", label=f"target {target}")
        ax.annotate(
            f"target {target}",
            (0.99, target),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=7,
            color="red",
        )
        ax.set_xscale("log")
        ax.set_xticks([0.125, 0.25, 0.5, 1, 2, 4], ["1/8", "1/4", "1/2", "1", "2", "4"])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("simulation / training time per AL phase, S_k/T_k (serial)")
        ax.set_ylabel("makespan ratio")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.suptitle("Which workflow wins where: one simulator core, one trainer rank")
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / "workflow_regimes.png", dpi=120)
    _common.emit("workflow_regimes", result, args.json)


if __name__ == "__main__":
    main()
