"""What reopening a store for appending repairs, and the check of committed batches' data.

A committed batch is damaged when its row in ``/batches`` is not consistent with the rows
before it, its sample rows are missing, or (for the batches checked in full) its data does
not match its checksum: version-1 stores have no checksum, so there the check looks for
chunks never written and all-zero inputs (:func:`damaged_batches`). Reopening for appending
drops a damaged last batch (its writing was cut off) and the sample rows no committed batch
covers (:func:`recover`); a damaged batch before the last is an error. The data check reads
every batch committed since the previous reopen for appending (file attr
``verified_batches``), that is the batches of the last session (reading a 300 MB store whole
takes 0.8 s from the page cache, so a store of many GB is not read whole on every resume).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from streamal.data import disk
from streamal.data.checksum import stored_checksum
from streamal.data.index import committed_rows
from streamal.data.label import SPLITS
from streamal.data.layout import COLUMNS, text
from streamal.errors import StoreError

Damage = dict[int, tuple[str, str]]
"""``{row of /batches: (batch key, what is wrong)}``."""


def recover(
    path: Path,
    f: h5py.File,
    batches: h5py.Dataset,
    samples: Mapping[str, h5py.Dataset],
    failed: Mapping[str, h5py.Dataset],
) -> list[str]:
    """Drop what is not committed from the store ``f`` opened for appending, and sync it.

    Returns what was dropped, one line each.

    Raises:
        StoreError: A damaged batch that is not the last, or an unreadable batch index (``f``
            is then closed); or the repair failed to write (``f`` is then closed without
            writing anything more).
        DiskFullError: The repair failed for lack of room (``f`` is then closed likewise).
    """
    m = len(batches)
    bad = damaged_on_open(path, f, batches, samples, check_data=True)
    if bad and set(bad) != {m - 1}:
        f.close()
        raise damage_error(path, bad)
    try:
        notes = repair(f, batches, samples, failed, bad)
        disk.sync(f)
    except Exception as exc:
        disk.close_without_writing(f)
        raise disk.write_error(path, exc, "the repairs made on reopening", None) from exc
    return notes


def damaged_batches(
    f: h5py.File,
    batches: h5py.Dataset,
    samples: Mapping[str, h5py.Dataset],
    first: int = 0,
) -> Damage:
    """Committed batches of the store ``f`` that are not whole.

    Every row of ``/batches`` is checked for consistency (cheap); the data of rows
    ``first:`` is read and checked against the batch's checksum.
    """
    n_origins = len(json.loads(f.attrs["origins"]))
    version = int(f.attrs.get("format_version", 1))
    rows = batches[:]
    n_rows = min(samples[c].shape[0] for c in COLUMNS)
    bad: Damage = {}
    expected = 0
    for i, row in enumerate(rows):
        key, start, count = text(row["key"]), int(row["start"]), int(row["count"])
        label = key or f"row {i}"
        if not key or start != expected or count < 0:
            bad[i] = (label, "its row in /batches is not valid")
        elif start + count > n_rows:
            bad[i] = (label, f"its sample rows {start}:{start + count} are missing")
        elif not (0 <= int(row["split"]) < len(SPLITS) and 0 <= int(row["origin"]) < n_origins):
            bad[i] = (label, "its row in /batches is not valid")
        elif i >= first:
            why = _bad_data(samples, key, start, count, row, version)
            if why:
                bad[i] = (label, why)
        expected = start + max(count, 0)
    return bad


def _bad_data(
    samples: Mapping[str, h5py.Dataset],
    key: str,
    start: int,
    count: int,
    row: np.void,
    version: int,
) -> str | None:
    """What is wrong with the stored data of one batch, or None."""
    rows = slice(start, start + count)
    inputs = samples["inputs"]
    try:
        if version >= 2:
            if stored_checksum(samples, key, start, count) != int(row["crc"]):
                return "its data does not match its checksum"
            return None
        # Version 1 has no checksum: look for chunks never written, and all-zero inputs.
        for name in COLUMNS:
            ds = samples[name]
            if count == 0 or not hasattr(ds.id, "get_chunk_info_by_coord"):
                continue
            c = ds.chunks[0]
            for k in range(start // c, (start + count - 1) // c + 1):
                info = ds.id.get_chunk_info_by_coord((k * c,) + (0,) * (ds.ndim - 1))
                if info.byte_offset is None:
                    return f"its /samples/{name} rows were never written"
        if count and math.prod(inputs.shape[1:]) and not np.any(inputs[rows]):
            return "its inputs are all zero (never written)"
    except Exception as exc:  # noqa: BLE001 - an unreadable batch is a damaged batch
        return f"its data cannot be read ({disk.error_line(exc)})"
    return None


def damaged_on_open(
    path: Path,
    f: h5py.File,
    batches: h5py.Dataset,
    samples: Mapping[str, h5py.Dataset],
    *,
    check_data: bool,
) -> Damage:
    """:func:`damaged_batches` on opening; with ``check_data``, the data of the batches
    committed since the last check (file attr ``verified_batches``) is checked too.

    Raises:
        StoreError: HDF5 cannot read the batch index (``f`` is then closed).
    """
    try:
        m = len(batches)
        first = min(int(f.attrs.get("verified_batches", 0)), m) if check_data else m
        return damaged_batches(f, batches, samples, first)
    except Exception as exc:  # noqa: BLE001 - HDF5 cannot read its own index
        f.close()
        raise StoreError(
            f"{path}: cannot read the store's batch index ({disk.error_line(exc)}); move it "
            "away to start the run anew"
        ) from None


def damage_error(path: Path, bad: Damage) -> StoreError:
    """The error for a store whose damaged batches are not only the last."""
    listed = "; ".join(f"{key!r}: {why}" for key, why in list(bad.values())[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    return StoreError(
        f"{path}: {len(bad)} committed batch(es) are damaged ({listed}{more}); "
        "their data was not written whole, so the store cannot be resumed: move it "
        "away to start the run anew"
    )


def repair(
    f: h5py.File,
    batches: h5py.Dataset,
    samples: Mapping[str, h5py.Dataset],
    failed: Mapping[str, h5py.Dataset],
    bad: Damage,
) -> list[str]:
    """Drop the damaged last batch (the only one in ``bad``, if any) and every row that no
    committed batch covers; record every batch as verified. Returns what was dropped, one
    line each. Writes to ``f`` without flushing it."""
    notes = []
    m = len(batches)
    if bad:
        row = batches[m - 1]
        batches.resize(m - 1, axis=0)
        notes.append(
            f"dropped the last batch {bad[m - 1][0]!r} ({int(row['count'])} samples): "
            f"{bad[m - 1][1]} (its writing was cut off)"
        )
    notes += _drop_torn_rows(samples, failed, committed_rows(batches, len(batches)))
    if int(f.attrs.get("verified_batches", -1)) != len(batches):
        f.attrs["verified_batches"] = len(batches)
    return notes


def _drop_torn_rows(
    samples: Mapping[str, h5py.Dataset], failed: Mapping[str, h5py.Dataset], committed: int
) -> list[str]:
    """Drop sample rows past ``committed`` (a crash mid-append) and a torn failure record."""
    notes = []
    torn = {name: ds.shape[0] for name, ds in samples.items() if ds.shape[0] != committed}
    if torn:
        notes.append(
            f"dropped {max(torn.values()) - committed} sample row(s) of an uncommitted batch "
            f"(committed {committed}, found {samples['classes'].shape[0]})"
        )
        for name in torn:
            samples[name].resize(committed, axis=0)
    nf = failed["records"].shape[0]
    if failed["params"].shape[0] != nf:
        notes.append("dropped a torn failure record")
        failed["params"].resize(min(nf, failed["params"].shape[0]), axis=0)
        failed["records"].resize(failed["params"].shape[0], axis=0)
    return notes
