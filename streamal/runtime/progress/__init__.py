"""What a person watching a run sees.

In a terminal: a live display, one row per pool with its current task group, a bar of the
group's planned work, for a training the epoch, loss and validation metric, and an ETA from
the rates measured so far; group starts, ends and failures scroll above it. Without a
terminal (a PBS or Slurm job's log): the same events as plain timestamped lines, failures at
once, and where each active group stands every ``interval_s`` seconds.

The scheduler reports every attempt (:meth:`RunProgress.submitted`,
:meth:`RunProgress.finished`); a workflow announces a group's planned work before submitting
it (:meth:`RunProgress.plan`) so that the totals never move backwards.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from streamal.runtime.progress import lines
from streamal.runtime.progress.groups import GroupBook, TaskGroup
from streamal.runtime.timeline import TaskRecord

__all__ = ["RunProgress"]

#: Failed attempts of a task group shown in full; later ones are only counted.
FAILURES_SHOWN = 5

log = logging.getLogger(__name__)


def _never_raises(method: Callable[..., None]) -> Callable[..., None]:
    """A display fault is logged, never passed on to the scheduler that reported an event."""

    @functools.wraps(method)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            method(*args, **kwargs)
        except Exception:  # noqa: BLE001
            log.warning("progress display: %s failed", method.__name__, exc_info=True)

    return wrapper


class RunProgress:
    """Progress of a run's pools, live in a terminal or as log lines in a batch job.

    Args:
        pools: The pools, in display order.
        enabled: ``False`` shows nothing (tests, benchmarks).
        run_dir: Where trainings' checkpoint folders are (``info["checkpoints"]`` is relative
            to it).
        interval_s: Seconds between status lines without a terminal.
        console: Where to write (default: standard error).
        title: The run's name, shown above the live rows.
    """

    def __init__(
        self,
        pools: tuple[str, ...],
        *,
        enabled: bool = True,
        run_dir: Path | None = None,
        interval_s: float = 30.0,
        console: Console | None = None,
        title: str = "",
    ) -> None:
        self.pools = pools
        self.console = console or Console(stderr=True)
        self.mode = "off" if not enabled else "live" if self.console.is_terminal else "log"
        self.interval_s = interval_s
        self.title = title
        self.book = GroupBook(run_dir)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None
        self._live = None
        self._last_status = time.time()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "off" or self._ticker is not None:
            return
        if self.mode == "live":
            from rich.live import Live

            self._live = Live(
                get_renderable=self._render,
                console=self.console,
                refresh_per_second=2,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        self._stopping.clear()
        self._ticker = threading.Thread(target=self._tick, name="streamal-progress", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- events -------------------------------------------------------------------------------
    @_never_raises
    def plan(self, pool: str, stage: str, *, tasks: int, samples: int = 0) -> None:
        """Announce ``tasks`` tasks (``samples`` samples) of ``stage`` on ``pool``."""
        if tasks <= 0:
            return
        with self._lock:
            self.book.plan(pool, stage, tasks=tasks, samples=samples)

    @_never_raises
    def submitted(self, record: TaskRecord) -> None:
        with self._lock:
            g = self.book.submitted(record)
            if not g.announced:  # at its first task: the batches planned together are in
                g.announced = True
                self._say(g.pool, lines.started(g))

    @_never_raises
    def finished(self, record: TaskRecord) -> None:
        with self._lock:
            g, over = self.book.finished(record)
            if record.status not in ("done", "cancelled"):
                g.failures_shown += 1
                if g.failures_shown <= FAILURES_SHOWN:
                    self._say(g.pool, lines.failure(record, record.status == "retried"), "red")
                if g.failures_shown == FAILURES_SHOWN:
                    self._say(g.pool, lines.quiet(g, FAILURES_SHOWN), "red")
            if over:
                self._say(g.pool, lines.ended(g, time.time()), "green")

    @_never_raises
    def note(self, message: str) -> None:
        """A line of its own (above the live rows, or timestamped in a log)."""
        with self._lock:
            self._say("", message)

    # -- output -------------------------------------------------------------------------------
    def _say(self, pool: str, message: str, style: str = "") -> None:
        if self.mode == "off":
            return
        prefix = f"{pool:<5} " if pool else ""
        if self.mode == "log":
            self.console.print(
                f"{lines.stamp()} {prefix}{message}", markup=False, highlight=False, soft_wrap=True
            )
        else:
            text = Text(f"{time.strftime('%H:%M:%S')} {prefix}")
            text.append(message, style=style)
            self.console.print(text, soft_wrap=True)

    def _tick(self) -> None:
        """Follow trainings' epochs; without a terminal, print status lines now and then."""
        while not self._stopping.wait(1.0):
            with self._lock:
                for g in self.book.groups.values():
                    if g.training and g.active:
                        self.book.poll(g)
                now = time.time()
                if self.mode == "log" and now - self._last_status >= self.interval_s:
                    self._last_status = now
                    for pool in self.pools:
                        for g in self.book.current(pool):
                            if g.active:
                                self._say(pool, lines.status(g, now))

    def _render(self) -> Group:
        with self._lock:
            now = time.time()
            head = Text.assemble(
                (f"{self.title} " if self.title else "", "bold"),
                f"running for {lines.duration(now - self.book.started)}",
            )
            table = Table.grid(padding=(0, 1), expand=False)
            for _ in range(6):
                table.add_column(no_wrap=True)
            for pool in self.pools:
                table.add_row(*self._row(pool, self.book.current(pool), now))
            return Group(head, table)

    @staticmethod
    def _row(pool: str, groups: list[TaskGroup], now: float) -> tuple:
        name = Text(f"{pool:>5}", style="bold")
        if not groups:
            return name, Text("waiting", style="dim"), "", "", "", ""
        g = groups[0]
        more = f" +{len(groups) - 1}" if len(groups) > 1 else ""
        stage = Text(f"{g.stage}{more}", style="cyan")
        bar = ProgressBar(total=1.0, completed=g.fraction(), width=24)
        if not g.active:
            idle = Text(f"idle since {lines.duration(now - (g.finished_at or now))}", style="dim")
            return (
                name,
                stage,
                bar,
                Text(g.counts() if not g.training else g.epoch_summary()),
                idle,
                "",
            )
        what = g.epoch_summary() if g.training else g.counts()
        if not g.training and g.in_flight:
            what += f", {g.in_flight} in flight"
        trouble = lines.failures(g).strip(" ()")
        return (
            name,
            stage,
            bar,
            Text(what + (f" [{trouble}]" if trouble else "")),
            Text(lines.duration(g.elapsed(now)), style="yellow"),
            Text(f"ETA {lines.duration(g.eta(now))}", style="magenta"),
        )
