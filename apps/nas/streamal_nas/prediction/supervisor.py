"""Driver side of the engine task: keep it running, pause it while the ``sim`` pool is short."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from streamal.runtime.pools import SIM_POOL
from streamal.runtime.scheduler import Scheduler, TaskCancelledError

from .task import run_prediction_engine

__all__ = ["EngineSupervisor"]


class EngineSupervisor:
    """Keeps the prediction-engine task running; pauses it when sim-pool slots are scarce.

    With a single ``sim`` worker (a small node) the long-running engine task is paused —
    cancelled cooperatively and restarted, which costs one re-read of the records — while a
    :meth:`sim_slot` is held (e.g. by a similarity check).

    Args:
        scheduler: The run's scheduler.
        args: Positional arguments of :func:`~.task.run_prediction_engine`.
        exclusive: Pause the engine while a :meth:`sim_slot` is held (one sim worker).

    Attributes:
        runs_: What each finished engine run returned, less its ``decisions``.
    """

    def __init__(self, scheduler: Scheduler, args: tuple, exclusive: bool) -> None:
        self.scheduler = scheduler
        self.args = args
        self.exclusive = exclusive
        self.runs_: list[dict[str, Any]] = []
        self._handle = None
        self._users = 0
        self._closed = False

    def start(self) -> None:
        """Start the engine unless it runs, a slot is held, or the supervisor is closed."""
        if self._handle is None and self._users == 0 and not self._closed:
            k = len(self.runs_) + 1
            self._handle = self.scheduler.start(
                SIM_POOL,
                run_prediction_engine,
                *self.args,
                stage="predict",
                name=f"predict-engine-{k}",
                info={"engine_run": k, "waits": True},  # a poller: not counted as busy
            )

    async def _stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        handle.cancel()
        with contextlib.suppress(TaskCancelledError):
            result = await handle
            self.runs_.append({k: v for k, v in result.items() if k != "decisions"})

    def hold_until(self, done: asyncio.Future) -> None:
        """With ``exclusive``, keep the engine from starting until ``done`` completes (a
        sim-pool job that must not queue behind it). Call before :meth:`start`."""
        if not self.exclusive or done.done():
            return
        self._users += 1

        def release(_: asyncio.Future) -> None:
            self._users -= 1
            self.start()

        done.add_done_callback(release)

    @contextlib.asynccontextmanager
    async def sim_slot(self) -> AsyncIterator[None]:
        """Hold a sim-pool slot; with ``exclusive`` the engine pauses meanwhile."""
        if not self.exclusive:
            yield
            return
        self._users += 1
        try:
            await self._stop()
            yield
        finally:
            self._users -= 1
            self.start()

    async def close(self) -> None:
        """Stop the engine for good."""
        self._closed = True
        await self._stop()
