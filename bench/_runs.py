"""Run campaigns for the benchmarks and read back what they measured."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from streamal.runtime.timeline import load_records

BENCH = str(Path(__file__).resolve().parent)


def run_config(config: dict[str, Any], run_dir: Path, timeout: float = 1800) -> Path:
    """``python -m streamal run`` in a fresh process (the way users run it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f"{run_dir.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ)  # bench/ on the path: a config may name a plugin defined here
    env["PYTHONPATH"] = os.pathsep.join(p for p in (BENCH, env.get("PYTHONPATH")) if p)
    res = subprocess.run(
        [sys.executable, "-m", "streamal", "run", str(path), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if res.returncode != 0:
        raise RuntimeError(f"run {run_dir} failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return run_dir


def finished_run(config: dict[str, Any], run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly ``config`` (``run.json`` done,
    the same config file beside it): a benchmark can then read it instead of running again."""
    path = run_dir.parent / f"{run_dir.name}.yaml"
    try:
        status = json.loads((run_dir / "run.json").read_text()).get("status")
        same = yaml.safe_load(path.read_text()) == config
    except (OSError, ValueError):
        return False
    return status == "done" and same


def run_or_reuse(config: dict[str, Any], run_dir: Path) -> Path:
    """``run_dir`` holding a finished run of ``config``: the one an earlier ``--keep`` left
    there, else a fresh :func:`run_config` (what an interrupted run left is removed first)."""
    if not finished_run(config, run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)
        run_config(config, run_dir)
    return run_dir


def makespan(run_dir: Path) -> float:
    """First task start to last task end, seconds (Parsl start-up excluded)."""
    recs = [r for r in load_records(run_dir / "timeline.json") if r.started and r.ended]
    return max(r.ended for r in recs) - min(r.started for r in recs)


def overlap_efficiency(run_dir: Path) -> dict[str, float]:
    """Busy core-seconds / available core-seconds of each pool over the makespan."""
    plan = json.loads((run_dir / "run.json").read_text())["plan"]
    nodes = plan.get("nodes", 1)  # every node is split the same way
    cores = {
        "sim": len(plan["sim_cores"]) * nodes,
        "train": sum(len(r["cores"]) for r in plan["trainer_ranks"]) * nodes,
    }
    recs = [r for r in load_records(run_dir / "timeline.json") if r.started and r.ended]
    span = makespan(run_dir)
    out = {}
    for pool, n in cores.items():
        busy = sum(r.duration * (1 if pool == "sim" else n) for r in recs if r.pool == pool)
        out[pool] = busy / (n * span) if span > 0 else 0.0
    return out


def final_metrics(run_dir: Path) -> dict[str, Any]:
    """The last phase's entry of ``metrics.json``."""
    return json.loads((run_dir / "metrics.json").read_text())["phases"][-1]
