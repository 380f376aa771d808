"""Processes a dead driver left on this host: found by the run directory they name.

After a driver is SIGKILLed, its worker pools live on until they miss the interchange's
heartbeat (``scheduler.heartbeat_threshold_s``, 30 s), and a training task in one of them
keeps its DDP ranks writing checkpoints. A resumed run holds the run directory's lock, so
any process still naming that directory belongs to a dead driver: it is stopped before the
resume starts, so the two never race.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil


def _names(arg: str, cwd: str | None, root: Path) -> bool:
    for part in {arg, arg.split("=", 1)[-1]}:
        if not part or "/" not in part and part != str(root):
            continue
        path = Path(part)
        if not path.is_absolute():
            if cwd is None:
                continue
            path = Path(cwd) / path
        with contextlib.suppress(OSError, RuntimeError):
            path = path.resolve()
            if path == root or root in path.parents:
                return True
    return False


_OURS = ("process_worker_pool.py", "streamal.train.rank", "streamal.runtime.tether")


def _ours(cmdline: list[str]) -> bool:
    """A pool worker, DDP rank or tethered interchange (not a user's `tail` or `report`)."""
    return any(arg.endswith(_OURS) for arg in cmdline[:3])


def stale_processes(run_dir: str | Path) -> list[psutil.Process]:
    """Pool workers and DDP ranks of this user whose command line names ``run_dir``, and
    their descendants."""
    root = Path(run_dir).resolve()
    me, uid = os.getpid(), os.getuid()
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["pid", "cmdline", "uids"]):
        cmdline = p.info["cmdline"] or []
        if p.pid == me or not _ours(cmdline) or (p.info["uids"] and p.info["uids"].real != uid):
            continue
        try:
            cwd = p.cwd()
        except psutil.Error:
            cwd = None
        if any(_names(a, cwd, root) for a in cmdline[1:]):
            found[p.pid] = p
            with contextlib.suppress(psutil.Error):
                for child in p.children(recursive=True):
                    found[child.pid] = child
    found.pop(me, None)
    return list(found.values())


def stop_stale_processes(run_dir: str | Path, timeout: float = 5.0) -> int:
    """Kill what a dead driver left running for ``run_dir``; returns how many were stopped."""
    procs = stale_processes(run_dir)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=timeout)
    return len(procs)
