"""``streamal run``: prepare the run directory, start the pools, drive the workflow.

Run directory::

    config.yaml      the config as given        run.json      fingerprint, plan, status
    store.h5         samples (append-only)      timeline.json one record per task attempt
    checkpoints/     per phase: best.pt, last.pt metrics.json  per-phase metrics
    report/          Gantt, utilisation, metrics plots
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from streamal import plugins
from streamal.config import RunConfig, load_config
from streamal.errors import ConfigError, StreamalError
from streamal.executors import build_parsl_config
from streamal.metrics import MetricsLog
from streamal.node import NodePlan, plan_for
from streamal.scheduler import Scheduler
from streamal.store import SampleStore

EXIT_INTERRUPTED = 130
console = Console(stderr=True, soft_wrap=True)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list):
        out = {}
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: data}


def config_difference(a: RunConfig, b: RunConfig) -> list[str]:
    """Lines ``key: old -> new`` for every setting that differs (scheduler ignored)."""
    fa = _flatten(a.model_dump(mode="json", exclude={"scheduler"}))
    fb = _flatten(b.model_dump(mode="json", exclude={"scheduler"}))
    return [
        f"{k}: {fa.get(k, '<unset>')!r} -> {fb.get(k, '<unset>')!r}"
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    ]


def prepare_run_dir(
    config_path: str | None, run_dir: str | None, resume: str | None
) -> tuple[RunConfig, Path, bool]:
    """The validated config and run directory; refuses a resume with another config."""
    if resume:
        path = Path(resume)
        saved = path / "config.yaml"
        if not saved.exists():
            raise ConfigError(f"--resume {path}: not a streamal run directory (no config.yaml)")
        cfg = load_config(saved)
        if config_path:
            given = load_config(config_path)
            diff = config_difference(cfg, given)
            if diff:
                raise ConfigError(
                    f"--resume {path}: the run was started with another config; differences "
                    "(run -> given):\n  " + "\n  ".join(diff)
                )
        return cfg, path, True
    if not config_path:
        raise ConfigError("run: give a CONFIG, or --resume RUN_DIR")
    cfg = load_config(config_path)
    path = Path(run_dir or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if (path / "config.yaml").exists():
        raise ConfigError(f"--run-dir {path}: already holds a run; use --resume {path}")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)
    shutil.copyfile(config_path, path / "config.yaml")
    return cfg, path, False


async def _drive(cfg: RunConfig, run_dir: Path, plan: NodePlan) -> None:
    from streamal.workflows.base import RunContext

    workflow_cls = plugins.load("workflows", cfg.workflow.name)
    store, space, input_shape = None, None, ()
    if cfg.simulator is not None:
        simulator = plugins.load("simulators", cfg.simulator.name)(**cfg.simulator.options)
        space, input_shape = simulator.space, tuple(simulator.output_shape)
        store = SampleStore(
            run_dir / "store.h5",
            param_names=space.param_names,
            class_names=space.class_names,
            input_shape=input_shape,
            metadata={"fingerprint": cfg.fingerprint(), "simulator": cfg.simulator.name},
        )
        for note in store.recovered:
            console.print(f"[yellow]store: {note}")
    parsl_config = build_parsl_config(
        plan,
        cfg.site,
        cfg.scheduler,
        run_dir,
        sim_cores_per_worker=(cfg.simulator.mpi_ranks if cfg.simulator else None) or 1,
        train_worker_per_rank=getattr(workflow_cls, "train_worker_per_rank", False),
    )
    try:
        async with Scheduler(
            parsl_config,
            run_dir=run_dir,
            retries=cfg.scheduler.retries,
            progress=cfg.scheduler.progress,
        ) as scheduler:
            ctx = RunContext(
                cfg,
                run_dir,
                plan,
                scheduler,
                store,
                space,
                input_shape,
                MetricsLog(run_dir / "metrics.json"),
            )
            await workflow_cls(ctx).run()
    finally:
        if store is not None:
            store.close()


def _write_status(run_dir: Path, cfg: RunConfig, plan: NodePlan, status: str, **extra) -> None:
    data = {
        "name": cfg.name,
        "fingerprint": cfg.fingerprint(),
        "status": status,
        "plan": plan.to_json(),
        "updated": time.time(),
        **extra,
    }
    (run_dir / "run.json").write_text(json.dumps(data, indent=1))


def run_campaign(*, config_path: str | None, run_dir: str | None, resume: str | None) -> int:
    """Run (or resume) a campaign; returns the process exit status."""
    os.umask(os.umask(0) | 0o002)  # nothing in the run directory is world-writable
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` prints the stacks
    cfg, path, resumed = prepare_run_dir(config_path, run_dir, resume)
    plan = plan_for(cfg.site)
    console.print(
        f"[bold]streamal[/] {'resuming' if resumed else 'running'} {cfg.name!r} "
        f"({cfg.workflow.name}) in {path}"
    )
    _write_status(path, cfg, plan, "running")
    t0 = time.time()
    try:
        asyncio.run(_drive(cfg, path, plan))
    except KeyboardInterrupt:
        _write_status(path, cfg, plan, "interrupted")
        console.print(
            f"[yellow]interrupted[/]: store, timeline and checkpoints are saved. "
            f"Resume with:\n  {Path(sys.executable).name} -m streamal run --resume {path}"
        )
        return EXIT_INTERRUPTED
    except StreamalError as exc:
        _write_status(path, cfg, plan, "failed", error=str(exc))
        raise
    _write_status(path, cfg, plan, "done", wall_s=time.time() - t0)
    from streamal.report import write_report

    for p in write_report(path):
        console.print(f"wrote {p}")
    return 0
