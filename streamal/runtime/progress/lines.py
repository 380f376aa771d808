"""The words both displays use: durations, and one line per task-group event."""

from __future__ import annotations

import time

from streamal.runtime.progress.groups import TaskGroup
from streamal.runtime.timeline import TaskRecord


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``; ``?`` when unknown."""
    if seconds is None or seconds != seconds:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def stamp(now: float | None = None) -> str:
    """A log line's timestamp (local time, to the second)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))


def failures(g: TaskGroup) -> str:
    parts = [
        f"{n} {what}"
        for n, what in ((g.failed, "failed"), (g.timed_out, "timed out"), (g.retried, "retried"))
        if n
    ]
    return f" ({', '.join(parts)})" if parts else ""


def started(g: TaskGroup) -> str:
    if g.training:
        return f"{g.stage}: training started, {g.epochs} epochs"
    if g.planned_samples:
        tasks = g.total_tasks
        return (
            f"{g.stage}: started, {g.planned_samples:,} samples in {tasks} task{'s' * (tasks != 1)}"
        )
    return f"{g.stage}: started"


def ended(g: TaskGroup, now: float) -> str:
    took = duration(g.elapsed(now))
    if g.training:
        return f"{g.stage}: training ended after {took}; {g.epoch_summary()}{failures(g)}"
    return f"{g.stage}: ended, {g.counts()} in {took}{failures(g)}"


def status(g: TaskGroup, now: float) -> str:
    """Where an active group stands: ``S1: 960/1,600 samples, 3 in flight, ETA 28 s``."""
    if g.training:
        rate = f", {g.epoch['epoch_s']:.3g} s/epoch" if g.epoch and "epoch_s" in g.epoch else ""
        return f"{g.stage}: {g.epoch_summary()}{rate}, ETA {duration(g.eta(now))}"
    flight = f", {g.in_flight} in flight" if g.in_flight else ""
    return f"{g.stage}: {g.counts()}{flight}{failures(g)}, ETA {duration(g.eta(now))}"


def failure(record: TaskRecord, attempts_left: bool) -> str:
    """A failed attempt, at once: what failed and the last line of its error."""
    error = (record.error or "").strip().splitlines()
    reason = error[-1][:300] if error else record.status
    what = "retrying" if attempts_left else record.status
    return f"{record.stage}: task {record.name} attempt {record.attempt} {what}: {reason}"


def quiet(g: TaskGroup, shown: int) -> str:
    """After ``shown`` failures of a group: later ones are only counted."""
    return (
        f"{g.stage}: {shown} failed attempts shown; later ones are counted in the status "
        "lines, and every error is in timeline.json and the store's failure table"
    )
