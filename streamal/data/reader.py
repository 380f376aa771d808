"""Read-only access to a store's committed samples, for code that runs in other processes.

The run's single writer (:class:`~streamal.data.store.SampleStore`) keeps the store open for
appending while trainer ranks and prediction tasks read it, so a :class:`StoreReader` opens the
file read-only without HDF5's file locking, reads only rows that batches committed before it
opened, and reads them in increasing order (what HDF5 reads fastest), handing them back in the
caller's order.

Example::

    from streamal.data.reader import StoreReader

    with StoreReader("run/samples.h5") as reader:
        inputs, classes, params = reader.read(rows)
        for block in reader.blocks(rows, 1024):
            model(block.inputs)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from streamal.data.layout import check_version
from streamal.errors import StoreError

BLOCK_ROWS = 4096
"""Rows :meth:`StoreReader.read` reads at a time."""
_COLUMNS = ("inputs", "classes", "params")


class Samples(NamedTuple):
    """Some store rows' columns, row ``i`` of each for the caller's ``i``-th row."""

    inputs: np.ndarray
    """``(n, *input_shape)`` float32."""
    classes: np.ndarray
    """``(n,)`` int64 class indices."""
    params: np.ndarray
    """``(n, P)`` float64 parameter vectors."""


class StoreReader:
    """The committed samples of a store, opened read-only without file locking.

    Args:
        path: The store's ``.h5`` file.

    Raises:
        OSError: HDF5 cannot open the file (missing, unreadable, not HDF5).
        StoreError: The file is not a complete sample store of a version this streamal reads.

    Attributes:
        path: The store's file.
        committed: Sample rows committed when the reader opened; rows ``0:committed`` can be
            read.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "r", locking=False)
        try:
            check_version(self.path, self._file)
            g = self._file["samples"]
            self._columns = {name: g[name] for name in _COLUMNS}
            batches = self._file["batches"]
            m = len(batches)
            last = batches[m - 1] if m else None
            written = min(ds.shape[0] for ds in self._columns.values())
            claimed = 0 if last is None else int(last["start"] + last["count"])
            self.committed = min(claimed, written)
        except BaseException:
            self._file.close()
            raise

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample's input."""
        return tuple(self._columns["inputs"].shape[1:])

    @property
    def n_params(self) -> int:
        """Length of a parameter vector."""
        return int(self._columns["params"].shape[1])

    def __len__(self) -> int:
        """Committed samples."""
        return self.committed

    def rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """``rows`` as an int64 array, checked to be committed.

        Raises:
            StoreError: A row is negative or not below :attr:`committed`.
        """
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        outside = idx[(idx < 0) | (idx >= self.committed)]
        if len(outside):
            shown = ", ".join(str(r) for r in outside[:5].tolist())
            more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
            raise StoreError(
                f"{self.path}: row(s) {shown}{more} are not committed samples; rows must be "
                f"in 0:{self.committed} (the samples committed when the reader opened)"
            )
        return idx

    def read(self, rows: Sequence[int] | np.ndarray) -> Samples:
        """Inputs, classes and params of ``rows``, in their order (read in blocks)."""
        idx = self.rows(rows)
        if len(idx) <= BLOCK_ROWS:
            return self._read(idx)
        parts = [self._read(idx[s : s + BLOCK_ROWS]) for s in range(0, len(idx), BLOCK_ROWS)]
        return Samples(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    def blocks(
        self, rows: Sequence[int] | np.ndarray, block: int = BLOCK_ROWS
    ) -> Iterator[Samples]:
        """:meth:`read` of ``rows[0:block]``, ``rows[block:2*block]``, ... one block at a time,
        so a large selection never sits in memory whole.

        Every row is checked before the first block is read. Each block is read in increasing
        row order; rows given in increasing order (as every selection is) are read from the
        file front to back.
        """
        idx = self.rows(rows)
        step = max(1, block)
        for s in range(0, len(idx), step):
            yield self._read(idx[s : s + step])

    def input_blocks(
        self, rows: Sequence[int] | np.ndarray, block: int = BLOCK_ROWS
    ) -> Iterator[np.ndarray]:
        """:meth:`blocks`, inputs only."""
        idx = self.rows(rows)
        step = max(1, block)
        for s in range(0, len(idx), step):
            yield take(self._columns["inputs"], idx[s : s + step])

    def _read(self, idx: np.ndarray) -> Samples:
        c = self._columns
        return Samples(
            take(c["inputs"], idx),
            take(c["classes"], idx).astype(np.int64),
            take(c["params"], idx),
        )

    def close(self) -> None:
        """Close the file; a no-op on a closed reader."""
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_samples(
    path: str | Path, rows: Sequence[int] | np.ndarray, *, attempts: int = 5, wait_s: float = 0.5
) -> Samples:
    """:meth:`StoreReader.read` of ``rows``, retried on an OSError (a file busy being written).

    Waits ``wait_s``, then twice that, ... between ``attempts`` tries (at least one); the last
    try's error is raised.
    """
    for attempt in range(1, attempts):
        try:
            with StoreReader(path) as reader:
                return reader.read(rows)
        except OSError:
            time.sleep(wait_s * attempt)
    with StoreReader(path) as reader:
        return reader.read(rows)


def take(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of ``ds`` in their order, read in increasing order (HDF5 needs that).

    Dense rows are read as their covering slice; repeated rows are read once.
    """
    if len(rows) == 0:
        return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
    lo, hi = int(rows.min()), int(rows.max()) + 1
    if hi - lo <= 2 * len(rows):
        return ds[lo:hi][rows - lo]
    if np.all(rows[1:] > rows[:-1]):
        return ds[rows]
    unique, inverse = np.unique(rows, return_inverse=True)
    return ds[unique][inverse]
