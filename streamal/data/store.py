"""Append-only HDF5 sample store with one writer.

The file layout is described in :mod:`streamal.data.layout`; other processes read committed
samples through :class:`~streamal.data.reader.StoreReader`.

**Commit protocol.** An append first checks that the file system has room for every chunk
the append allocates plus :data:`SPACE_MARGIN`, and reserves that room at the end of the file
(``posix_fallocate``) so that another writer cannot take it; if either fails it raises
:class:`~streamal.errors.DiskFullError` having written nothing (:mod:`streamal.data.disk`).
Then it writes the sample rows, flushes and fsyncs; only then writes the batch's ``/batches``
row (the commit marker, with a CRC-32 of the batch's key, first row, classes, params and
inputs: :mod:`streamal.data.checksum`) and flushes. A batch is committed when that flush
returns; the next append's fsync (or :meth:`SampleStore.close`) makes its row durable against
a machine crash too, and the data under a commit row was always fsynced before it. If a write
or flush fails (a full disk the check did not foresee, a quota, an I/O error) no commit row is
written, the store is closed without writing anything more, and
:class:`~streamal.errors.DiskFullError` (no space, quota, read-only) or
:class:`~streamal.errors.StoreError` is raised.

**Reopening for appending** drops what is not committed (torn sample rows, a damaged last
batch) and reports it in :attr:`SampleStore.recovered`; a damaged batch that is not the last
raises :class:`~streamal.errors.StoreError` (:mod:`streamal.data.recovery`). **Creation** is
atomic, and a store with no committed data is recreated on reopen (:mod:`streamal.data.layout`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from streamal.data import disk, failures, index, layout, recovery
from streamal.data.checksum import batch_checksum
from streamal.data.disk import METADATA_ALLOWANCE, SPACE_MARGIN, new_chunk_bytes
from streamal.data.index import BatchInfo
from streamal.data.label import SPLITS, BatchLabel
from streamal.data.layout import COLUMNS, FORMAT_VERSION, StoreLayout
from streamal.data.view import StoreView, matching_rows
from streamal.errors import DiskFullError, StoreError

__all__ = [
    "FORMAT_VERSION",
    "METADATA_ALLOWANCE",
    "SPACE_MARGIN",
    "SPLITS",
    "BatchInfo",
    "SampleStore",
    "StoreView",
    "batch_checksum",
]


class SampleStore:
    """The run's samples in one HDF5 file, appended batch by batch.

    Args:
        path: The ``.h5`` file; created if missing, else reopened for appending.
        param_names: Names of the parameter vector (checked against an existing file).
        class_names: Class labels (checked against an existing file).
        input_shape: Shape of one sample's input (checked against an existing file).
        mode: ``"a"`` (append, the single writer) or ``"r"`` (read only).
        metadata: JSON-able run metadata, written when the store is created.

    Raises:
        StoreError: The file is not a readable store, does not match the given layout, or has
            a damaged committed batch that is not the last.
        DiskFullError: The store could not be created or repaired for lack of space.

    Attributes:
        recovered: What reopening repaired, one line each (dropped torn rows, a dropped last
            batch, a recreated empty store); empty when nothing was wrong.
    """

    _keys_cache: set[str] | None = None

    def __init__(
        self,
        path: str | Path,
        *,
        param_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
        mode: str = "a",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if mode not in ("a", "r"):
            raise StoreError(f"store mode must be 'a' or 'r', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self._broken: str | None = None
        new = StoreLayout.given(param_names, class_names, input_shape, metadata)
        write = self._writer(new) if mode == "a" and new is not None else None
        self._file, self.recovered = layout.open_file(
            self.path,
            mode,
            write,
            param_names=param_names,
            class_names=class_names,
            input_shape=input_shape,
        )
        # Every dataset stays open while the store is: h5py closes a dataset when its last
        # Python handle goes away, and HDF5 then writes the dataset's cached chunks; an error
        # there (a full disk) is printed and lost, and the data with it. Held open, the chunks
        # are written by the store's own flushes, whose errors reach the caller.
        self._samples = {name: self._file["samples"][name] for name in COLUMNS}
        self._failed = {name: self._file["failed"][name] for name in ("records", "params")}
        self._batches = self._file["batches"]
        if mode == "a":
            self.recovered += recovery.recover(
                self.path, self._file, self._batches, self._samples, self._failed
            )
            self._m = len(self._batches)
        else:  # a reader leaves the repairs to the writer and sees the valid batches only
            bad = recovery.damaged_on_open(
                self.path, self._file, self._batches, self._samples, check_data=False
            )
            self._m = min(bad, default=len(self._batches))
        self._n = index.committed_rows(self._batches, self._m)

    # -- creation and checks ---------------------------------------------------------------
    def _create(self, f: h5py.File, new: StoreLayout) -> None:
        """Write the layout of an empty store into the new file ``f``."""
        layout.write_layout(f, new)

    def _writer(self, new: StoreLayout) -> layout.WriteLayout:
        return lambda f: self._create(f, new)

    def verify(self, first: int = 0) -> dict[str, str]:
        """Check committed batches ``first:`` (all by default) against their checksums.

        Reads their data (0.8 s for 300 MB from the page cache). Returns ``{batch key: what
        is wrong}``, empty when every batch is whole. Reopening for appending runs this on the
        batches committed since the previous reopen.
        """
        self._require_open()
        return dict(
            recovery.damaged_batches(self._file, self._batches, self._samples, first).values()
        )

    # -- properties -------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return json.loads(self._file.attrs["class_names"])

    @property
    def param_names(self) -> list[str]:
        return json.loads(self._file.attrs["param_names"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(json.loads(self._file.attrs["input_shape"]))

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self._file.attrs["metadata"])

    @property
    def origins(self) -> list[str]:
        return json.loads(self._file.attrs["origins"])

    def __len__(self) -> int:
        """Committed samples."""
        return self._n

    # -- writing ----------------------------------------------------------------------------
    def _origin_code(self, origin: str) -> int:
        origins = self.origins
        if origin not in origins:
            origins.append(origin)
            self._file.attrs["origins"] = json.dumps(origins)
        return origins.index(origin)

    def _require_open(self, *, writing: bool = False) -> None:
        if writing and self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only")
        if self._broken is not None:
            raise StoreError(
                f"{self.path}: the store was closed after a failed write ({self._broken}); "
                "reopen it to continue"
            )
        if not self._file.id.valid:
            raise StoreError(f"{self.path}: the store is closed")

    def _dataset(self, name: str) -> h5py.Dataset:
        self._require_open()
        return self._samples[name]

    def _ensure_space(self, what: str, needed: int) -> None:
        """Raise DiskFullError, writing nothing, unless ``needed`` bytes + the margin are free
        (and reserved at the end of the file: :func:`~streamal.data.disk.ensure_space`)."""
        disk.ensure_space(self.path, self._file, what, needed)

    def _sync(self, *, fsync: bool = True) -> None:
        disk.sync(self._file, fsync=fsync)

    @contextlib.contextmanager
    def _writing(self, what: str, needed: int | None) -> Iterator[None]:
        """Turn a failed write into a closed store and one clear error."""
        try:
            yield
        except DiskFullError:
            self._abandon(None)
            raise
        except Exception as exc:
            self._abandon(exc)
            raise disk.write_error(self.path, exc, what, needed) from exc

    def _abandon(self, exc: BaseException | None) -> None:
        """Close the store after a failed write without writing anything more."""
        self._broken = "no space" if exc is None else disk.error_line(exc)
        self._keys_cache = None
        disk.close_without_writing(self._file)

    def _append_bytes(self, start: int, n: int, batch_row: int, key: str) -> int:
        """Bytes an append of ``n`` samples allocates in the file, at most."""
        chunks = sum(new_chunk_bytes(self._samples[c], start, n) for c in COLUMNS)
        chunks += new_chunk_bytes(self._batches, batch_row, 1)
        heap = 4096 + len(key.encode("utf-8")) + 32  # a new global heap collection for the key
        return chunks + heap + METADATA_ALLOWANCE

    def append(
        self,
        *,
        key: str,
        classes: np.ndarray,
        params: np.ndarray,
        inputs: np.ndarray,
        label: BatchLabel,
    ) -> BatchInfo:
        """Append one batch and commit it; ``key`` names the batch and must be new.

        The sample rows are written and flushed (fsynced) first, then the batch's row with
        its checksum; the batch is committed when that second flush returns.

        Raises:
            StoreError: Read-only or closed store, a duplicate key, arrays of the wrong shape;
                or a failed write (the store is then closed and the batch not committed).
            DiskFullError: The file system lacks room for the batch plus
                :data:`SPACE_MARGIN` (nothing was written; the store stays open), or a write
                failed for lack of space, a quota or a read-only file system (the store is
                then closed and the batch not committed).
        """
        self._require_open(writing=True)
        if self.has_batch(key):
            raise StoreError(f"{self.path}: batch {key!r} is already stored")
        classes = np.asarray(classes)
        params = np.asarray(params, dtype=np.float64)
        inputs = np.asarray(inputs, dtype=np.float32)
        n = len(classes)
        if params.shape != (n, len(self.param_names)) or inputs.shape != (n, *self.input_shape):
            raise StoreError(
                f"batch {key!r}: expected params {(n, len(self.param_names))} and inputs "
                f"{(n, *self.input_shape)}, got {params.shape} and {inputs.shape}"
            )
        start = self._n
        batch_row = self._m
        what = f"batch {key!r} ({n} samples)"
        needed = self._append_bytes(start, n, batch_row, key)
        self._ensure_space(what, needed)
        columns = {
            "params": params,
            "classes": classes.astype(np.int16),
            "inputs": inputs,
            "phase": np.full(n, label.phase, np.int16),
            "split": np.full(n, SPLITS.index(label.split), np.int8),
            "batch": np.full(n, batch_row, np.int32),
        }
        with self._writing(what, needed):
            code = self._origin_code(label.origin)
            columns["origin"] = np.full(n, code, np.int16)
            for name in COLUMNS:
                ds = self._samples[name]
                ds.resize(start + n, axis=0)
                ds[start:] = columns[name]
            self._sync()  # the data is on disk before the row that commits it
            row = index.commit_row(
                self._batches,
                key=key,
                start=start,
                label=label,
                origin=code,
                classes=columns["classes"],
                params=params,
                inputs=inputs,
            )
            self._batches.resize(batch_row + 1, axis=0)
            self._batches[batch_row] = row
            self._sync(fsync=False)  # made durable by the next append's fsync, or by close()
        self._m, self._n = batch_row + 1, start + n
        if self._keys_cache is not None:
            self._keys_cache.add(key)
        return BatchInfo(key, start, n, label.phase, label.split, label.origin)

    def record_failed(
        self,
        *,
        key: str,
        classes: np.ndarray,
        params: np.ndarray,
        label: BatchLabel,
        error: str,
    ) -> None:
        """Record samples a simulator could not produce, with the error; flushed.

        Raises:
            StoreError: Read-only or closed store, or a failed write (the store is closed).
            DiskFullError: As for :meth:`append`.
        """
        self._require_open(writing=True)
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        classes = np.atleast_1d(np.asarray(classes))
        n = len(params)
        if len(classes) != n:
            raise StoreError(f"failure {key!r}: {len(classes)} classes for {n} parameter rows")
        cls = [int(c) for c in classes]
        what = f"the failure records of {key!r} ({n} samples)"
        needed = failures.failure_bytes(self._failed, n, key, error)
        self._ensure_space(what, needed)
        with self._writing(what, needed):
            code = self._origin_code(label.origin)
            failures.write_params(self._failed, params)
            self._sync()  # parameters first: the record row is the commit marker
            failures.write_records(
                self._failed, key=key, classes=cls, label=label, origin=code, error=error
            )
            self._sync(fsync=False)

    # -- reading ----------------------------------------------------------------------------
    def batch_keys(self) -> set[str]:
        if self._keys_cache is None:
            self._require_open()
            self._keys_cache = index.batch_keys(self._batches, self._m)
        return self._keys_cache

    def has_batch(self, key: str) -> bool:
        return key in self.batch_keys()

    def batches(self) -> list[BatchInfo]:
        self._require_open()
        return index.read_batches(self._batches, self._m, self.origins)

    def failures(self) -> list[dict[str, Any]]:
        """Every recorded failed sample: key, phase, split, origin, class, params, error."""
        self._require_open()
        return failures.read_failures(self._failed, self.origins)

    def select(
        self,
        *,
        split: str | Sequence[str] | None = None,
        phase: int | Sequence[int] | None = None,
        max_phase: int | None = None,
        classes: Sequence[int] | None = None,
    ) -> StoreView:
        """A lazy view of the committed samples matching every given filter.

        Raises:
            StoreError: An unknown split, or a closed store.
        """
        n = len(self)
        rows = matching_rows(
            lambda name: self._dataset(name)[:n],
            n,
            split=split,
            phase=phase,
            max_phase=max_phase,
            classes=classes,
        )
        return StoreView(self, rows)

    def close(self) -> None:
        """Flush and close; a no-op on a closed store (also one closed by a failed write).

        Raises:
            DiskFullError, StoreError: The final flush failed (the store is then closed
                without writing more; every batch committed before stays committed).
        """
        if self._broken is not None or not self._file.id.valid:
            return
        if self.mode == "a":
            try:
                self._sync()
            except Exception as exc:
                self._abandon(exc)
                raise disk.write_error(self.path, exc, "the store's last changes", None) from exc
            disk.trim(self._file)
        self._file.close()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
