"""Which chunk a pool worker is simulating: its store key and the run's work-directory root.

:func:`~streamal.simulation.batches.simulate_chunk` sets it around each ``simulate`` call, so
a simulator that leaves files behind (an external program's work directory) can name them
after the chunk and keep them in the run directory::

    ctx = current_chunk()
    root = ctx.workdir_root if ctx else tempfile.gettempdir()
"""

from __future__ import annotations

import contextlib
import glob
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChunkContext:
    """One simulation task as the worker sees it.

    Attributes:
        key: The store key the chunk is appended under (``"p1/train/3"``, ``"p1/train/3/0-32"``).
        workdir_root: Where simulators keep per-chunk files (``<run dir>/sim-work``), or None.
        mpi_launcher: The run's site's MPI launcher (``mpiexec``, ``srun``, ``aprun``), for
            simulators that start MPI programs; None when unknown.
    """

    key: str
    workdir_root: str | None = None
    mpi_launcher: str | None = None


_current: ChunkContext | None = None


def current_chunk() -> ChunkContext | None:
    """The chunk this worker is simulating now, or None outside a simulation task."""
    return _current


def workdir_prefix(key: str) -> str:
    """The name prefix of the work directories of chunk ``key`` (``p0/train/3`` →
    ``p0.train.3.``); :func:`tempfile.mkdtemp` adds a random suffix without dots."""
    return re.sub(r"[^A-Za-z0-9_.-]+", ".", key).strip(".") + "."


def kept_workdirs(root: str | Path, key: str) -> list[Path]:
    """The work directories left under ``root`` for chunk ``key`` (not its pieces')."""
    prefix = workdir_prefix(key)
    found = Path(root).glob(glob.escape(prefix) + "*")
    return sorted(p for p in found if p.is_dir() and "." not in p.name[len(prefix) :])


@contextlib.contextmanager
def simulating(ctx: ChunkContext | None) -> Iterator[None]:
    """Make ``ctx`` the current chunk for the duration of the block."""
    global _current
    previous, _current = _current, ctx
    try:
        yield
    finally:
        _current = previous
