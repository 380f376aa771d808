"""Task records: one per attempt, appended to ``timeline.jsonl`` and listed in ``timeline.json``."""

from __future__ import annotations

import itertools
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TASK_STATUSES = ("done", "failed", "retried", "cancelled")


@dataclass
class TaskRecord:
    """One attempt of one task, as every report and benchmark reads it.

    Times are seconds since the epoch; ``started``/``ended`` come from the worker's clock,
    ``submitted``/``returned`` from the driver's. ``worker_cores`` is the affinity the task saw
    from inside (``os.sched_getaffinity(0)``).
    """

    id: int
    name: str
    pool: str
    phase: str
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

    def add(self, record: TaskRecord) -> None:
        with self._lock:
            self.records.append(record)
            if self._dir is not None:
                with open(self._dir / "timeline.jsonl", "a") as fh:
                    fh.write(json.dumps(asdict(record)) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())

    def write(self) -> Path | None:
        """Write ``timeline.json`` (a list of records) atomically."""
        if self._dir is None:
            return None
        path = self._dir / "timeline.json"
        tmp = path.with_suffix(".json.tmp")
        with self._lock:
            tmp.write_text(json.dumps([asdict(r) for r in self.records], indent=1))
        os.replace(tmp, path)
        return path


def load_records(path: str | Path) -> list[TaskRecord]:
    """Records from ``timeline.json`` or ``timeline.jsonl``; a torn last line is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    if path.suffix == ".json":
        return [TaskRecord(**r) for r in json.loads(path.read_text())]
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(TaskRecord(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return out
