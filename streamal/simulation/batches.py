"""Simulation tasks: chunks of samples run on the ``sim`` pool, results appended to the store.

A chunk that fails on every attempt is split into one task per sample, so the good samples
are kept and each bad one is recorded in the store's failure table with its error — a sample
is never silently dropped. Chunk keys are stable, so a resumed run skips stored chunks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from streamal.runtime.pools import SIM_POOL

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
    name: str, options_json: str, classes: np.ndarray, params: np.ndarray
) -> np.ndarray:
    """Worker side: build (once per worker) the simulator and simulate one chunk."""
    return _simulator(name, options_json).simulate(classes, params)


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
) -> SimulationReport:
    """Simulate ``params`` in chunks on the sim pool and append each chunk as it returns."""
    import json

    from streamal.runtime.scheduler import TaskFailed
    from streamal.simulation.mpi import simulate_chunk_mpi

    options_json = json.dumps(options, sort_keys=True)
    report = SimulationReport()
    fn, extra = (simulate_chunk_mpi, {"ranks": mpi_ranks}) if mpi_ranks else (simulate_chunk, {})
    failed_keys = {f["key"] for f in store.failures()}
    # chunks a previous run had already split into single samples (computed once, not per chunk)
    split_chunks = {
        k.rsplit("/", 1)[0]
        for k in store.batch_keys() | failed_keys
        if k.startswith(f"{key}/") and k.count("/") > key.count("/") + 1
    }

    async def simulate_and_store(batch_key: str, rows: np.ndarray, retries: int | None) -> None:
        """One task for ``rows``; its output is appended under ``batch_key`` (or it raises)."""
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
        if chunk_key not in split_chunks:
            try:
                return await simulate_and_store(chunk_key, rows, None)
            except TaskFailed:
                pass  # isolate the bad samples: one task per sample, no retries
        await asyncio.gather(*(one_sample(f"{chunk_key}/{j}", r) for j, r in enumerate(rows)))

    async def one_sample(sample_key: str, row: int) -> None:
        if store.has_batch(sample_key) or sample_key in failed_keys:
            report.skipped += 1
            return
        try:
            await simulate_and_store(sample_key, np.array([row]), 0)
        except TaskFailed as exc:
            store.record_failed(
                key=sample_key,
                classes=classes[row : row + 1],
                params=params[row : row + 1],
                label=label,
                error=exc.error,
            )
            report.failed += 1

    chunks = [
        np.arange(s, min(s + chunk_size, len(classes))) for s in range(0, len(classes), chunk_size)
    ]
    await asyncio.gather(*(one_chunk(i, rows) for i, rows in enumerate(chunks)))
    return report
