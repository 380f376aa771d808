"""The store's batch index, ``/batches``: one row per committed batch, its commit marker.

A row holds the batch's key, first sample row, count, label (phase, split code, origin code),
the time it was committed and (format version 2) the CRC-32 of its data
(:mod:`streamal.data.checksum`). Rows are consecutive: batch ``i + 1`` starts where batch
``i`` ends, so the first ``m`` rows commit the sample rows up to the ``m``-th row's end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import h5py
import numpy as np

from streamal.data.checksum import batch_checksum
from streamal.data.label import SPLITS, BatchLabel
from streamal.data.layout import text


@dataclass(frozen=True)
class BatchInfo:
    """One committed batch."""

    key: str
    start: int
    count: int
    phase: int
    split: str
    origin: str

    @property
    def label(self) -> BatchLabel:
        return BatchLabel(self.phase, self.split, self.origin)


def committed_rows(batches: h5py.Dataset, m: int) -> int:
    """Sample rows the first ``m`` rows of ``/batches`` commit."""
    if not m:
        return 0
    last = batches[m - 1]
    return int(last["start"] + last["count"])


def commit_row(
    batches: h5py.Dataset,
    *,
    key: str,
    start: int,
    label: BatchLabel,
    origin: int,
    classes: np.ndarray,
    params: np.ndarray,
    inputs: np.ndarray,
) -> np.ndarray:
    """The row that commits a batch of ``classes``, ``params``, ``inputs`` (as stored) from
    sample row ``start``, with their checksum where the format has one."""
    row = np.zeros((), dtype=batches.dtype)
    row["key"], row["start"], row["count"] = key, start, len(classes)
    row["phase"], row["split"], row["origin"] = label.phase, SPLITS.index(label.split), origin
    row["time"] = time.time()
    if "crc" in row.dtype.names:
        row["crc"] = batch_checksum(key, start, classes, params, inputs)
    return row


def batch_keys(batches: h5py.Dataset, m: int) -> set[str]:
    """The keys of the first ``m`` batches."""
    return {text(k) for k in (batches["key"][:m] if m else [])}


def read_batches(batches: h5py.Dataset, m: int, origins: list[str]) -> list[BatchInfo]:
    """The first ``m`` batches, in commit order."""
    return [
        BatchInfo(
            text(row["key"]),
            int(row["start"]),
            int(row["count"]),
            int(row["phase"]),
            SPLITS[int(row["split"])],
            origins[int(row["origin"])],
        )
        for row in batches[:m]
    ]
