"""``python -m streamal scale`` and ``scale-report``.

streamal scale CONFIG --nodes 1,2,4 [--workflows serial,streaming] [--repeat R]
               [--set KEY=VALUE ...] [--out DIR] [--dry-run]
streamal scale-report STUDY_DIR
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamal.errors import ConfigError


def add_parsers(subparsers: Any, add_set_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``scale`` and ``scale-report`` on ``subparsers`` (argparse's)."""
    scale = subparsers.add_parser(
        "scale",
        help="run one campaign at several node counts and workflows (a study)",
        description="Run one campaign at several node counts and workflows (a study), then "
        "report it. Run again to resume an interrupted study or extend it.",
    )
    scale.add_argument("config", help="YAML config of the campaign")
    scale.add_argument("--nodes", required=True, help="node counts, e.g. 1,2,4")
    scale.add_argument("--workflows", help="e.g. serial,streaming (default: the config's)")
    scale.add_argument("--repeat", type=int, default=1, help="runs of each (default 1)")
    scale.add_argument("--out", help="study directory (default runs/<config>-scale)")
    scale.add_argument("--dry-run", action="store_true", help="print what would run")
    add_set_option(scale)
    scale.set_defaults(func=scale_command)

    report = subparsers.add_parser(
        "scale-report",
        help="tables and plots of a scaling study",
        description="Print a scaling study's table; write STUDY_DIR/report/scaling.json and "
        "scaling.png.",
    )
    report.add_argument(
        "study_dir", metavar="STUDY_DIR", help="a study directory made by `streamal scale`"
    )
    report.set_defaults(func=scale_report_command)


def node_counts(text: str) -> list[int]:
    """``"1,2,4"`` → ``[1, 2, 4]``.

    Raises:
        ConfigError: Not a comma-separated list of integers >= 1.
    """
    try:
        counts = sorted({int(n) for n in text.split(",") if n.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise ConfigError(f"--nodes {text!r}: a comma-separated list of node counts >= 1")
    return counts


def scale_command(args: argparse.Namespace) -> int:
    """Plan (or extend) the study, run what is not done, then report it."""
    from streamal.config import load_config
    from streamal.overrides import parse_overrides
    from streamal.study.execute import run_study
    from streamal.study.layout import plan_study
    from streamal.study.report import format_table, scale_report

    config = Path(args.config)
    if not config.is_file():
        raise ConfigError(f"{args.config}: no such config file")
    if args.repeat < 1:
        raise ConfigError(f"--repeat {args.repeat}: at least 1")
    nodes = node_counts(args.nodes)
    workflows = [w.strip() for w in (args.workflows or "").split(",") if w.strip()]
    if not workflows:
        workflows = [load_config(config, overrides=parse_overrides(args.set)).workflow.name]
    out = Path(args.out) if args.out else Path("runs") / f"{config.stem}-scale"
    study = plan_study(out, config, list(args.set), nodes, workflows, args.repeat)
    rc = run_study(study, dry_run=args.dry_run, say=lambda line: print(line, flush=True))
    if rc == 0 and not args.dry_run:
        print(format_table(scale_report(out)))
        print(f"report: {out / 'report' / 'scaling.png'} and scaling.json")
    return rc


def scale_report_command(args: argparse.Namespace) -> int:
    """Print the study's table; write its JSON and PNG."""
    from streamal.study.report import format_table, scale_report

    table = scale_report(args.study_dir)
    print(format_table(table))
    if table["rows"]:
        print(f"wrote {Path(args.study_dir) / 'report' / 'scaling.png'} and scaling.json")
    return 0
