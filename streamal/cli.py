"""Command line: ``python -m streamal {run,plan,validate,plugins,report}``.

Exit status: 0 success, 1 the run failed (a full disk included), 2 bad input (config, plugin
name, run directory, a run directory in use), 130/143 stopped by SIGINT/SIGTERM (the message says
how to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from streamal.errors import ConfigError, PluginError, StoreError, StreamalError
from streamal.lock import RunDirBusy

if TYPE_CHECKING:
    from streamal.config import RunConfig

EXIT_BAD_INPUT = 2


def _cmd_validate(args: argparse.Namespace) -> int:
    """Check every config (not only up to the first bad one); exit 2 if any is bad.

    Besides the keys, the node plan and the plugins, each config's footprint is checked
    (:func:`streamal.footprint.check_footprint`): the memory a node needs, always; the store's
    size against the free space at ``--run-dir``, only when it is given (a config is often
    validated on another machine than the one that runs it).
    """
    from streamal.config import load_config
    from streamal.overrides import parse_overrides

    overrides = parse_overrides(args.set)  # a malformed --set: one line, exit 2
    bad = 0
    for path in args.config:
        try:
            cfg = load_config(path, overrides=overrides)
            store = _validate_footprint(cfg, args.run_dir)
        except (ConfigError, PluginError) as exc:
            message = str(exc)
            if not message.startswith(str(path)):
                message = f"{path}: {message}"
            print(f"error: {message}", file=sys.stderr)
            bad += 1
            continue
        print(
            f"{path}: ok ({cfg.workflow.name} workflow, site {cfg.site.name}, "
            f"simulator {cfg.simulator.name if cfg.simulator else 'none'}{store})"
        )
    return EXIT_BAD_INPUT if bad else 0


def _validate_footprint(cfg: RunConfig, run_dir: str | None) -> str:
    """``check_campaign`` for ``validate``; returns ``", store ~1.2 GiB, ..."`` for its ok line."""
    from streamal.footprint import check_campaign, human_bytes

    fp = check_campaign(cfg, Path(run_dir) if run_dir else None)
    if fp is None:
        return ""
    return f", store ~{human_bytes(fp.store_bytes)}, memory ~{human_bytes(fp.memory_bytes)}"


def _cmd_plan(args: argparse.Namespace) -> int:
    """The NodePlan of the config's site (default ``local``), with the flags on top.

    ``--nodes`` is checked here, not by argparse, so a bad value is one ``error:`` line.
    """
    from streamal.cluster import sites
    from streamal.cluster.plan import describe, plan_for
    from streamal.config import SiteConfig, load_config
    from streamal.overrides import parse_overrides

    if args.set and not args.config:
        raise ConfigError("plan: --set needs a CONFIG")
    overrides = parse_overrides(args.set)
    site = load_config(args.config, overrides=overrides).site if args.config else SiteConfig()
    if args.site:
        try:
            sites.get(args.site)
        except PluginError as exc:
            raise ConfigError(f"--site: {exc}") from None
    nodes = None
    if args.nodes is not None:
        try:
            nodes = int(args.nodes)
        except ValueError:
            nodes = 0
        if nodes < 1:
            raise ConfigError(f"--nodes: must be an integer >= 1 (got {args.nodes!r})")
    flags = {
        "name": args.site,
        "trainer_ranks": args.ranks,
        "cores_per_rank": args.cores_per_rank,
        "nodes": nodes,
    }
    # a copy without validation: a batch site's plan needs no `account`
    site = site.model_copy(update={k: v for k, v in flags.items() if v is not None})
    plan = plan_for(site)
    print(json.dumps(plan.to_json()) if args.json else describe(plan))
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from streamal import plugins

    found = plugins.describe()
    if args.json:
        print(json.dumps(found))
        return 0
    for kind, entries in found.items():
        print(f"{kind} ({plugins.GROUPS[kind]}):")
        for e in entries or [{"name": "(none installed)", "value": "", "dist": ""}]:
            print(f"  {e['name']:<24} {e['value']}  [{e['dist']}]".rstrip())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Run a campaign here, or, on a batch site with ``allocation: submit``, submit the one
    batch job that runs it (:mod:`streamal.cluster.submit`) and say how to follow it."""
    from streamal.overrides import parse_overrides

    overrides = parse_overrides(args.set)
    if args.config and not args.resume:
        from streamal.cluster.submit import submit_run, submits_job
        from streamal.config import load_config

        cfg = load_config(args.config, overrides=overrides)
        if submits_job(cfg):
            print(submit_run(cfg, args.config, args.run_dir, overrides).summary())
            return 0
    from streamal.runner import run_campaign

    return run_campaign(
        config_path=args.config,
        run_dir=args.run_dir,
        resume=args.resume,
        overrides=overrides,
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from streamal.report import write_report

    for path in write_report(Path(args.run_dir)):
        print(path)
    return 0


def _positive(text: str) -> int:
    """An argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {value})")
    return value


def _add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set KEY.PATH=VALUE`` (repeatable), parsed by :mod:`streamal.overrides`."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config key before validation, e.g. site.nodes=2 or "
        "workflow.phases[1].samples=900; the value is YAML; repeatable, applied in order",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamal", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a campaign from a config")
    run.add_argument("config", nargs="?", help="YAML config (omit with --resume)")
    run.add_argument("--run-dir", help="output folder (default runs/<name>-<timestamp>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    _add_set_option(run)
    run.set_defaults(func=_cmd_run)

    plan = sub.add_parser("plan", help="show how a node is split between the pools")
    plan.add_argument("config", nargs="?")
    plan.add_argument("--site", help="an installed site (`streamal plugins` lists them)")
    plan.add_argument(
        "--ranks", type=_positive, help="trainer ranks (default: one per GPU, else 1)"
    )
    plan.add_argument("--cores-per-rank", type=_positive)
    plan.add_argument(
        "--nodes",
        metavar="N",
        help="nodes to plan for, >= 1 (default: the config's site.nodes, else 1)",
    )
    plan.add_argument("--json", action="store_true")
    _add_set_option(plan)
    plan.set_defaults(func=_cmd_plan)

    val = sub.add_parser("validate", help="check configs; exit 2 naming the bad key")
    val.add_argument("config", nargs="+")
    val.add_argument(
        "--run-dir", help="also check that the campaign's store fits on this folder's disk"
    )
    _add_set_option(val)
    val.set_defaults(func=_cmd_validate)

    plg = sub.add_parser("plugins", help="list installed entry-point plugins")
    plg.add_argument("--json", action="store_true")
    plg.set_defaults(func=_cmd_plugins)

    rep = sub.add_parser("report", help="plots and tables of a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_cmd_report)

    from streamal.study.cli import add_parsers as add_study

    add_study(sub, _add_set_option)
    from streamal.replay.cli import add_parser as add_replay

    add_replay(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, PluginError, StoreError, RunDirBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StreamalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
