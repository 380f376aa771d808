"""What a run is doing, per task group: planned and finished work, failures, rates and ETAs.

A task group is the tasks of one stage label on one pool (``S1`` on ``sim``, ``T1`` on
``train``). A workflow announces a group's planned work before submitting it
(:meth:`GroupBook.plan`), so its totals never move backwards; a training task that names its
checkpoint folder (``info["checkpoints"]``) is followed epoch by epoch through ``epoch.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamal.runtime.timeline import TIMEOUT, TaskRecord
from streamal.train.epoch_notes import latest_epoch

#: Attempt statuses after which the task is over (a ``retried`` attempt is followed by another).
FINAL = ("done", "failed", "cancelled", "lost", TIMEOUT)


@dataclass
class TaskGroup:
    """The tasks of one stage on one pool."""

    pool: str
    stage: str
    created: float
    planned_tasks: int = 0
    planned_samples: int = 0
    tasks: set[int] = field(default_factory=set)
    in_flight: int = 0
    ended: int = 0
    samples_done: int = 0
    failed: int = 0
    retried: int = 0
    timed_out: int = 0
    finished_at: float | None = None
    checkpoints: Path | None = None
    epochs: int = 0
    epoch: dict[str, Any] | None = None
    failures_shown: int = 0  # failed attempts the display has announced
    announced: bool = False  # the display has said that the group started

    @property
    def total_tasks(self) -> int:
        """Planned tasks, or as many as were submitted if more (a failing chunk is split)."""
        return max(self.planned_tasks, len(self.tasks))

    @property
    def active(self) -> bool:
        return self.in_flight > 0 or self.ended < self.total_tasks

    @property
    def training(self) -> bool:
        return self.checkpoints is not None

    def elapsed(self, now: float) -> float:
        return (self.finished_at or now) - self.created

    def fraction(self) -> float:
        """Share of the group's work done, 0..1 (epochs for a training, else samples/tasks)."""
        if self.training and self.epochs:
            done = self.epoch["epoch"] + 1 if self.epoch else 0
            return min(1.0, done / self.epochs)
        if self.planned_samples:
            return min(1.0, self.samples_done / self.planned_samples)
        return self.ended / self.total_tasks if self.total_tasks else 0.0

    def eta(self, now: float) -> float | None:
        """Seconds until the group is done at the rate measured so far; None if unknown."""
        if not self.active:
            return 0.0
        if self.training:
            if not self.epoch or not self.epochs:
                return None
            left = self.epochs - self.epoch["epoch"] - 1
            return max(0.0, left * float(self.epoch.get("epoch_s", 0.0)))
        done = self.fraction()
        if done <= 0.0:
            return None
        return self.elapsed(now) * (1.0 - done) / done

    def counts(self) -> str:
        """``960/1,600 samples`` or ``3/8 tasks``."""
        if self.planned_samples:
            return f"{self.samples_done:,}/{self.planned_samples:,} samples"
        return f"{self.ended}/{self.total_tasks} task{'s' if self.total_tasks != 1 else ''}"

    def epoch_summary(self) -> str:
        """``epoch 12/30, loss 0.412, val score 0.533, val accuracy 0.875`` (empty if none)."""
        e = self.epoch
        if not e:
            return f"starting, {self.epochs} epochs" if self.epochs else "starting"
        parts = [f"epoch {e['epoch'] + 1}/{self.epochs or e.get('epochs', '?')}"]
        if isinstance(e.get("train_loss"), float | int):
            parts.append(f"loss {e['train_loss']:.4g}")
        if isinstance(e.get("val_score"), float | int) and e["val_score"] == e["val_score"]:
            parts.append(f"val score {e['val_score']:.4g}")
        if isinstance(e.get("val_accuracy"), float | int):
            parts.append(f"val accuracy {e['val_accuracy']:.3f}")
        return ", ".join(parts)


class GroupBook:
    """Every task group of a run, updated from the scheduler's events (thread-safe reads are
    the caller's business: it holds a lock around updates and renders)."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        self.groups: dict[tuple[str, str], TaskGroup] = {}
        self.started = time.time()

    def group(self, pool: str, stage: str) -> tuple[TaskGroup, bool]:
        """The group of ``stage`` on ``pool``, and whether it was created now."""
        key = (pool, stage)
        if key in self.groups:
            return self.groups[key], False
        self.groups[key] = TaskGroup(pool, stage, time.time())
        return self.groups[key], True

    def plan(self, pool: str, stage: str, *, tasks: int, samples: int = 0) -> TaskGroup:
        g, _ = self.group(pool, stage)
        g.planned_tasks += tasks
        g.planned_samples += samples
        g.finished_at = None
        return g

    def submitted(self, record: TaskRecord) -> TaskGroup:
        g, _ = self.group(record.pool, record.stage)
        g.tasks.add(record.id)
        g.in_flight += 1
        g.finished_at = None
        folder = record.info.get("checkpoints")
        if folder and self.run_dir is not None:
            g.checkpoints = self.run_dir / folder
            g.epochs = int(record.info.get("epochs") or 0)
        return g

    def finished(self, record: TaskRecord) -> tuple[TaskGroup, bool]:
        """Count an attempt that came back; returns its group and whether the group is over."""
        g, _ = self.group(record.pool, record.stage)
        g.in_flight = max(0, g.in_flight - 1)
        if record.status == "retried":
            g.retried += 1
        if record.status in FINAL:
            g.ended += 1
            g.failed += record.status in ("failed", "lost")
            g.timed_out += record.status == TIMEOUT
            if record.status == "done":
                g.samples_done += int(record.info.get("samples") or 0)
        over = not g.active
        if over:
            g.finished_at = time.time()
            if g.training:
                self.poll(g)
        return g, over

    def poll(self, g: TaskGroup) -> bool:
        """Read a training's latest epoch; True if it is new."""
        if g.checkpoints is None:
            return False
        note = latest_epoch(g.checkpoints)
        if note is None or note == g.epoch:
            return False
        g.epoch = note
        g.epochs = int(note.get("epochs") or g.epochs)
        return True

    def current(self, pool: str) -> list[TaskGroup]:
        """The pool's active groups (oldest first), else its last group, else nothing."""
        mine = [g for g in self.groups.values() if g.pool == pool]
        active = [g for g in mine if g.active]
        if active:
            return sorted(active, key=lambda g: g.created)
        return sorted(mine, key=lambda g: g.finished_at or g.created)[-1:]
