"""What runs inside a pool worker around every task: timing, affinity, cooperative cancel.

Parsl cannot stop a running task (``AppFuture.cancel()`` does not reach the worker), so a
task polls a :class:`CancelToken` — a file in the run directory that the driver creates::

    from streamal.runtime.task import cancelled

    for chunk in work:
        if cancelled():
            return partial_result
        ...
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class StopRequested(Exception):
    """Inside a worker: the running task was asked to stop (raised by
    :func:`raise_if_cancelled`). The driver then sees
    :class:`~streamal.runtime.scheduler.TaskCancelledError`."""


@dataclass(frozen=True)
class CancelToken:
    """A cancel flag shared through the file system (works across nodes on a shared FS)."""

    path: str

    def set(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).touch()

    @property
    def is_set(self) -> bool:
        return os.path.exists(self.path)


_current: CancelToken | None = None


def cancelled() -> bool:
    """Whether the task running in this worker has been asked to stop."""
    return _current is not None and _current.is_set


def raise_if_cancelled() -> None:
    """Raise :class:`StopRequested` if the running task has been asked to stop."""
    if cancelled():
        raise StopRequested("cancelled by the scheduler")


@dataclass
class TaskOutcome:
    """What a worker reports back for one attempt."""

    value: Any = None
    error: str | None = None
    error_type: str | None = None
    cancelled: bool = False
    started: float = 0.0
    ended: float = 0.0
    worker_cores: list[int] = field(default_factory=list)
    host: str = ""
    pid: int = 0
    manager: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


_facts: dict[str, Any] | None = None


def note_in_timeline(**facts: Any) -> None:
    """Inside a task: add ``facts`` (JSON values) to the ``info`` of its timeline record,
    e.g. ``note_in_timeline(launch_command="mpiexec -n 8 …")``. Outside a task: nothing."""
    if _facts is not None:
        _facts.update(facts)


def execute(
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    token: CancelToken,
    parsl_resource_specification: dict[str, Any] | None = None,
) -> TaskOutcome:
    """Run ``fn(*args, **kwargs)`` in this worker and report timing, cores and errors.

    ``parsl_resource_specification`` is read by Parsl (an MPI pool composes
    ``$PARSL_MPI_PREFIX`` from it); the task sees that prefix, not the argument.
    """
    global _current, _facts
    outcome = TaskOutcome(
        started=time.time(),
        worker_cores=sorted(os.sched_getaffinity(0)),
        host=socket.gethostname(),
        pid=os.getpid(),
        manager=os.environ.get("PARSL_WORKER_POOL_ID", ""),
    )
    _current, _facts = token, outcome.facts
    try:
        if token.is_set:
            raise StopRequested("cancelled before it started")
        outcome.value = fn(*args, **kwargs)
    except StopRequested:
        outcome.cancelled = True
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the driver
        outcome.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        outcome.error_type = type(exc).__name__
        outcome.value = traceback.format_exc()
    finally:
        _current, _facts = None, None
        outcome.ended = time.time()
    return outcome
