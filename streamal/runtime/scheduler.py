"""The overlap scheduler: asyncio on top of Parsl futures, one timeline record per attempt.

Example::

    async with Scheduler(parsl_config, run_dir="runs/x") as sched:
        sim = sched.start("sim", simulate_chunk, chunk, stage="S1", name="S1/chunk-3")
        model = await sched.submit("train", train, view, stage="T0", name="T0")
        samples = await sim

Any number of tasks may be in flight per pool (Parsl queues them on the pool's workers).
A failed attempt is retried up to ``retries`` times; each attempt leaves a
:class:`~streamal.runtime.timeline.TaskRecord`. :meth:`TaskHandle.cancel` asks a running
task to stop through its :class:`~streamal.runtime.task.CancelToken`.

Walltimes (:class:`~streamal.runtime.walltime.WalltimePolicy`, per pool and stage prefix, or
per call): an attempt running longer than its walltime is asked to stop through its token,
recorded as ``timeout`` and counted as a failed attempt (retried per ``retries``); the
scheduler stops waiting for it. Parsl cannot kill a running Python function, so one that
never polls its token keeps its worker until it returns (an external program run by
:mod:`streamal.simulation.program` is killed: it polls the token).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal.cluster.parsl_config import ensure_worker_commands_on_path
from streamal.errors import StreamalError
from streamal.runtime.pools import POOLS
from streamal.runtime.progress import RunProgress
from streamal.runtime.shutdown import kill_pools, stop_pools
from streamal.runtime.task import CancelToken, TaskOutcome, execute
from streamal.runtime.timeline import RUNNING, TIMEOUT, TaskRecord, Timeline
from streamal.runtime.walltime import AttemptTokens, StartWatch, WalltimePolicy, run_marked

if TYPE_CHECKING:
    import parsl

log = logging.getLogger(__name__)


def _bridge(future: concurrent.futures.Future) -> asyncio.Future:
    """An asyncio future that follows a Parsl future, without cancelling it when cancelled.

    ``asyncio.wrap_future`` forwards cancellation to the source, and Parsl's ``AppFuture``
    raises ``NotImplementedError`` on ``cancel()``; running tasks are stopped through their
    cancel token instead.
    """
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def settle(done: concurrent.futures.Future) -> None:
        if waiter.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())

    def forward(done: concurrent.futures.Future) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, done)

    future.add_done_callback(forward)
    return waiter


class TaskFailed(StreamalError):
    """A task failed on every attempt."""

    def __init__(self, name: str, attempts: int, error: str, traceback: str = "") -> None:
        super().__init__(f"task {name!r} failed after {attempts} attempt(s): {error}")
        self.name = name
        self.attempts = attempts
        self.error = error
        self.traceback = traceback


class TaskCancelledError(StreamalError):
    """In the driver: a task stopped because it was cancelled (inside its worker it saw
    :class:`~streamal.runtime.task.StopRequested`)."""


class TaskHandle:
    """An in-flight task: await it for the result, :meth:`cancel` to ask it to stop."""

    def __init__(self, task: asyncio.Task, tokens: AttemptTokens, name: str, task_id: int) -> None:
        self._task = task
        self._tokens = tokens
        self.name = name
        self.id = task_id

    @property
    def token(self) -> CancelToken:
        """The cancel token of the attempt running now."""
        return self._tokens.current

    def cancel(self) -> None:
        """Ask the task to stop; it returns once it polls its token (or before it starts)."""
        self._tokens.cancel()

    def done(self) -> bool:
        return self._task.done()

    def __await__(self):
        return self._task.__await__()


@dataclasses.dataclass(frozen=True)
class _TaskSpec:
    """What every attempt of one task shares (its name, stage, attempt budget, walltime)."""

    task_id: int
    name: str
    stage: str
    attempts: int
    info: dict[str, Any]
    walltime_s: float | None
    retry_lost_only: bool = False
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)


class Scheduler:
    """Submits functions to Parsl pools from asyncio and records every attempt.

    Args:
        parsl_config: The ``parsl.Config`` to load
            (see :func:`streamal.cluster.parsl_config.build_parsl_config`).
        run_dir: Where ``timeline.json(l)`` and cancel tokens live; a temporary folder if None.
        retries: Extra attempts after a failure, unless a call overrides it.
        progress: Show progress (live in a terminal, else log lines; see
            :class:`~streamal.runtime.progress.RunProgress`).
        progress_interval_s: Seconds between status lines when not in a terminal.
        walltimes: How long an attempt may run per pool / stage prefix, unless a call
            overrides it; no limit by default.
        resources: The ``parsl_resource_specification`` of a pool's tasks, unless a call
            overrides it (an MPI pool needs one for every task: ``{"num_nodes": 1,
            "ranks_per_node": 1, "num_ranks": 1}`` for a one-process task).
    """

    def __init__(
        self,
        parsl_config: parsl.Config,
        *,
        run_dir: str | Path | None = None,
        retries: int = 2,
        progress: bool = True,
        progress_interval_s: float = 30.0,
        pools: tuple[str, ...] = POOLS,
        walltimes: WalltimePolicy | None = None,
        resources: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.parsl_config = parsl_config
        self._tmp = None if run_dir is not None else tempfile.TemporaryDirectory()
        self.run_dir = Path(run_dir if run_dir is not None else self._tmp.name)
        self.retries = retries
        self.pools = pools
        self.walltimes = walltimes or WalltimePolicy()
        self.resources = resources or {}
        self._starts = StartWatch(self.run_dir / "started")
        self.timeline = Timeline(self.run_dir)
        self.progress = RunProgress(
            pools, enabled=progress, run_dir=self.run_dir, interval_s=progress_interval_s
        )
        self._apps: dict[str, Callable[..., Any]] = {}
        self._dfk = None
        self._tasks: set[asyncio.Task] = set()
        self._in_flight: set[concurrent.futures.Future] = set()
        self.pools_killed = False  # the pools had to be killed at close (not shut down)
        self.grace_s = 2.0  # how long close() waits for tasks asked to stop
        self.shutdown_s = 30.0  # how long close() lets Parsl shut down before killing it

    async def __aenter__(self) -> Scheduler:
        import parsl
        from parsl import python_app

        ensure_worker_commands_on_path()
        # In this (the loop's) thread: the interchange is tied to the thread that starts it
        # (it dies with it, see streamal.runtime.tether), and this one lives as long as the run.
        self._dfk = parsl.load(self.parsl_config)
        for pool in self.pools:
            self._apps[pool] = python_app(execute, executors=[pool], data_flow_kernel=self._dfk)
        self.progress.start()
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        await self.close(failing=exc_type is not None)

    async def close(self, *, failing: bool = False) -> None:
        """Stop pending tasks, shut Parsl down, write ``timeline.json``.

        Running tasks are asked to stop through their tokens and given :attr:`grace_s` seconds
        to return (a training saves ``last.pt`` when it stops); Parsl's shutdown is bounded by
        :attr:`shutdown_s` seconds, after which the pools are killed. With ``failing`` (an
        error is on its way out), a failure to write ``timeline.json`` does not replace it.
        """
        grace_s, shutdown_s = self.grace_s, self.shutdown_s
        for t in list(self._tasks):
            if not t.done():
                t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._in_flight and grace_s > 0:
            pending = list(self._in_flight)
            await asyncio.to_thread(concurrent.futures.wait, pending, grace_s)
        self.progress.stop()
        self._starts.close()
        if self._dfk is not None:
            import parsl

            dfk, self._dfk = self._dfk, None
            self.pools_killed = not await asyncio.to_thread(stop_pools, dfk, shutdown_s)
            parsl.clear()
        try:
            self.timeline.write()
        except OSError as exc:
            if not failing:
                raise
            # the error on its way out says what went wrong (often: the disk is full);
            # timeline.jsonl already holds every record
            log.warning("timeline.json not written: %s", exc)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def kill(self) -> None:
        """Kill the pools at once (a second Ctrl-C); safe to call from a signal handler."""
        if self._dfk is not None:
            kill_pools(self._dfk)
            self.pools_killed = True

    def start(
        self,
        pool: str,
        fn: Callable[..., Any],
        *args: Any,
        stage: str = "",
        name: str | None = None,
        retries: int | None = None,
        info: dict[str, Any] | None = None,
        walltime_s: float | None = None,
        retry_lost_only: bool = False,
        resources: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TaskHandle:
        """Submit ``fn(*args, **kwargs)`` to ``pool`` and return at once.

        ``fn`` must be importable by the workers (a module-level function).
        ``info`` is copied into the task's timeline records (e.g. ``{"samples": 64}``).
        ``walltime_s`` limits each attempt's run time (default: :attr:`walltimes`).
        ``retry_lost_only``: retry only an attempt the infrastructure lost (a worker or node
        died, the result could not come back), not one that failed or timed out in the task
        itself — for callers that handle those otherwise (a failing simulation chunk is split).
        ``resources``: the task's ``parsl_resource_specification`` (default: the pool's, see
        ``Scheduler(resources=...)``), e.g. the nodes and ranks of an MPI training.
        """
        if pool not in self._apps:
            raise StreamalError(
                f"unknown pool {pool!r} or scheduler not started; pools: {list(self.pools)}"
            )
        task_id = self.timeline.next_id()
        name = name or f"{getattr(fn, '__name__', 'task')}-{task_id}"
        tokens = AttemptTokens(self.run_dir / "cancel" / f"task-{task_id}")
        attempts = 1 + (self.retries if retries is None else retries)
        if walltime_s is None:
            walltime_s = self.walltimes.for_task(pool, stage)
        if resources is None:
            resources = self.resources.get(pool, {})
        task = asyncio.ensure_future(
            self._run(
                pool,
                fn,
                args,
                kwargs,
                _TaskSpec(
                    task_id,
                    name,
                    stage,
                    attempts,
                    info or {},
                    walltime_s,
                    retry_lost_only,
                    dict(resources),
                ),
                tokens,
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return TaskHandle(task, tokens, name, task_id)

    async def submit(self, pool: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Submit and wait: ``await scheduler.submit(pool, fn, *args, stage=..., name=...)``."""
        return await self.start(pool, fn, *args, **kwargs)

    async def _run(
        self,
        pool: str,
        fn: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        task: _TaskSpec,
        tokens: AttemptTokens,
    ) -> Any:
        name, attempts = task.name, task.attempts
        for attempt in range(1, attempts + 1):
            now = time.time()
            pending = TaskRecord(
                id=task.task_id,
                name=name,
                pool=pool,
                stage=task.stage,
                attempt=attempt,
                submitted=now,
                started=None,
                ended=None,
                returned=now,
                status=RUNNING,
                info=dict(task.info),
            )
            record = functools.partial(self._record, pending)
            token = tokens.for_attempt(attempt)
            self.timeline.submitted(pending)
            self.progress.submitted(pending)
            marker = self._starts.marker(task.task_id, attempt)
            lost = False
            try:
                # Parsl reads the spec from the app's keyword arguments
                spec = {"parsl_resource_specification": task.resources} if task.resources else {}
                if task.walltime_s is None:
                    future = self._apps[pool](fn, args, kwargs, token, **spec)
                else:
                    marked = functools.partial(run_marked, str(marker), fn)
                    future = self._apps[pool](marked, args, kwargs, token, **spec)
                self._in_flight.add(future)
                future.add_done_callback(self._in_flight.discard)
                outcome, timed_out = await self._starts.outcome(
                    _bridge(future), marker, task.walltime_s
                )
            except asyncio.CancelledError:
                token.set()
                record(TaskOutcome(cancelled=True), "cancelled")
                raise
            except Exception as exc:  # noqa: BLE001 - lost worker, serialisation, ...
                outcome = TaskOutcome(
                    error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__
                )
                timed_out, lost = False, True
            if timed_out:
                token.set()  # cooperative code stops; the scheduler waits no longer
            elif outcome.cancelled:
                record(outcome, "cancelled")
                raise TaskCancelledError(f"task {name!r} was cancelled")
            elif outcome.error is None:
                record(outcome, "done")
                return outcome.value
            last = attempt == attempts or (task.retry_lost_only and not lost)
            record(outcome, TIMEOUT if timed_out else "failed" if last else "retried")
            if last:
                trace = outcome.value if isinstance(outcome.value, str) else ""
                raise TaskFailed(name, attempts, outcome.error, trace)
        raise AssertionError("unreachable")

    def _record(self, pending: TaskRecord, outcome: TaskOutcome, status: str) -> None:
        """The final record of an attempt noted as ``pending`` when it was submitted."""
        final = dataclasses.replace(
            pending,
            started=outcome.started or None,
            ended=outcome.ended or None,
            returned=time.time(),
            status=status,
            error=outcome.error,
            worker_cores=list(outcome.worker_cores),
            host=outcome.host,
            pid=outcome.pid,
            manager=outcome.manager,
            info={**pending.info, **outcome.facts},
        )
        self.timeline.add(final)
        self.progress.finished(final)
