"""The replay model against the paper: (a) E1 from Table III's task times, (b) Table V's 8- and
16-GPU rows predicted from a model fitted on E1 and the 4-GPU rows only, and what the
automatic split and the continuous workflow would give there (predictions).

Every number comes from running the model (:func:`~streamal.replay.flows.replay`): the trace
replay lays Table III's measured task times out the way each workflow orders and overlaps
them; the fits run the replay inside :func:`scipy.optimize.least_squares`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamal.replay import paper
from streamal.replay.costs import CostModel, TraceCosts
from streamal.replay.flows import ReplayResult, replay

#: The E1 fit's free parameters and where the search starts.
E1_PARAMS = {
    "sim_sample_s": 0.2,
    "policy_sample_factor": 0.8,
    "sim_slowdown": 1.3,
    "train_start_s": 1.0,
    "train_epoch_s": 0.3,
    "train_sample_epoch_s": 2.5e-5,
    "train_slowdown": 1.1,
    "al_sample_s": 3e-4,
}
TARGETS = {"e1": 0.02, "makespan": 0.15, "speedup": 0.05}


def _run(
    costs: Any,
    experiment: str,
    workflow: str,
    platform: str = "polaris",
    gpus: int = 4,
    split: float | str = 0.5,
) -> ReplayResult:
    work = paper.workload(experiment, workflow, split)
    return replay(work, paper.resources(platform, gpus), costs)


def _durations(result: ReplayResult) -> dict[str, float]:
    return {stage: end - start for stage, (start, end) in result.spans().items()}


def _fit(
    residuals: Callable[[np.ndarray], np.ndarray], x0: Sequence[float], lower: Sequence[float]
) -> np.ndarray:
    from scipy.optimize import least_squares

    x0 = np.maximum(np.asarray(x0, float), np.asarray(lower, float) + 1e-6)
    fit = least_squares(residuals, x0, bounds=(lower, np.inf), x_scale=x0, diff_step=1e-3)
    return fit.x


def _err(predicted: float, measured: float) -> float:
    return predicted / measured - 1.0


# -- (a) ---------------------------------------------------------------------------------------
def reproduce_trace(workflow: str) -> ReplayResult:
    """Table III's mean task times of ``workflow``, replayed as measured."""
    table = paper.TABLE_III[workflow]
    durations = {k: ms / 1000 for k, (ms, _) in table.items() if k != "Total"}
    s0 = paper.workload("E1", workflow)
    s0_samples = s0.train0 + s0.val + s0.test + (s0.study if workflow == "serial" else 0)
    return _run(TraceCosts(durations, {"S0": s0_samples}), "E1", workflow)


def reproduce_e1() -> dict[str, dict[str, float]]:
    """Table III's mean task times replayed as measured: each workflow's makespan vs Total."""
    out = {}
    for workflow, table in paper.TABLE_III.items():
        result = reproduce_trace(workflow)
        total = table["Total"][0] / 1000
        out[workflow] = {
            "predicted_s": result.makespan,
            "paper_s": total,
            "error": _err(result.makespan, total),
        }
    return out


# -- (b) ---------------------------------------------------------------------------------------
def fit_e1() -> tuple[CostModel, dict[str, dict[str, float]]]:
    """The cost model fitted on Table III's per-task times (relative errors, both workflows)."""
    names = list(E1_PARAMS)
    internode = paper.ddp_internode_cost()

    def model(x: np.ndarray) -> CostModel:
        values = {n: float(v) for n, v in zip(names, x, strict=True)}
        return CostModel(**values, ddp_internode_cost=internode)

    def residuals(x: np.ndarray) -> np.ndarray:
        costs, out = model(x), []
        for workflow, table in paper.TABLE_III.items():
            got = _durations(_run(costs, "E1", workflow))
            out += [_err(got[k], ms / 1000) for k, (ms, _) in table.items() if k != "Total"]
        return np.array(out)

    lower = [0, 0.1, 1.0, 0, 0, 0, 1.0, 0]
    costs = model(_fit(residuals, list(E1_PARAMS.values()), lower))
    costs.sources = {n: "fitted: Table III per-task times (E1, Polaris)" for n in names}
    costs.sources["ddp_internode_cost"] = (
        "assumed: Sec. V-D, 4 ranks on 4 nodes take 1.45x as long as on one node"
    )
    tasks = {}
    for workflow, table in paper.TABLE_III.items():
        got = _durations(_run(costs, "E1", workflow))
        tasks[workflow] = {
            k: round(_err(got[k], ms / 1000), 4) for k, (ms, _) in table.items() if k != "Total"
        }
    return costs, tasks


def fit_e2(base: CostModel) -> dict[str, CostModel]:
    """Per platform ``sim_sample_s`` and a shared ``train_sample_epoch_s`` (same A100 nodes,
    Table I), fitted on Table V's 4-GPU rows; the rest is E1's fit."""
    platforms = list(paper.TABLE_V)

    def models(x: np.ndarray) -> dict[str, CostModel]:
        return {
            p: base.with_(
                sim_sample_s=float(x[i]),
                train_sample_epoch_s=float(x[-1]),
                sources=dict(base.sources),
            )
            for i, p in enumerate(platforms)
        }

    def residuals(x: np.ndarray) -> np.ndarray:
        out = []
        for p, costs in models(x).items():
            for wf in ("serial", "streaming"):
                out.append(_err(_run(costs, "E2", wf, p).makespan, paper.TABLE_V[p][4][wf]))
        return np.array(out)

    x0 = [base.sim_sample_s] * len(platforms) + [base.train_sample_epoch_s]
    fitted = models(_fit(residuals, x0, [0] * len(x0)))
    for p, costs in fitted.items():
        costs.sources["sim_sample_s"] = f"fitted: Table V 4-GPU rows ({p})"
        costs.sources["train_sample_epoch_s"] = "fitted: Table V 4-GPU rows (both platforms)"
    return fitted


def table5_rows(
    models: dict[str, CostModel],
    gpus: Sequence[int],
    model_for: Callable[[str, int], CostModel] | None = None,
) -> list[dict[str, Any]]:
    """Predicted vs Table V for each platform and GPU count: both workflows and the speed-up."""
    rows = []
    for platform in models:
        for g in gpus:
            costs = model_for(platform, g) if model_for else models[platform]
            row: dict[str, Any] = {"platform": platform, "gpus": g}
            for wf in ("serial", "streaming"):
                predicted, measured = (
                    _run(costs, "E2", wf, platform, g).makespan,
                    paper.TABLE_V[platform][g][wf],
                )
                row[wf] = {
                    "predicted_s": round(predicted, 1),
                    "paper_s": measured,
                    "error": round(_err(predicted, measured), 4),
                }
            sp = row["serial"]["predicted_s"] / row["streaming"]["predicted_s"]
            paper_sp = paper.TABLE_V_SPEEDUP[platform][g]
            row["speedup"] = {
                "predicted": round(sp, 3),
                "paper": paper_sp,
                "error": round(sp - paper_sp, 3),
            }
            rows.append(row)
    return rows


def implied_ddp_factors(models: dict[str, CostModel], gpus: Sequence[int]) -> dict[str, Any]:
    """Diagnostic, fitted on the predicted rows themselves (so not a prediction): the factor
    ``ddp(M)`` on DDP's per-sample time that Table V's serial and streaming rows at ``gpus``
    imply, against the one assumed from Sec. V-D."""
    out: dict[str, Any] = {}
    for g in gpus:
        nodes = g // paper.GPUS_PER_NODE

        def residuals(x: np.ndarray, nodes: int = nodes, g: int = g) -> np.ndarray:
            cost = (x[0] - 1.0) * nodes / (2.0 * (nodes - 1))
            return np.array(
                [
                    _err(
                        _run(m.with_(ddp_internode_cost=cost), "E2", wf, p, g).makespan,
                        paper.TABLE_V[p][g][wf],
                    )
                    for p, m in models.items()
                    for wf in ("serial", "streaming")
                ]
            )

        factor = float(_fit(residuals, [2.0], [1.0])[0])
        assumed = 1.0 + paper.ddp_internode_cost() * 2.0 * (nodes - 1) / nodes
        out[g] = {
            "nodes": nodes,
            "implied": round(factor, 3),
            "assumed": round(assumed, 3),
            "ddp_internode_cost": round((factor - 1.0) * nodes / (2.0 * (nodes - 1)), 4),
        }
    return out


def _other_reading(models: dict[str, CostModel]) -> dict[str, Any]:
    """The 8/16-GPU errors if Sec. V-D's "decline of 45%" meant throughput x0.55 (time x1.82)."""
    four_on_four = 1.0 / 0.55
    cost = (four_on_four - 1.0) / 1.5
    rows = table5_rows({p: m.with_(ddp_internode_cost=cost) for p, m in models.items()}, [8, 16])
    return {
        "four_ranks_four_nodes": round(four_on_four, 3),
        "max_makespan_error": max(
            abs(r[w]["error"]) for r in rows for w in ("serial", "streaming")
        ),
        "max_speedup_error": max(abs(r["speedup"]["error"]) for r in rows),
    }


# -- 5. beyond the paper -----------------------------------------------------------------------
def beyond(models: Callable[[str, int], CostModel], gpus: Sequence[int]) -> list[dict[str, Any]]:
    """Predictions: streaming with the automatic split and the continuous workflow on E2;
    ``models(platform, gpus)``: the cost model to run."""
    rows = []
    for platform in paper.TABLE_V:
        for g in gpus:
            costs = models(platform, g)
            serial = _run(costs, "E2", "serial", platform, g).makespan
            half = _run(costs, "E2", "streaming", platform, g).makespan
            auto = _run(costs, "E2", "streaming", platform, g, split="auto")
            cont = _run(costs, "E2", "continuous", platform, g)
            rows.append(
                {
                    "platform": platform,
                    "gpus": g,
                    "serial_s": round(serial, 1),
                    "streaming_half_s": round(half, 1),
                    "streaming_auto_s": round(auto.makespan, 1),
                    "auto_splits": {k: round(f, 3) for k, f in auto.splits.items()},
                    "continuous_s": round(cont.makespan, 1),
                    "continuous_trainings": sum(
                        r.info.get("kind") == "train" for r in cont.records
                    ),
                    "speedup_half": round(serial / half, 3),
                    "speedup_auto": round(serial / auto.makespan, 3),
                    "speedup_continuous": round(serial / cont.makespan, 3),
                }
            )
    return rows


def validate() -> dict[str, Any]:
    """All of the above, JSON-ready, with what was fitted and what predicted named."""
    trace = reproduce_e1()
    e1_costs, e1_tasks = fit_e1()
    e1_fitted = {
        wf: {
            "predicted_s": round(_run(e1_costs, "E1", wf).makespan, 1),
            "paper_s": paper.TABLE_III[wf]["Total"][0] / 1000,
        }
        for wf in paper.TABLE_III
    }
    for v in e1_fitted.values():
        v["error"] = round(_err(v["predicted_s"], v["paper_s"]), 4)
    models = fit_e2(e1_costs)
    implied = implied_ddp_factors(models, [8, 16])

    def calibrated(platform: str, gpus: int) -> CostModel:
        if gpus not in implied:
            return models[platform]
        return models[platform].with_(ddp_internode_cost=implied[gpus]["ddp_internode_cost"])

    fitted_rows = table5_rows(models, [4])
    predicted_rows = table5_rows(models, [8, 16])
    mk = max(abs(r[wf]["error"]) for r in predicted_rows for wf in ("serial", "streaming"))
    sp = max(abs(r["speedup"]["error"]) for r in predicted_rows)
    result = {
        "e1_serial_error": round(trace["serial"]["error"], 5),
        "e1_streaming_error": round(trace["streaming"]["error"], 5),
        "table5_max_makespan_error": round(mk, 4),
        "table5_max_speedup_error": round(sp, 4),
        "targets": TARGETS,
        "met": {
            "e1": bool(max(abs(trace[w]["error"]) for w in trace) <= TARGETS["e1"]),
            "table5_makespan": bool(mk <= TARGETS["makespan"]),
            "table5_speedup": bool(sp <= TARGETS["speedup"]),
        },
        "e1_trace_replay": trace,
        "fitted": {
            "on": [
                "Table III per-task times (E1, Polaris, 1 node)",
                "Table V 4-GPU (1-node) rows, Polaris and Perlmutter",
            ],
            "parameters": {p: m.to_json() for p, m in models.items()},
            "e1_task_errors": e1_tasks,
            "e1_totals": e1_fitted,
            "table5_rows": fitted_rows,
        },
        "predicted": {
            "rows": predicted_rows,
            "assumed": {
                "ddp_internode_cost": round(paper.ddp_internode_cost(), 4),
                "why": "Sec. V-D: 4 ranks over 4 nodes take 1.45x their one-node time; "
                "ring all-reduce: ddp(M) = 1 + c*2(M-1)/M",
                "simulation": "linear in nodes (Sec. V-F2); one MPI task over all sim cores",
            },
        },
        "diagnostics": {
            "note": "fitted on the 8- and 16-GPU rows themselves: not predictions",
            "implied_ddp_factor": {f"{g}_gpus": v for g, v in implied.items()},
            "table5_rows_with_implied_ddp": table5_rows(models, [8, 16], calibrated),
            "other_reading_of_sec_v_d": _other_reading(models),
        },
        "beyond": {
            "note": "predictions; the paper ran neither the automatic split nor the "
            "continuous workflow",
            "model_fitted_on_e1_and_4_gpus": beyond(lambda p, g: models[p], [4, 8, 16]),
            "model_with_ddp_implied_by_table5": beyond(calibrated, [4, 8, 16]),
        },
    }
    return result
