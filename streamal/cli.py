"""Command line: ``python -m streamal COMMAND`` (or ``streamal COMMAND``).

Exit status: 0 success, 1 the run failed (a full disk included), 2 bad input (config, plugin
name, run directory, a run directory in use, a command-line usage error), 130/143 stopped by
SIGINT/SIGTERM (the message says how to resume). Bad input is reported as ``error: ...`` lines
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from streamal.errors import ConfigError, PluginError, StoreError, StreamalError
from streamal.lock import RunDirBusy

if TYPE_CHECKING:
    from streamal.config import RunConfig

EXIT_BAD_INPUT = 2

DESCRIPTION = (
    "streamal runs simulate -> train -> choose-what-to-simulate-next campaigns on HPC nodes "
    "(or a laptop), with simulation and training overlapped on one node plan."
)

EPILOG = """\
examples (one per command; `streamal COMMAND -h` for its options):
  run            streamal run configs/diffraction-quickstart.yaml --set site.nodes=2
                 streamal run --resume runs/diffraction-quickstart-20250101-120000
  plan           streamal plan --site polaris --nodes 4
  validate       streamal validate configs/*.yaml
  plugins        streamal plugins --json
  report         streamal report runs/diffraction-quickstart-20250101-120000
  config-schema  streamal config-schema --markdown --output docs/config-reference.md
  scale          streamal scale configs/diffraction-ci.yaml --nodes 1,2 --dry-run
  scale-report   streamal scale-report runs/diffraction-ci-scale
  replay         streamal replay --paper
  predict        streamal predict runs/diffraction-quickstart-20250101-120000 sample.gsa

exit status: 0 success, 1 the run failed, 2 bad input (each problem an "error:" line, no
traceback), 130/143 stopped by SIGINT/SIGTERM (the message says how to resume)
"""


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``error:`` line (exit status 2), no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} -h)\n")


def _version() -> str:
    """The installed distribution's version, else the package's ``__version__``."""
    from importlib import metadata

    try:
        return metadata.version("streamal")
    except metadata.PackageNotFoundError:
        import streamal

        return str(getattr(streamal, "__version__", "unknown"))


def _error(message: str) -> None:
    """One ``error:`` line on stderr (a message spanning lines is joined into one)."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


def _cmd_validate(args: argparse.Namespace) -> int:
    """Check every config (not only up to the first bad one); exit 2 if any is bad.

    Each bad config gets a header line and one ``error: FILE: key.path: ...`` line per
    problem: its keys, its plugin names and options, its site against the node, all at once.
    Besides the keys, the node plan and the plugins, each config's footprint is checked
    (:func:`streamal.footprint.check_footprint`): the memory a node needs, always; the store's
    size against the free space at ``--run-dir``, only when it is given (a config is often
    validated on another machine than the one that runs it).
    """
    from streamal.config import InvalidConfig, load_config
    from streamal.overrides import parse_overrides

    overrides = parse_overrides(args.set)  # a malformed --set: one line, exit 2
    bad = 0
    for path in args.config:
        try:
            cfg = load_config(path, overrides=overrides)
            store = _validate_footprint(cfg, args.run_dir)
        except InvalidConfig as exc:
            n = len(exc.problems)
            _error(f"{exc.source}: invalid configuration ({n} problem{'s' if n != 1 else ''})")
            for problem in exc.problems:
                _error(f"{exc.source}: {problem}")
            bad += 1
            continue
        except (ConfigError, PluginError) as exc:
            message = str(exc)
            if not message.startswith(str(path)):
                message = f"{path}: {message}"
            _error(message)
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


#: What makes a folder a run directory (``runner`` writes them); one is enough.
RUN_DIR_MARKERS = ("run.json", "config.yaml", "timeline.jsonl", "timeline.json")


def _check_run_dir(path: Path) -> None:
    """Refuse, before writing anything, a path that is not a run directory with tasks.

    Raises:
        ConfigError: ``path`` is missing, not a folder, not a run directory, or a run
            directory with no task recorded yet.
    """
    if not path.exists():
        raise ConfigError(f"{path}: no such run directory")
    if not path.is_dir():
        raise ConfigError(f"{path}: not a directory; give a run directory (runs/<name>-<time>)")
    if not any((path / name).exists() for name in RUN_DIR_MARKERS):
        raise ConfigError(
            f"{path}: not a run directory (no run.json, config.yaml or timeline.jsonl)"
        )
    if not any((path / name).exists() for name in RUN_DIR_MARKERS[2:]):
        raise ConfigError(f"{path}: no task recorded yet (no timeline.jsonl); nothing to report")


def _cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    _check_run_dir(run_dir)
    from streamal.report import write_report

    for path in write_report(run_dir):
        print(path)
    return 0


def _cmd_config_schema(args: argparse.Namespace) -> int:
    """RunConfig's JSON schema, or (``--markdown``) the config reference, to stdout or a file."""
    if args.markdown:
        from streamal.config_reference import reference_markdown

        text = reference_markdown(all_plugins=args.all_plugins)
    else:
        if args.all_plugins:
            raise ConfigError("config-schema: --all-plugins applies to --markdown")
        from streamal.config import RunConfig

        text = json.dumps(RunConfig.model_json_schema(), indent=2) + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    from streamal import durable
    from streamal.errors import os_reason

    try:
        durable.write_text(args.output, text)
    except OSError as exc:
        raise ConfigError(f"--output {args.output}: cannot write ({os_reason(exc)})") from None
    print(f"wrote {args.output}", file=sys.stderr)
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


def _add_command(
    sub: Any, name: str, summary: str, about: str = ""
) -> argparse.ArgumentParser:  # sub: argparse's _SubParsersAction
    """A subcommand whose ``-h`` starts with ``summary`` (and ``about``, if given)."""
    description = f"{summary[0].upper()}{summary[1:]}." + (f" {about}" if about else "")
    return sub.add_parser(name, help=summary, description=description)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="streamal",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"streamal {_version()}",
        help="print streamal's version and exit",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _add_command(
        sub,
        "run",
        "run a campaign from a config",
        "On a batch site with site.allocation: submit, submits the one batch job that runs it.",
    )
    run.add_argument("config", nargs="?", help="YAML config (omit with --resume)")
    run.add_argument(
        "--run-dir", help="output folder of a new run (default runs/<name>-<timestamp>)"
    )
    run.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run from its directory"
    )
    _add_set_option(run)
    run.set_defaults(func=_cmd_run)

    plan = _add_command(sub, "plan", "show how a node is split between the pools")
    plan.add_argument(
        "config", nargs="?", help="YAML config whose site to plan (default: the local site)"
    )
    plan.add_argument("--site", help="an installed site (`streamal plugins` lists them)")
    plan.add_argument(
        "--ranks", type=_positive, help="trainer ranks (default: one per GPU, else 1)"
    )
    plan.add_argument(
        "--cores-per-rank",
        type=_positive,
        help="cores pinned to each trainer rank (default 2, fewer on a tiny node)",
    )
    plan.add_argument(
        "--nodes",
        metavar="N",
        help="nodes to plan for, >= 1 (default: the config's site.nodes, else 1)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    _add_set_option(plan)
    plan.set_defaults(func=_cmd_plan)

    val = _add_command(
        sub,
        "validate",
        "check configs; exit 2 listing every problem",
        "Each config is checked whole (keys, plugin names and options, the site against its "
        "node, the memory it needs); each problem is one 'error: FILE: key.path: ...' line.",
    )
    val.add_argument("config", nargs="+", help="YAML config(s) to check, each in turn")
    val.add_argument(
        "--run-dir", help="also check that the campaign's store fits on this folder's disk"
    )
    _add_set_option(val)
    val.set_defaults(func=_cmd_validate)

    plg = _add_command(sub, "plugins", "list installed entry-point plugins")
    plg.add_argument(
        "--json", action="store_true", help="print {kind: [{name, value, dist}]} as JSON"
    )
    plg.set_defaults(func=_cmd_plugins)

    rep = _add_command(
        sub,
        "report",
        "plots and tables of a run directory",
        "Writes RUN_DIR/report/ (Gantt chart, utilisation, metrics, tasks.json) and prints the "
        "per-task-group timing table.",
    )
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (runs/<name>-<time>)")
    rep.set_defaults(func=_cmd_report)

    schema = _add_command(
        sub,
        "config-schema",
        "print the config's JSON schema, or its Markdown reference",
        "docs/config-reference.md is made with: "
        "streamal config-schema --markdown --output docs/config-reference.md",
    )
    schema.add_argument(
        "--markdown",
        action="store_true",
        help="print the Markdown reference of every key and of the built-in plugins' options "
        "instead of the JSON schema",
    )
    schema.add_argument(
        "--all-plugins",
        action="store_true",
        help="with --markdown: also the options of every installed plugin (apps, your own)",
    )
    schema.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    schema.set_defaults(func=_cmd_config_schema)

    from streamal.study.cli import add_parsers as add_study

    add_study(sub, _add_set_option)
    from streamal.replay.cli import add_parser as add_replay

    add_replay(sub)
    from streamal.inference.cli import add_parser as add_predict

    add_predict(sub)
    examples = [f"  {name:<14} {example}" for name, example in _add_app_commands(sub)]
    if examples:
        head, _, tail = EPILOG.partition("\n\nexit status")
        p.epilog = "\n".join([head, *examples]) + "\n\nexit status" + tail
    return p


COMMANDS_GROUP = "streamal.commands"
"""Entry-point group of the subcommands apps add (``nas-export``): each entry point is a
function ``add_parser(subparsers) -> str`` that registers the command named as the entry
point on argparse's subparsers (with ``set_defaults(func=...)``) and returns a one-line
example of it for ``streamal -h``."""


def _add_app_commands(sub: Any) -> list[tuple[str, str]]:
    """Register the :data:`COMMANDS_GROUP` subcommands; ``[(name, example)]``.

    A command that cannot be loaded, or whose name a built-in command has, is left out with a
    ``warning:`` line on stderr: one broken app does not take the CLI down.
    """
    from importlib.metadata import entry_points

    added = []
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        if ep.name in sub.choices:
            print(f"warning: command {ep.name!r} ({ep.value}) is built in", file=sys.stderr)
            continue
        try:
            example = ep.load()(sub)
        except Exception as exc:  # an app's bug: name it, keep the other commands
            print(
                f"warning: command {ep.name!r} ({ep.value}) could not be added: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                file=sys.stderr,
            )
            continue
        if ep.name in sub.choices:
            added.append((ep.name, str(example or f"streamal {ep.name} -h")))
    return added


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (``-h``, ``--version``: 0; bad usage: 2)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # -h, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT * bool(exc.code)
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
