"""Task records: one per attempt, appended to ``timeline.jsonl`` and listed in ``timeline.json``.

Each attempt writes a ``running`` line when it is submitted and its final record when it
returns; an attempt whose final record never came (the driver died) reads back as ``lost``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streamal import durable

TIMEOUT = "timeout"  # ran past its walltime: asked to stop, counted as a failed attempt
TASK_STATUSES = ("done", "failed", "retried", "cancelled", "lost", TIMEOUT)
RUNNING = "running"  # in timeline.jsonl only: submitted, not returned (yet)


@dataclass
class TaskRecord:
    """One attempt of one task, as every report and benchmark reads it.

    Times are seconds since the epoch; ``started``/``ended`` come from the worker's clock,
    ``submitted``/``returned`` from the driver's. ``worker_cores`` is the affinity the task saw
    from inside (``os.sched_getaffinity(0)``); ``manager`` the Parsl worker pool it ran in
    (one per node and pool: tells emulated nodes apart, which share a host name).
    """

    id: int
    name: str
    pool: str
    stage: str
    attempt: int
    submitted: float
    started: float | None
    ended: float | None
    returned: float
    status: str
    error: str | None = None
    worker_cores: list[int] = field(default_factory=list)
    host: str = ""
    pid: int = 0
    manager: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started


class Timeline:
    """Thread-safe list of :class:`TaskRecord` with a durable JSON-lines log."""

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.records: list[TaskRecord] = []
        self._lock = threading.Lock()
        self._dir = Path(run_dir) if run_dir is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self.records = load_records(self._dir / "timeline.jsonl")

        self._ids = itertools.count(1 + max((r.id for r in self.records), default=0))

    def next_id(self) -> int:
        """A task id not used by any record of this run, resumed runs included."""
        with self._lock:
            return next(self._ids)

    def submitted(self, record: TaskRecord) -> None:
        """Note an attempt that was just submitted (status :data:`RUNNING`; not fsynced)."""
        if self._dir is not None:
            with self._lock:
                self._append(record, sync=False)

    def add(self, record: TaskRecord) -> None:
        """Add the final record of an attempt (appended to ``timeline.jsonl`` and fsynced)."""
        with self._lock:
            self.records.append(record)
            if self._dir is not None:
                self._append(record, sync=True)

    def _append(self, record: TaskRecord, *, sync: bool) -> None:
        with open(self._dir / "timeline.jsonl", "a") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")
            fh.flush()
            if sync:
                os.fsync(fh.fileno())

    def write(self) -> Path | None:
        """Write ``timeline.json`` (a list of records) atomically."""
        if self._dir is None:
            return None
        with self._lock:
            data = [asdict(r) for r in self.records]
        return durable.write_json(self._dir / "timeline.json", data)


def _record(data: dict[str, Any]) -> TaskRecord:
    """A record from its JSON form (timelines written before ``stage`` had its name call it
    ``phase``)."""
    if "phase" in data and "stage" not in data:
        data = dict(data)
        data["stage"] = data.pop("phase")
    return TaskRecord(**data)


def load_records(path: str | Path) -> list[TaskRecord]:
    """Records from ``timeline.json`` or ``timeline.jsonl``; a torn line is skipped.

    From ``timeline.jsonl``, an attempt with a ``running`` line but no final record is
    returned as ``lost`` (its driver died while it was in flight).
    """
    path = Path(path)
    if not path.exists():
        return []
    if path.suffix == ".json":
        return [_record(r) for r in durable.read_json(path, default=[])]
    final: dict[tuple[int, int], TaskRecord] = {}
    pending: dict[tuple[int, int], TaskRecord] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = _record(json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        key = (record.id, record.attempt)
        if record.status == RUNNING:
            pending[key] = record
        else:
            final[key] = record
    lost = [
        dataclasses.replace(r, status="lost", error="lost with the driver")
        for key, r in pending.items()
        if key not in final
    ]
    return sorted([*final.values(), *lost], key=lambda r: (r.returned, r.id, r.attempt))
