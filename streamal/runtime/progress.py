"""A live rich display with one row per pool: done / submitted, in flight, failed, timed out."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from streamal.runtime.timeline import TASK_STATUSES, TIMEOUT


class PoolProgress:
    """Counts tasks per pool and shows them while a run is live (only on a terminal)."""

    def __init__(self, pools: tuple[str, ...], *, enabled: bool = True) -> None:
        self.pools = pools
        self.counts: dict[str, Counter] = {p: Counter() for p in pools}
        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.fields[pool]:>5}"),
            BarColumn(),
            TextColumn("{task.completed:>5.0f}/{task.total:<5.0f} done"),
            TextColumn("[cyan]{task.fields[inflight]} in flight"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("[magenta]{task.fields[timeout]} timed out"),
            TimeElapsedColumn(),
            console=console,
            disable=not (enabled and console.is_terminal),
        )
        self._rows = {
            p: self._progress.add_task(p, total=0, pool=p, inflight=0, failed=0, timeout=0)
            for p in pools
        }

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def submitted(self, pool: str) -> None:
        self.counts[pool]["submitted"] += 1
        self._refresh(pool)

    def finished(self, pool: str, status: str) -> None:
        self.counts[pool][status] += 1
        self._refresh(pool)

    def _refresh(self, pool: str) -> None:
        c = self.counts[pool]
        ended = sum(c[status] for status in TASK_STATUSES)  # every attempt that came back
        self._progress.update(
            self._rows[pool],
            total=c["submitted"],
            completed=ended,
            inflight=c["submitted"] - ended,
            failed=c["failed"],
            timeout=c[TIMEOUT],
        )
