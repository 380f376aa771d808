"""``python -m streamal replay``: replay a run, a costs file, or the paper.

    streamal replay RUN_DIR [--workflow W] [--nodes N] [--split auto|F] [--json]
    streamal replay --costs FILE [--workflow W] [--nodes N] [--split auto|F] [--json]
    streamal replay --paper [--json] [--plot FILE]

``RUN_DIR``: fit the costs from the run's own timeline and replay it (with its workflow and
plan unless told otherwise); prints predicted vs measured makespan and writes the Gantt
chart to ``RUN_DIR/report/replay.png``. ``--save-costs FILE`` keeps the fitted costs, the
workload and the resources for ``--costs FILE``. ``--paper``: the validation against the
paper's Tables III and V (:mod:`streamal.replay.validate`). With ``--json`` the last line of
the output is one JSON object. Bad input: one ``error:`` line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamal.errors import ConfigError
from streamal.replay.workload import WORKFLOWS, Resources, Workload

EXIT_BAD_INPUT = 2


def add_parser(subparsers: Any) -> None:  # argparse's _SubParsersAction
    """Register the ``replay`` subcommand on ``subparsers``."""
    p = subparsers.add_parser(
        "replay",
        help="predict task times and makespan from measured costs (discrete-event model)",
        description="Replay a run, a costs file, or the paper: predict task times and the "
        "makespan with a discrete-event model of the workflows.",
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a finished run directory")
    p.add_argument("--costs", metavar="FILE", help="costs JSON (written by --save-costs)")
    p.add_argument("--paper", action="store_true", help="validate against the paper's tables")
    p.add_argument("--workflow", help=f"replay another workflow: {', '.join(WORKFLOWS)}")
    p.add_argument("--nodes", metavar="N", help="replay on N nodes (each split the same way)")
    p.add_argument("--split", metavar="auto|F", help="streaming split fraction, or auto")
    p.add_argument("--save-costs", metavar="FILE", help="write the fitted costs and workload")
    p.add_argument("--plot", metavar="FILE", help="where the Gantt PNG goes")
    p.add_argument("--json", action="store_true", help="end with one line of JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; 0 on success, 2 (one ``error:`` line) on bad input."""
    try:
        sources = [bool(args.run_dir), bool(args.costs), bool(args.paper)]
        if sum(sources) != 1:
            raise ConfigError("replay: give exactly one of RUN_DIR, --costs FILE or --paper")
        if args.paper:
            if args.workflow or args.nodes or args.split or args.save_costs:
                raise ConfigError(
                    "replay --paper: --workflow, --nodes, --split and "
                    "--save-costs apply to RUN_DIR or --costs"
                )
            return _paper(args)
        return _replay(args)
    except ConfigError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT


# -- options --------------------------------------------------------------------------------------
def _nodes(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"--nodes: must be an integer >= 1 (got {text!r})")
    return value


def _split(text: str | None) -> float | str | None:
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ConfigError(f"--split: must be 'auto' or a fraction in (0, 1] (got {text!r})")
    return value


def _what_if(
    args: argparse.Namespace, work: Workload, res: Resources
) -> tuple[Workload, Resources]:
    if args.workflow:
        if args.workflow not in WORKFLOWS:
            raise ConfigError(f"--workflow: {args.workflow!r} is not one of {', '.join(WORKFLOWS)}")
        work = work.with_(workflow=args.workflow)
        if args.workflow == "continuous" and not work.chunk_size:
            raise ConfigError("--workflow continuous: the workload has no chunk_size")
    split = _split(args.split)
    if split is not None:  # the model decides; the run's own choices no longer apply
        work = work.with_(split_fraction=split, recorded_splits=())
    nodes = _nodes(args.nodes)
    if nodes is not None:
        res = res.on_nodes(nodes)
    return work, res


def _read_costs(path: str) -> tuple[Any, Workload, Resources]:
    from streamal.replay.costs import CostModel

    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"--costs: cannot read {path} ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"--costs: {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(k in data for k in ("costs", "workload")):
        raise ConfigError(
            f"--costs: {path} needs 'costs' and 'workload' (and 'resources'); "
            "write one with: streamal replay RUN_DIR --save-costs FILE"
        )
    res = Resources.from_json(data.get("resources") or {})
    return CostModel.from_json(data["costs"]), Workload.from_json(data["workload"]), res


# -- RUN_DIR / --costs ----------------------------------------------------------------------------
def _replay(args: argparse.Namespace) -> int:
    from streamal.replay.flows import replay, stage_spans
    from streamal.replay.gantt import draw

    measured = None
    if args.run_dir:
        from streamal.replay.fit import fit_costs, load_run, resources_of, workload_of

        run_data = load_run(args.run_dir)
        base_work, base_res = workload_of(run_data), resources_of(run_data)
        costs = fit_costs(run_data, base_res)
    else:
        costs, base_work, base_res = _read_costs(args.costs)
    work, res = _what_if(args, base_work, base_res)
    result = replay(work, res, costs)
    same = work == base_work and res == base_res
    if args.run_dir:
        measured = run_data.records
    out: dict[str, Any] = {
        "source": args.run_dir or args.costs,
        "workflow": work.workflow,
        "nodes": res.nodes,
        "split_fraction": work.split_fraction,
        "predicted_makespan_s": round(result.makespan, 3),
        "splits": result.splits,
    }
    if measured is not None:
        out["measured_workflow"] = base_work.workflow
        out["measured_makespan_s"] = round(run_data.makespan, 3)
        out["error"] = round(result.makespan / run_data.makespan - 1, 4) if same else None
        out["what_if"] = not same
    spans_p, spans_m = result.spans(), stage_spans(measured) if measured else {}
    out["stages"] = {
        s: {
            "predicted": [round(a, 3), round(b, 3)],
            **({"measured": [round(x, 3) for x in spans_m[s]]} if s in spans_m else {}),
        }
        for s, (a, b) in spans_p.items()
    }
    out["costs"] = costs.to_json()
    plot = args.plot or (Path(args.run_dir) / "report" / "replay.png" if args.run_dir else None)
    if plot:
        label = "predicted" if same else f"predicted ({work.workflow}, {res.nodes} node(s))"
        out["plot"] = str(
            draw(
                result.records,
                plot,
                measured=measured,
                title=f"{Path(out['source']).name}: {work.workflow}",
                labels=(f"measured ({base_work.workflow})", label),
                compare=same,
            )
        )
    if args.save_costs:
        _save(args.save_costs, costs, work, res)
        out["saved_costs"] = args.save_costs
    _print_replay(out)
    if args.json:
        print(json.dumps(out))
    return 0


def _save(path: str, costs: Any, work: Workload, res: Resources) -> None:
    from streamal import durable

    data = {"costs": costs.to_json(), "workload": work.to_json(), "resources": res.to_json()}
    durable.write_json(Path(path), data)


def _print_replay(out: dict[str, Any]) -> None:
    print(f"replay of {out['source']}: {out['workflow']} on {out['nodes']} node(s)")
    print(f"{'stage':<8}{'measured (s)':>22}{'predicted (s)':>22}")
    for stage, v in out["stages"].items():
        m = "{:>9.2f} -> {:<9.2f}".format(*v["measured"]) if "measured" in v else "-"
        p = "{:>9.2f} -> {:<9.2f}".format(*v["predicted"])
        print(f"{stage:<8}{m:>22}{p:>22}")
    line = f"predicted makespan {out['predicted_makespan_s']:.2f} s"
    if "measured_makespan_s" in out:
        line += f", measured {out['measured_makespan_s']:.2f} s ({out['measured_workflow']})"
        if out.get("error") is not None:
            line += f", error {out['error']:+.1%}"
    print(line)
    for name, value in (("plot", out.get("plot")), ("costs", out.get("saved_costs"))):
        if value:
            print(f"wrote {name}: {value}")


# -- --paper --------------------------------------------------------------------------------------
def _paper(args: argparse.Namespace) -> int:
    from streamal.replay.validate import validate

    out = validate()
    if args.plot:
        out["plot"] = str(_paper_plot(args.plot))
    _print_paper(out)
    if args.json:
        print(json.dumps(out))
    return 0


def _paper_plot(path: str) -> Path:
    """E1 streaming: Table III's times laid out (as measured) above the fitted model's."""
    from streamal.replay import paper
    from streamal.replay.gantt import draw
    from streamal.replay.validate import _run, fit_e1, reproduce_trace

    costs, _ = fit_e1()
    return draw(
        _run(costs, "E1", "streaming").records,
        path,
        measured=reproduce_trace("streaming").records,
        title=f"E1 streaming, {paper.SIM_CORES['polaris']} sim cores + 4 GPUs",
        labels=("Table III times", "fitted model"),
    )


def _print_paper(out: dict[str, Any]) -> None:
    print("(a) E1 from Table III's task times (nothing fitted):")
    for wf, v in out["e1_trace_replay"].items():
        print(
            f"    {wf:<10} {v['predicted_s']:8.1f} s vs paper {v['paper_s']:8.1f} s "
            f"({v['error']:+.2%})"
        )
    print("(b) fitted on: " + "; ".join(out["fitted"]["on"]))
    print(
        f"    {'':<11}{'GPUs':>5} {'serial s (paper, err)':>28} {'streaming s (paper, err)':>28}"
        f" {'speed-up (paper, diff)':>24}"
    )
    for kind, rows in (
        ("fitted", out["fitted"]["table5_rows"]),
        ("predicted", out["predicted"]["rows"]),
    ):
        for r in rows:
            cells = [
                f"{r[w]['predicted_s']:8.0f} ({r[w]['paper_s']:8.0f}, {r[w]['error']:+6.1%})"
                for w in ("serial", "streaming")
            ]
            sp = r["speedup"]
            print(
                f"    {kind:<9} {r['platform'][:5]:<5}{r['gpus']:>3} {cells[0]:>28} "
                f"{cells[1]:>28} {sp['predicted']:8.3f} ({sp['paper']:.2f}, {sp['error']:+.3f})"
            )
    print(
        f"    predicted rows: max makespan error {out['table5_max_makespan_error']:.1%} "
        f"(target {out['targets']['makespan']:.0%}), max speed-up error "
        f"{out['table5_max_speedup_error']:.3f} (target {out['targets']['speedup']})"
    )
    for g, v in out["diagnostics"]["implied_ddp_factor"].items():
        print(
            f"    diagnostic: Table V at {g.replace('_', ' ')} implies DDP factor {v['implied']}"
            f" on per-sample training time; assumed from Sec. V-D: {v['assumed']}"
        )
    print("(5) predictions beyond the paper (speed-up over serial):")
    for name, rows in out["beyond"].items():
        if name == "note":
            continue
        print(f"    {name}:")
        for r in rows:
            print(
                f"      {r['platform'][:5]:<5}{r['gpus']:>3} GPUs: "
                f"split 0.5 {r['speedup_half']:.3f}"
                f", auto {r['speedup_auto']:.3f} (splits {r['auto_splits']}), "
                f"continuous {r['speedup_continuous']:.3f}"
            )
    if out.get("plot"):
        print(f"wrote plot: {out['plot']}")
