"""Candidates that train while their training set is still being simulated.

With the ``simulate`` dataset's ``overlap_epochs: N`` (N > 0), the search starts as soon as
the validation set is stored; the training set, then the test set, are still on the ``sim``
pool. Epoch ``e`` (from 0) of every candidate trains on the first :func:`draws_needed` draws
of the training set in draw order — ``ceil(n * (e + 1) / N)`` of its ``n``, all of them from
epoch ``N - 1`` on — and waits until those draws are stored or recorded as failed. What a
candidate learns therefore does not depend on how fast the simulator ran: the search stays
deterministic given the seed, and the first candidates train while the simulator works.

Driver side, :class:`TrainFeed` simulates the sets and keeps the ready file
(``nas/train-ready.json``, :func:`ready_draws`) current as chunks land. Worker side,
:class:`GrowingTrainSet` reads it before each epoch, waits if the epoch's draws are not all
in, and encodes only the rows it has not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamal import durable
from streamal.simulation.batches import parse_piece

if TYPE_CHECKING:
    from streamal.data.index import BatchInfo
    from streamal.data.store import SampleStore

__all__ = [
    "READY_FILE",
    "GrowingTrainSet",
    "TrainFeed",
    "draws_needed",
    "ready_draws",
]

READY_FILE = "nas/train-ready.json"
"""The ready file, relative to the run directory."""
TRAIN_KEY = "p0/train"
"""Batch key of phase 0's uniform training set (see ``Workflow.uniform_sets``)."""


def draws_needed(total: int, epoch: int, overlap_epochs: int) -> int:
    """Training draws epoch ``epoch`` (from 0) trains on: ``ceil(total * (epoch + 1) / N)``,
    at most ``total`` (all of them when ``overlap_epochs`` is 0)."""
    if overlap_epochs <= 0:
        return total
    return min(total, math.ceil(total * (epoch + 1) / overlap_epochs))


def ready_draws(
    batches: Iterable[BatchInfo],
    failed_keys: Iterable[str],
    key: str,
    chunk_size: int,
    total: int,
) -> tuple[int, list[int]]:
    """How far batch ``key``'s draws are in, and the store rows of those stored.

    Args:
        batches: The store's committed batches (any order).
        failed_keys: Keys of the samples recorded as failed.
        key: The batch's key (chunk ``i`` is ``key/i``, a piece of it ``key/i/a-b``, a single
            sample ``key/i/j``; see :mod:`streamal.simulation.batches`).
        chunk_size: The simulator's chunk size the batch was cut with.
        total: Draws in the batch.

    Returns:
        ``(k, rows)``: draws ``0 .. k-1`` are each stored or recorded as failed (draw ``k`` is
        not); ``rows[i]`` is draw ``i``'s store row, ``-1`` if it failed.
    """
    state = np.full(total, -2, dtype=np.int64)  # -2: not in yet, -1: failed, else store row

    def span(k: str) -> tuple[int, int] | None:
        if not k.startswith(f"{key}/"):
            return None
        chunk, _, piece = k[len(key) + 1 :].partition("/")
        if not chunk.isdigit():
            return None
        base = int(chunk) * chunk_size
        if not piece:
            return base, min(total, base + chunk_size)
        bounds = parse_piece(piece)
        return None if bounds is None else (base + bounds[0], base + bounds[1])

    for b in batches:
        s = span(b.key)
        if s is not None and s[1] - s[0] == b.count:
            state[s[0] : s[1]] = np.arange(b.start, b.start + b.count)
    for k in failed_keys:
        s = span(k)
        if s is not None:
            state[s[0] : s[1]] = -1
    missing = np.flatnonzero(state == -2)
    k = int(missing[0]) if len(missing) else total
    return k, [int(r) for r in state[:k]]


class TrainFeed:
    """Driver side: simulates phase 0's sets and keeps the ready file current.

    Args:
        store: The run's sample store.
        path: The ready file.
        total: Draws in the training set.
        chunk_size: The simulator's chunk size.
        poll_s: How often the store is looked at for new chunks.
    """

    def __init__(
        self, store: SampleStore, path: Path, total: int, chunk_size: int, poll_s: float = 0.2
    ) -> None:
        self.store, self.path, self.total = store, path, total
        self.chunk_size, self.poll_s = chunk_size, poll_s
        self._written: int | None = None

    def update(self) -> int:
        """Write the ready file if more draws are in than it says; the draws in."""
        failed = [f["key"] for f in self.store.failures()]
        k, rows = ready_draws(self.store.batches(), failed, TRAIN_KEY, self.chunk_size, self.total)
        if k != self._written:
            durable.write_json(self.path, {"total": self.total, "ready": k, "rows": rows})
            self._written = k
        return k

    async def run(self, simulations: Sequence[asyncio.Future]) -> None:
        """Keep the ready file current until every simulation is done (their errors raise)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending = asyncio.gather(*simulations)
        try:
            while not pending.done():
                self.update()
                await asyncio.wait([pending], timeout=self.poll_s)
            await pending
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
        self.update()


def read_ready(path: str | Path) -> tuple[int, list[int]]:
    """``(draws in, each one's store row or -1)`` from the ready file (none yet if it is
    missing)."""
    data = durable.read_json(path, default={})
    return int(data.get("ready", 0)), [int(r) for r in data.get("rows", [])]


class GrowingTrainSet:
    """Worker side: the training tensors of each epoch, grown from the ready file.

    One set serves every candidate a worker trains on the same data: rows are encoded once,
    and epoch ``e`` gets the first rows of what is encoded (its draws'), whatever later
    draws an earlier candidate already loaded.

    Args:
        feed: The data spec's ``feed`` (``ready_file``, ``total``, ``overlap_epochs``).
        encode: Encodes store rows: ``rows -> (inputs, classes, targets)`` tensors.
        poll_s: How often the ready file is read while waiting.
    """

    def __init__(
        self,
        feed: Mapping[str, Any],
        encode: Callable[[Sequence[int]], tuple[Any, Any, Any]],
        poll_s: float = 0.2,
    ) -> None:
        self.path = str(feed["ready_file"])
        self.total, self.overlap = int(feed["total"]), int(feed["overlap_epochs"])
        self.encode, self.poll_s = encode, poll_s
        self.draw_rows: list[int] = []  # store row of each draw loaded so far, -1: failed
        self.tensors: tuple[Any, Any, Any] | None = None  # the stored ones', in draw order

    def for_epoch(self, epoch: int, stop: Callable[[], bool]) -> tuple[Any, Any, Any] | None:
        """``(inputs, classes, targets)`` of epoch ``epoch``'s draws, waiting for them;
        ``None`` if ``stop()`` turned true while waiting.

        Raises:
            RuntimeError: Every one of the epoch's draws failed to simulate.
        """
        need = draws_needed(self.total, epoch, self.overlap)
        if need > len(self.draw_rows):
            ready, rows = read_ready(self.path)
            while ready < need:
                if stop():
                    return None
                time.sleep(self.poll_s)
                ready, rows = read_ready(self.path)
            fresh = [r for r in rows[len(self.draw_rows) : ready] if r >= 0]
            if fresh:
                self.tensors = _joined(self.tensors, self.encode(fresh))
            self.draw_rows = rows[:ready]
        n = sum(r >= 0 for r in self.draw_rows[:need])
        if n == 0 or self.tensors is None:
            raise RuntimeError(f"all of the first {need} training draws failed to simulate")
        return tuple(t[:n] for t in self.tensors)  # type: ignore[return-value]


def _joined(a: tuple[Any, ...] | None, b: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """``b``'s tensors after ``a``'s, along the rows."""
    import torch

    if a is None:
        return b  # type: ignore[return-value]
    return tuple(torch.cat(pair) for pair in zip(a, b, strict=True))  # type: ignore[return-value]
