"""``streamal run``: prepare the run directory, start the pools, drive the workflow.

Run directory::

    config.yaml      the config (with --set)    run.json      fingerprint, plan, status
    store.h5         samples (append-only)      timeline.json one record per task attempt
    checkpoints/     per phase: best.pt, last.pt metrics.json  per-phase metrics
    report/          Gantt, utilisation, metrics plots
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from streamal import durable, plugins
from streamal.cluster.parsl_config import build_parsl_config, pool_resources, train_launcher
from streamal.cluster.plan import NodePlan, plan_for
from streamal.config import RunConfig
from streamal.data.store import SampleStore
from streamal.errors import ConfigError, DiskFullError, os_reason
from streamal.footprint import human_bytes
from streamal.run_dir import prepare_run_dir
from streamal.runtime.scheduler import Scheduler, TaskFailed
from streamal.runtime.walltime import WalltimePolicy
from streamal.train.metrics import MetricsLog

if TYPE_CHECKING:
    from streamal.overrides import Override

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
console = Console(stderr=True, soft_wrap=True)


class _Stopping:
    """What the driver's signal handlers share with the run."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.since = 0.0
        self.scheduler: Scheduler | None = None


async def _drive(cfg: RunConfig, run_dir: Path, plan: NodePlan, stopping: _Stopping) -> None:
    from streamal.workflows.base import RunContext

    workflow_cls = plugins.load("workflows", cfg.workflow.name)
    store, space, input_shape, sim_cores = None, None, (), 1
    if cfg.simulator is not None:
        simulator = plugins.load("simulators", cfg.simulator.name)(**cfg.simulator.options)
        space, input_shape = simulator.space, tuple(simulator.output_shape)
        sim_cores = cfg.simulator.mpi_ranks or getattr(simulator, "task_cores", 1)
        store = SampleStore(
            run_dir / "store.h5",
            param_names=space.param_names,
            class_names=space.class_names,
            input_shape=input_shape,
            metadata={"fingerprint": cfg.fingerprint(), "simulator": cfg.simulator.name},
        )
        for note in store.recovered:
            console.print(f"[yellow]store: {note}")
    model_per_rank = workflow_cls.model_per_rank(cfg.workflow.options)
    ddp = workflow_cls.ddp_trainings
    launcher = train_launcher(cfg.train.launcher, plan, ddp_trainings=ddp)
    parsl_config = build_parsl_config(
        plan,
        cfg.site,
        cfg.scheduler,
        run_dir,
        sim_cores_per_worker=sim_cores,
        train_worker_per_rank=model_per_rank,
        train_launcher=launcher,
        ddp_trainings=ddp,
    )
    try:
        scheduler = Scheduler(
            parsl_config,
            run_dir=run_dir,
            retries=cfg.scheduler.retries,
            progress=cfg.scheduler.progress,
            progress_interval_s=cfg.scheduler.progress_interval_s,
            walltimes=WalltimePolicy(cfg.scheduler.walltime_s, cfg.scheduler.stage_walltime_s),
            resources=pool_resources(launcher),
        )
        stopping.scheduler = scheduler
        scheduler.progress.title = f"{cfg.name} ({cfg.workflow.name})"
        async with scheduler:
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
    """Write ``run.json`` atomically; when the disk is full, give up the reserve and retry."""
    data = {
        "name": cfg.name,
        "fingerprint": cfg.fingerprint(),
        "status": status,
        "plan": plan.to_json(),
        "updated": time.time(),
        "pid": os.getpid(),
        "config": cfg.model_dump(mode="json"),
        **extra,
    }
    try:
        durable.write_json(run_dir / "run.json", data)
    except OSError as exc:
        if not durable.is_disk_full(exc) or not _RESERVE.release(run_dir):
            raise
        durable.write_json(run_dir / "run.json", data)


class _Reserve:
    """A little disk space kept aside so ``run.json`` can still say why a full disk stopped
    the run."""

    name = ".reserve"
    size = 64 * 1024

    def keep(self, run_dir: Path) -> None:
        path = run_dir / self.name
        with contextlib.suppress(OSError):
            if not path.exists() or path.stat().st_size < self.size:
                durable.write_bytes(path, b"\0" * self.size)

    def release(self, run_dir: Path) -> bool:
        try:
            (run_dir / self.name).unlink()
        except FileNotFoundError:
            return False
        return True


_RESERVE = _Reserve()


def _disk_full_message(exc: BaseException, run_dir: Path) -> str | None:
    """One line for a failure caused by a full (or read-only) file system, else None."""
    if isinstance(exc, DiskFullError):
        return str(exc)
    if not durable.is_disk_full(exc):
        return None
    what = os_reason(exc)
    if isinstance(exc, OSError) and exc.filename:
        what = f"cannot write {exc.filename}: {what}"
    elif isinstance(exc, TaskFailed):
        what = f"task {exc.name!r} could not write its files: {exc.error.splitlines()[-1]}"
    try:
        usage = shutil.disk_usage(run_dir)
        room = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} on {run_dir}"
    except OSError:
        room = f"on {run_dir}"
    return f"disk full: {what} ({room})"


def resume_command(run_dir: Path) -> str:
    """The command that resumes ``run_dir``, with the interpreter that runs now."""
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    return f"{shlex.quote(str(exe))} -m streamal run --resume {shlex.quote(str(run_dir))}"


async def _main(cfg: RunConfig, run_dir: Path, plan: NodePlan, stopping: _Stopping) -> None:
    """Drive the run; the first SIGINT/SIGTERM stops it in order, the second at once."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def announce(signum: int) -> None:
        if stopping.scheduler is not None:
            stopping.scheduler.shutdown_s = 6.0  # a person (or the batch system) is waiting
        console.print(
            f"[yellow]{signal.Signals(signum).name}[/]: stopping — saving the store, timeline "
            "and checkpoints and shutting the pools down (signal again to stop at once)"
        )

    def on_signal(signum: int, frame: object) -> None:
        if stopping.signum is None:
            stopping.signum, stopping.since = signum, time.time()
            loop.call_soon_threadsafe(announce, signum)
            loop.call_soon_threadsafe(main.cancel)
            return
        _force_exit(run_dir, cfg, plan, stopping, signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        await _drive(cfg, run_dir, plan, stopping)
    except asyncio.CancelledError:
        if stopping.signum is None:
            raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _force_exit(run_dir: Path, cfg: RunConfig, plan: NodePlan, stopping: _Stopping, signum: int):
    """Second signal: kill the pools, record the stop and exit without waiting for anything."""
    name = signal.Signals(signum).name
    os.write(2, f"\n{name} again: stopping at once\n".encode())
    if stopping.scheduler is not None:
        with contextlib.suppress(Exception):
            stopping.scheduler.kill()
    with contextlib.suppress(Exception):
        _write_status(run_dir, cfg, plan, "interrupted", signal=name, forced=True)
    os.write(2, f"resume with:\n  {resume_command(run_dir)}\n".encode())
    os._exit(128 + signum)


def _exit_now_if(pools_killed: bool, status: int) -> int:
    """After the pools had to be killed, a Parsl thread may still wait on a dead
    interchange and keep the interpreter from exiting: leave at once (all is written)."""
    if pools_killed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def run_campaign(
    *,
    config_path: str | None,
    run_dir: str | None,
    resume: str | None,
    overrides: Sequence[Override] = (),
) -> int:
    """Run (or resume) a campaign; returns the process exit status."""
    os.umask(os.umask(0) | 0o002)  # nothing in the run directory is world-writable
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` prints the stacks
    with contextlib.ExitStack() as hold:
        cfg, path, resumed = prepare_run_dir(config_path, run_dir, resume, hold, overrides)
        return _run_locked(cfg, path, resumed)


def _run_locked(cfg: RunConfig, path: Path, resumed: bool) -> int:
    plan = plan_for(cfg.site)
    try:
        _write_status(path, cfg, plan, "running")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write run.json ({os_reason(exc)})") from None
    _RESERVE.keep(path)
    console.print(
        f"[bold]streamal[/] {'resuming' if resumed else 'running'} {cfg.name!r} "
        f"({cfg.workflow.name}) in {path}"
    )
    t0 = time.time()
    stopping = _Stopping()
    try:
        asyncio.run(_main(cfg, path, plan, stopping))
    except BaseException as exc:
        message = _disk_full_message(exc, path)
        if message is not None:
            _write_status(path, cfg, plan, "failed", error=message, reason="disk full")
            raise DiskFullError(
                f"{message}\nFree some space, then resume with:\n  {resume_command(path)}"
            ) from None
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            _write_status(path, cfg, plan, "interrupted", error=type(exc).__name__)
        else:
            _write_status(path, cfg, plan, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if stopping.signum is not None:
        name = signal.Signals(stopping.signum).name
        took = time.time() - stopping.since
        killed = stopping.scheduler is not None and stopping.scheduler.pools_killed
        _write_status(path, cfg, plan, "interrupted", signal=name, stop_s=round(took, 1))
        console.print(
            f"[yellow]stopped[/] by {name} in {took:.1f} s"
            f"{' (pools killed)' if killed else ''}: store, timeline and checkpoints are saved. "
            f"Resume with:\n  {resume_command(path)}"
        )
        return _exit_now_if(killed, 128 + stopping.signum)
    _write_status(path, cfg, plan, "done", wall_s=time.time() - t0)
    from streamal.report import write_report
    from streamal.report.summary import print_summary

    figures = cfg.report.figures
    print_summary(path, write_report(path, figures=figures), figures=figures)
    return _exit_now_if(stopping.scheduler is not None and stopping.scheduler.pools_killed, 0)
