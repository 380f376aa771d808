"""The store's failure table: samples a simulator could not produce, with the error.

``/failed/params`` holds their parameter vectors and ``/failed/records`` one row each (key,
phase, split, origin, class, error, time). The parameters are written and fsynced first; the
record rows are the commit marker, so a failure record counts only where both exist.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from streamal.data.disk import METADATA_ALLOWANCE, new_chunk_bytes
from streamal.data.label import SPLITS, BatchLabel
from streamal.data.layout import text


def failure_bytes(failed: Mapping[str, h5py.Dataset], n: int, key: str, error: str) -> int:
    """Bytes recording ``n`` failed samples with this key and error allocates, at most."""
    n0 = failed["records"].shape[0]
    return (
        new_chunk_bytes(failed["params"], n0, n)
        + new_chunk_bytes(failed["records"], n0, n)
        + n * (len(error.encode("utf-8")) + len(key.encode("utf-8")) + 64)
        + 4096
        + METADATA_ALLOWANCE
    )


def write_params(failed: Mapping[str, h5py.Dataset], params: np.ndarray) -> None:
    """Append the failed samples' parameter vectors (before their records)."""
    n0, n = failed["records"].shape[0], len(params)
    failed["params"].resize(n0 + n, axis=0)
    failed["params"][n0:] = params


def write_records(
    failed: Mapping[str, h5py.Dataset],
    *,
    key: str,
    classes: list[int],
    label: BatchLabel,
    origin: int,
    error: str,
) -> None:
    """Append one record row per failed sample (after their parameters): the commit."""
    n0, n = failed["records"].shape[0], len(classes)
    split = SPLITS.index(label.split)
    failed["records"].resize(n0 + n, axis=0)
    failed["records"][n0:] = [
        (key, label.phase, split, origin, c, error, time.time()) for c in classes
    ]


def read_failures(failed: Mapping[str, h5py.Dataset], origins: list[str]) -> list[dict[str, Any]]:
    """Every recorded failed sample: key, phase, split, origin, class, params, error."""
    nf = min(failed["records"].shape[0], failed["params"].shape[0])
    return [
        {
            "key": text(rec["key"]),
            "phase": int(rec["phase"]),
            "split": SPLITS[int(rec["split"])],
            "origin": origins[int(rec["origin"])],
            "class": int(rec["cls"]),
            "params": params.tolist(),
            "error": text(rec["error"]),
        }
        for rec, params in zip(failed["records"][:nf], failed["params"][:nf], strict=True)
    ]
