"""The README's main job at two revisions, side by side: does a change slow the quickstart?

Runs ``python -m streamal run configs/diffraction-quickstart.yaml`` alternately at a base
revision (a ``git worktree``, imported first through ``PYTHONPATH``) and at this checkout,
``--pairs`` times (A B A B …, so drift on a noisy machine hits both), and reports each run's
wall time (the command as a user times it) and the ratio of the medians.

    python bench/quickstart_revisions.py --base 1807eba^ --pairs 2

Writes ``bench/results/quickstart_revisions.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, emit

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/diffraction-quickstart.yaml"
APPS = ("apps/diffraction", "apps/nas")


def _revision(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out.stdout.strip() + ("+changes" if dirty else "")


def _quickstart(tree: Path, run_dir: Path) -> float:
    """Wall seconds of one quickstart run with ``tree``'s code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree), *(str(tree / a) for a in APPS), env.get("PYTHONPATH", "")]
    )
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import streamal, streamal_diffraction as d; print(streamal.__file__, d.__file__)",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not where or not all(Path(w).is_relative_to(tree) for w in where):
        raise SystemExit(f"the code of {tree} is not the one imported: {where}")
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "streamal", "run", CONFIG, "--run-dir", str(run_dir)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"quickstart in {tree} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return wall


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    labels = [f"base {result['base']}", f"this checkout {result['head']}"]
    for i, key in enumerate(("base_s", "head_s")):
        times = [t / 60 for t in result[key]]
        ax.bar(i, statistics.median(times), color=("#9aa", "#47a")[i], width=0.6, label=labels[i])
        ax.plot([i] * len(times), times, "ko", ms=4, label="single runs" if i else None)
    ax.set_xticks([0, 1], labels)
    ax.set_ylabel("wall time of the quickstart (min)")
    ratio = result["ratio_head_over_base"]
    ax.set_title(
        f"{CONFIG}, {len(result['base_s'])} runs each, alternating\n"
        f"this checkout / base = {ratio:.3f} (bars: medians)",
        fontsize=11,
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--pairs", type=int, default=2, help="A/B pairs to run (default 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamal-ab-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base],
            check=True,
            capture_output=True,
        )
        try:
            times: dict[str, list[float]] = {"base": [], "head": []}
            for i in range(args.pairs):
                for name, tree in (("base", base_tree), ("head", ROOT)):
                    wall = _quickstart(tree, Path(tmp) / f"{name}-{i}")
                    times[name].append(wall)
                    print(f"pair {i + 1}/{args.pairs} {name}: {wall:.1f} s", flush=True)
            result = {
                "config": CONFIG,
                "base": _revision(base_tree),
                "head": _revision(ROOT),
                "base_s": times["base"],
                "head_s": times["head"],
                "ratio_head_over_base": statistics.median(times["head"])
                / statistics.median(times["base"]),
            }
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                capture_output=True,
            )
    _plot(result, RESULTS / "quickstart_revisions.png")
    emit("quickstart_revisions", result, args.json)


if __name__ == "__main__":
    main()
