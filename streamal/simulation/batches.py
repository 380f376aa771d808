"""Simulation tasks: chunks of samples run on the ``sim`` pool, results appended to the store.

A chunk whose worker was lost is retried (``scheduler.retries``); a chunk that fails in the
simulator (or past its walltime) is not retried whole: it is split into about ``√n`` pieces,
one task each (no retries), and a failing piece is split the same way, down to single samples.
The split is the retry of a transient failure (every piece then succeeds) and isolates a
deterministic one:
the good pieces are stored as they return and each bad sample is recorded in the store's
failure table with its error — a sample is never silently dropped. A chunk of 64 samples with
one bad sample costs 15 tasks and 139 simulated samples (most samples are simulated twice);
retrying the chunk and then running one task per sample, as before, cost 67 tasks and 256.

Keys are stable, so a resumed run skips what is stored or recorded: chunk ``i`` of batch
``key`` is ``key/i``; a piece of it is ``key/i/a-b`` (rows ``a`` to ``b - 1`` of the chunk);
a single sample is ``key/i/j`` (the key single samples always had). A chunk with stored or
recorded pieces is not run whole again: only the pieces no stored piece covers are.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from streamal.runtime.pools import SIM_POOL
from streamal.simulation.context import ChunkContext, kept_workdirs, simulating

if TYPE_CHECKING:
    from streamal.data.label import BatchLabel
    from streamal.data.store import SampleStore
    from streamal.runtime.scheduler import Scheduler


@lru_cache(maxsize=4)
def _simulator(name: str, options_json: str):
    import json

    from streamal import plugins

    return plugins.load("simulators", name)(**json.loads(options_json))


def simulate_chunk(
    name: str,
    options_json: str,
    classes: np.ndarray,
    params: np.ndarray,
    context: ChunkContext | None = None,
) -> np.ndarray:
    """Worker side: build (once per worker) the simulator and simulate one chunk.

    ``context`` (the chunk's key and work-directory root) is what
    :func:`~streamal.simulation.context.current_chunk` returns while it simulates.
    """
    with simulating(context):
        return _simulator(name, options_json).simulate(classes, params)


def split_points(start: int, stop: int) -> list[int]:
    """Bounds of about ``√n`` near-equal pieces of rows ``start:stop`` (at least 2 pieces)."""
    n = stop - start
    parts = min(n, max(2, math.ceil(math.sqrt(n))))
    return [start + (n * k) // parts for k in range(parts + 1)]


def piece_key(chunk_key: str, start: int, stop: int) -> str:
    """The store key of rows ``start:stop`` of a chunk (``key/i/j`` for a single sample)."""
    return f"{chunk_key}/{start}" if stop - start == 1 else f"{chunk_key}/{start}-{stop}"


def parse_piece(suffix: str) -> tuple[int, int] | None:
    """``"3"`` → ``(3, 4)``, ``"0-32"`` → ``(0, 32)``; anything else → None."""
    first, dash, last = suffix.partition("-")
    if not first.isdigit() or (dash and not last.isdigit()):
        return None
    start = int(first)
    stop = int(last) if dash else start + 1
    return (start, stop) if stop > start else None


def done_pieces(keys: set[str], key: str) -> dict[str, list[tuple[int, int]]]:
    """The pieces of the chunks of batch ``key`` already stored or recorded as failed."""
    depth = key.count("/") + 2
    out: dict[str, list[tuple[int, int]]] = {}
    for k in keys:
        if k.startswith(f"{key}/") and k.count("/") == depth:
            chunk_key, _, suffix = k.rpartition("/")
            span = parse_piece(suffix)
            if span is not None:
                out.setdefault(chunk_key, []).append(span)
    return out


def _with_workdirs(error: str, root: str, key: str) -> str:
    """``error`` naming the work directories the simulator kept for ``key``, when it does not
    already (a task stopped at its walltime could not say where it worked)."""
    if "workdir " in error:
        return error
    kept = kept_workdirs(root, key)
    return error + "; workdir " + ", ".join(map(str, kept)) if kept else error


def _covered(pieces: list[tuple[int, int]], start: int, stop: int) -> int:
    """How many rows of ``start:stop`` the (disjoint) ``pieces`` cover."""
    return sum(max(0, min(stop, b) - max(start, a)) for a, b in pieces)


@dataclass
class SimulationReport:
    """What one :func:`simulate_batch` call produced."""

    stored: int = 0
    skipped: int = 0
    failed: int = 0


async def simulate_batch(
    scheduler: Scheduler,
    store: SampleStore,
    *,
    simulator: str,
    options: dict[str, Any],
    key: str,
    classes: np.ndarray,
    params: np.ndarray,
    label: BatchLabel,
    chunk_size: int,
    stage: str,
    mpi_ranks: int | None = None,
    mpi_launcher: str | None = None,
) -> SimulationReport:
    """Simulate ``params`` in chunks on the sim pool and append each chunk as it returns.

    ``mpi_launcher`` (the site's) is handed to the simulator through its
    :class:`~streamal.simulation.context.ChunkContext`.
    """
    import json

    from streamal.runtime.scheduler import TaskFailed
    from streamal.simulation.mpi import simulate_chunk_mpi

    options_json = json.dumps(options, sort_keys=True)
    report = SimulationReport()
    workdir_root = str(scheduler.run_dir / "sim-work")
    failed_keys = {f["key"] for f in store.failures()}
    # pieces of chunks a previous run had already bisected (computed once, not per chunk)
    done = done_pieces(store.batch_keys() | failed_keys, key)

    async def simulate_and_store(
        batch_key: str, rows: np.ndarray, retries: int | None, retry_lost_only: bool = False
    ) -> None:
        """One task for ``rows``; its output is appended under ``batch_key`` (or it raises)."""
        if mpi_ranks:
            fn, extra = simulate_chunk_mpi, {"ranks": mpi_ranks}
        else:
            fn, extra = (
                simulate_chunk,
                {"context": ChunkContext(batch_key, workdir_root, mpi_launcher)},
            )
        out = await scheduler.submit(
            SIM_POOL,
            fn,
            simulator,
            options_json,
            classes[rows],
            params[rows],
            stage=stage,
            name=batch_key,
            retries=retries,
            retry_lost_only=retry_lost_only,
            info={"samples": len(rows), "split": label.split},
            **extra,
        )
        store.append(
            key=batch_key,
            classes=classes[rows],
            params=params[rows],
            inputs=out,
            label=label,
        )
        report.stored += len(rows)

    async def one_chunk(i: int, rows: np.ndarray) -> None:
        chunk_key = f"{key}/{i}"
        if store.has_batch(chunk_key):
            report.skipped += len(rows)
            return
        pieces = done.get(chunk_key, [])
        if not pieces:
            try:
                return await simulate_and_store(chunk_key, rows, None, retry_lost_only=True)
            except TaskFailed:
                pass  # split to isolate the bad samples: about √n pieces, no retries
        await split(chunk_key, rows, 0, len(rows), pieces)

    async def split(
        chunk_key: str, rows: np.ndarray, start: int, stop: int, pieces: list[tuple[int, int]]
    ) -> None:
        bounds = split_points(start, stop)
        await asyncio.gather(
            *(
                piece(chunk_key, rows, a, b, pieces)
                for a, b in zip(bounds, bounds[1:], strict=False)
            )
        )

    async def piece(
        chunk_key: str, rows: np.ndarray, start: int, stop: int, pieces: list[tuple[int, int]]
    ) -> None:
        covered = _covered(pieces, start, stop)
        if covered == stop - start:
            report.skipped += covered
            return
        if covered:  # partly stored by a previous run: only the rest, in smaller pieces
            return await split(chunk_key, rows, start, stop, pieces)
        batch_key = piece_key(chunk_key, start, stop)
        try:
            return await simulate_and_store(batch_key, rows[start:stop], 0)
        except TaskFailed as exc:
            if stop - start > 1:
                return await split(chunk_key, rows, start, stop, pieces)
            row = int(rows[start])
            store.record_failed(
                key=batch_key,
                classes=classes[row : row + 1],
                params=params[row : row + 1],
                label=label,
                error=_with_workdirs(exc.error, workdir_root, batch_key),
            )
            report.failed += 1

    chunks = [
        np.arange(s, min(s + chunk_size, len(classes))) for s in range(0, len(classes), chunk_size)
    ]
    todo = [rows for i, rows in enumerate(chunks) if not store.has_batch(f"{key}/{i}")]
    scheduler.progress.plan(SIM_POOL, stage, tasks=len(todo), samples=sum(map(len, todo)))
    await asyncio.gather(*(one_chunk(i, rows) for i, rows in enumerate(chunks)))
    return report
