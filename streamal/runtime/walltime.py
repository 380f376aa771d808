"""Task walltimes: how long an attempt may run, and when it started running.

A walltime counts from the moment a worker *starts* the attempt, not from its submission (a
chunk may queue behind many others). The worker says so by writing a small start marker
(:func:`run_marked`) next to the cancel tokens; the driver watches that directory with one
periodic scan (:class:`StartWatch`), however many tasks are in flight.

What happens at the walltime (see :class:`~streamal.runtime.scheduler.Scheduler`): the
attempt's cancel token is set, so cooperative code stops (a training saves ``last.pt``; an
external program is killed with its process group, freeing the worker); the attempt is
recorded with status ``timeout`` and counts as a failed attempt (retried per ``retries``);
the scheduler stops waiting for it. Parsl cannot kill a running Python function: one that
never polls its token keeps its worker busy until it returns or the run ends, and what it
returns then is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamal.runtime.task import CancelToken, TaskOutcome


@dataclass(frozen=True)
class WalltimePolicy:
    """Walltimes in seconds per pool, overridden per stage prefix (the longest match wins).

    ``None`` means no limit. Example: ``WalltimePolicy({"sim": 600}, {"T": 7200})``.
    """

    pools: Mapping[str, float | None] = field(default_factory=dict)
    stages: Mapping[str, float | None] = field(default_factory=dict)

    def for_task(self, pool: str, stage: str) -> float | None:
        """The walltime of a task of ``stage`` on ``pool``, or None."""
        matches = [prefix for prefix in self.stages if stage.startswith(prefix)]
        if matches:
            return self.stages[max(matches, key=len)]
        return self.pools.get(pool)


class AttemptTokens:
    """The cancel tokens of one task, one per attempt, so that an attempt stopped at its
    walltime does not stop its retry. The first attempt's is ``path`` itself."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = CancelToken(str(path))
        self.cancelled = False  # the task (every attempt) was asked to stop

    def for_attempt(self, attempt: int) -> CancelToken:
        """The token of attempt ``attempt`` (already set if the task was cancelled)."""
        path = self.path if attempt == 1 else self.path.with_name(f"{self.path.name}.{attempt}")
        self.current = CancelToken(str(path))
        if self.cancelled:
            self.current.set()
        return self.current

    def cancel(self) -> None:
        """Ask the task to stop: the attempt running now and any later one."""
        self.cancelled = True
        self.current.set()


def run_marked(marker: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Worker side: write the start marker (time, cores, pid, host), then call ``fn``."""
    info = {
        "started": time.time(),
        "cores": sorted(os.sched_getaffinity(0)),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    path = Path(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)  # the driver never reads half a marker
    return fn(*args, **kwargs)


class StartWatch:
    """Resolves a future per start marker once it appears, with one directory scan per period."""

    def __init__(self, directory: Path, period_s: float = 0.25) -> None:
        self.directory = Path(directory)
        self.period_s = period_s
        self._waiting: dict[str, asyncio.Future] = {}
        self._loop_task: asyncio.Task | None = None

    def marker(self, task_id: int, attempt: int) -> Path:
        """Where attempt ``attempt`` of task ``task_id`` writes its start marker."""
        return self.directory / f"task-{task_id}.{attempt}"

    def started(self, marker: Path) -> asyncio.Future:
        """A future resolved with the marker's content (``started``, ``cores``, ``pid``,
        ``host``) once the worker has written it."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[marker.name] = future
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.ensure_future(self._scan())
        return future

    def forget(self, marker: Path) -> None:
        """Stop watching ``marker`` and remove it."""
        future = self._waiting.pop(marker.name, None)
        if future is not None and not future.done():
            future.cancel()
        with contextlib.suppress(OSError):
            marker.unlink()

    async def outcome(
        self, waiter: asyncio.Future, marker: Path, walltime_s: float | None
    ) -> tuple[TaskOutcome, bool]:
        """``(outcome, False)`` when the attempt returns within ``walltime_s`` seconds of its
        start, else ``(a timeout outcome, True)`` at that moment (the attempt runs on)."""
        if walltime_s is None:
            return await waiter, False
        started = self.started(marker)
        try:
            await asyncio.wait({waiter, started}, return_when=asyncio.FIRST_COMPLETED)
            if waiter.done():
                return waiter.result(), False
            info = started.result()
            ran = min(max(0.0, time.time() - info["started"]), walltime_s)
            done, _ = await asyncio.wait({waiter}, timeout=walltime_s - ran)
            if done:
                return waiter.result(), False
            timeout = TaskOutcome(
                error=f"TaskTimeout: timed out after {walltime_s:g} s (its walltime); "
                "asked to stop",
                error_type="TaskTimeout",
                started=info["started"],
                ended=time.time(),
                worker_cores=list(info.get("cores", [])),
                host=info.get("host", ""),
                pid=info.get("pid", 0),
            )
            return timeout, True
        finally:
            self.forget(marker)

    def close(self) -> None:
        """Stop scanning (pending futures are cancelled)."""
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        self._waiting.clear()
        if self._loop_task is not None:
            self._loop_task.cancel()

    async def _scan(self) -> None:
        while self._waiting:
            try:
                present = {e.name for e in os.scandir(self.directory)}
            except OSError:
                present = set()
            for name in present & set(self._waiting):
                future = self._waiting[name]
                if future.done():
                    continue
                try:
                    future.set_result(json.loads((self.directory / name).read_text()))
                except (OSError, ValueError):
                    continue  # read again at the next scan
            await asyncio.sleep(self.period_s)
