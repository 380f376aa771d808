"""``streamal nas-export RUN_DIR [--rank K] [--out FILE]``: a searched genome as a model config.

The candidates of a nas run (``candidates.json``, else an unfinished run's saved
evaluations) are ranked on their Pareto front by error, then cost (rank 1: the front's
lowest error); the chosen one is written as the ``model:`` section of a campaign config,
``nas-genome`` with the genome and the search's ``channels``, ``network`` and input
``encoder``, so ``streamal run`` trains that architecture in any active-learning workflow::

    streamal nas-export runs/nas-diffraction-quickstart-20250101-120000 --out winner.yaml
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "export_model", "pareto_ranking", "run"]


def pareto_ranking(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows on the Pareto front of ``[error, cost]``, by error, then cost."""
    import numpy as np

    from .objectives import objective_vector
    from .strategies import pareto_indices

    if not rows:
        return []
    f = np.array([objective_vector(r) for r in rows], dtype=float)
    front = [int(i) for i in pareto_indices(f)]
    return [rows[i] for i in sorted(front, key=lambda i: (f[i, 0], f[i, 1], rows[i]["id"]))]


def _options(run_dir: Path) -> Any:
    """The run's ``workflow.options`` as :class:`~.options.NasOptions`."""
    import yaml

    from streamal import durable
    from streamal.errors import ConfigError

    from .options import NasOptions

    status = durable.read_json(run_dir / "run.json", default=None)
    config = status.get("config") if isinstance(status, dict) else None
    if not isinstance(config, dict) and (run_dir / "config.yaml").is_file():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    workflow = config.get("workflow") if isinstance(config, dict) else None
    if not isinstance(workflow, dict) or workflow.get("name") != "nas":
        raise ConfigError(f"nas-export: {run_dir} is not a nas run (no nas workflow config)")
    return NasOptions.model_validate(workflow.get("options") or {})


def export_model(run_dir: str | Path, rank: int = 1) -> tuple[dict[str, Any], str]:
    """The ``model:`` section of the rank-``rank`` candidate, and a comment describing it.

    Raises:
        ConfigError: Not a nas run, no candidate yet, or ``rank`` past the front's end.
    """
    from streamal.errors import ConfigError

    from .genome_model import parse_genome
    from .outputs import read_rows

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"nas-export: no run directory {run_dir}")
    options = _options(run_dir)
    front = pareto_ranking(read_rows(run_dir))
    if not front:
        raise ConfigError(f"nas-export: {run_dir} has no evaluated candidate yet")
    if not 1 <= rank <= len(front):
        raise ConfigError(
            f"nas-export: --rank {rank}: the Pareto front of {run_dir} has {len(front)} "
            f"candidate(s); use --rank 1..{len(front)}"
        )
    row = front[rank - 1]
    encoder = getattr(options.dataset, "encoder", None)
    model_options: dict[str, Any] = {
        "genome": parse_genome(row["genome"]).key(),
        "channels": options.channels,
        "network": options.network.model_dump(),
    }
    if encoder is not None:
        model_options["encoder"] = encoder.model_dump()
    metric = row.get("fitness_metric", "accuracy")
    about = (
        f"nas-export of {run_dir}: candidate {row['id']} ({row['genome']}), rank {rank} of "
        f"{len(front)} on the Pareto front; {metric} {row['fitness']:.6g}, "
        f"{row['flops']:.4g} FLOPs, {row['params']} parameters, "
        f"dataset {options.dataset.name}"
    )
    return {"name": "nas-genome", "options": model_options}, about


def run(args: argparse.Namespace) -> int:
    """Print (or write to ``--out``) the chosen candidate's model config; 0 on success."""
    import yaml

    from streamal import durable
    from streamal.errors import ConfigError, os_reason

    model, about = export_model(args.run_dir, args.rank)
    body = yaml.safe_dump({"model": model}, sort_keys=False, default_flow_style=None)
    text = f"# {about}\n{body}"
    if not args.out:
        print(text, end="")
        return 0
    try:
        durable.write_text(args.out, text)
    except OSError as exc:
        reason = os_reason(exc)
        raise ConfigError(f"nas-export: --out {args.out}: cannot write ({reason})") from None
    print(f"wrote {args.out}: {about}")
    return 0


def _rank(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def add_parser(subparsers: Any) -> str:  # argparse's _SubParsersAction
    """Register ``nas-export`` (entry point ``streamal.commands``); returns its example."""
    p = subparsers.add_parser(
        "nas-export",
        help="write a nas run's searched genome as a nas-genome model config",
        description="Write a nas run's searched genome as a nas-genome model config. "
        "Candidates on the Pareto front are ranked by error, then cost; the YAML snippet is "
        "the model section of a campaign config.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a nas run directory")
    p.add_argument(
        "--rank",
        type=_rank,
        default=1,
        metavar="K",
        help="the K-th candidate of the Pareto front, by error then cost (default 1: the "
        "lowest error)",
    )
    p.add_argument("--out", metavar="FILE", help="write the YAML to FILE instead of stdout")
    p.set_defaults(func=run)
    return "streamal nas-export runs/nas-ci-20250101-120000 --rank 1 --out model.yaml"
