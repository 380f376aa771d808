"""The CRC-32 of a stored batch, written in its commit row and checked on reopening.

The checksum covers the batch's key, first row and count, then its classes (``<i2``),
params (``<f8``) and inputs (``<f4``), so it can be computed from the arrays being appended
(:func:`batch_checksum`) or from the rows in the file, read in blocks (:func:`stored_checksum`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import h5py
import numpy as np

_BLOCK_BYTES = 64 << 20
"""Bytes of inputs :func:`stored_checksum` reads at a time."""


def batch_checksum(
    key: str, start: int, classes: np.ndarray, params: np.ndarray, inputs: np.ndarray
) -> int:
    """CRC-32 of a batch as stored: key, first row, count, classes, params and inputs."""
    crc = _checksum_start(key, start, len(classes))
    for values, dtype in ((classes, "<i2"), (params, "<f8"), (inputs, "<f4")):
        crc = zlib.crc32(np.ascontiguousarray(values, dtype=dtype), crc)
    return crc


def stored_checksum(samples: Mapping[str, h5py.Dataset], key: str, start: int, count: int) -> int:
    """:func:`batch_checksum` of the batch's rows ``start:start+count`` as the file holds them.

    Args:
        samples: The ``/samples`` datasets by column name.
        key: The batch's key.
        start: Its first row.
        count: Its number of rows.
    """
    rows = slice(start, start + count)
    inputs = samples["inputs"]
    block = max(1, _BLOCK_BYTES // max(1, 4 * math.prod(inputs.shape[1:])))
    crc = _checksum_start(key, start, count)
    crc = zlib.crc32(np.ascontiguousarray(samples["classes"][rows], "<i2"), crc)
    crc = zlib.crc32(np.ascontiguousarray(samples["params"][rows], "<f8"), crc)
    for s in range(start, start + count, block):
        part = inputs[s : min(s + block, start + count)]
        crc = zlib.crc32(np.ascontiguousarray(part, "<f4"), crc)
    return crc


def _checksum_start(key: str, start: int, count: int) -> int:
    crc = zlib.crc32(np.array([start, count], "<i8").tobytes())
    return zlib.crc32(key.encode("utf-8"), crc)
