"""Append-only HDF5 sample store with one writer.

Layout (every dataset chunked and growing along axis 0)::

    /samples/params   (n, P) float64    full parameter vectors (attr ``names``)
    /samples/classes  (n,)   int16      class index (file attr ``class_names``)
    /samples/inputs   (n, *shape) float32
    /samples/phase    (n,)   int16      workflow phase
    /samples/split    (n,)   int8       index into SPLITS
    /samples/origin   (n,)   int16      index into file attr ``origins`` (policy name)
    /samples/batch    (n,)   int32      row of /batches
    /batches          (m,)   compound   key, start, count, phase, split, origin, time, crc
    /failed/...                          samples a simulator failed on, with the error

**Commit protocol.** An append first checks that the file system has room for every chunk
the append allocates plus :data:`SPACE_MARGIN`, and reserves that room at the end of the file
(``posix_fallocate``) so that another writer cannot take it; if either fails it raises
:class:`~streamal.errors.DiskFullError` having written nothing. Then it writes the sample
rows, flushes and fsyncs; only then writes the batch's ``/batches`` row (the commit marker,
with a CRC-32 of the batch's key, first row, classes, params and inputs) and flushes. A batch
is committed when that flush returns; the next append's fsync (or :meth:`SampleStore.close`)
makes its row durable against a machine crash too, and the data under a commit row was
always fsynced before it. If a write or flush fails (a full disk the check did not foresee,
a quota, an I/O error) no commit row is written, the store is closed without writing
anything more, and :class:`~streamal.errors.DiskFullError` (no space, quota, read-only) or
:class:`~streamal.errors.StoreError` is raised.

**Reopening for appending** drops what is not committed and reports it in
:attr:`SampleStore.recovered`: sample rows past the last committed batch (a crash
mid-append), and a last batch whose data does not match its checksum (it was never written
whole). A damaged batch that is not the last raises :class:`~streamal.errors.StoreError`: the
store never hands out data that was not written. The data check reads every batch committed
since the previous reopen for appending (file attr ``verified_batches``), that is the batches
of the last session (reading a 300 MB store whole takes 0.8 s from the page cache, so a
store of many GB is not read whole on every resume); :meth:`SampleStore.verify` checks every
batch.
Version-1 stores (no checksum) stay version 1; their batches are checked for chunks that were
never written and for all-zero inputs.

**Creation** writes the layout to ``.<name>.creating`` beside the store, fsyncs it and renames
it, so a crash during creation never leaves a half store under the real name. A store with no
committed batch and no failure record (or an unreadable file smaller than an empty store, torn
by an older version) is recreated on reopen for appending.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from streamal import durable
from streamal.data.label import SPLITS, BatchLabel
from streamal.errors import DiskFullError, StoreError

FORMAT_VERSION = 2
SPACE_MARGIN = 256 * 1024
"""Bytes an append leaves free on the file system, for the run's small state files."""
METADATA_ALLOWANCE = 64 * 1024
"""Bytes an append may add besides its chunks: index nodes, heap collections, headers."""
_COLUMNS = ("params", "classes", "inputs", "phase", "split", "origin", "batch")
_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large",
}
_BATCH_DTYPE = np.dtype(
    [
        ("key", h5py.string_dtype()),
        ("start", "i8"),
        ("count", "i8"),
        ("phase", "i2"),
        ("split", "i1"),
        ("origin", "i2"),
        ("time", "f8"),
        ("crc", "u4"),
    ]
)
_FAILED_DTYPE = np.dtype(
    [
        ("key", h5py.string_dtype()),
        ("phase", "i2"),
        ("split", "i1"),
        ("origin", "i2"),
        ("cls", "i2"),
        ("error", h5py.string_dtype()),
        ("time", "f8"),
    ]
)


def batch_checksum(
    key: str, start: int, classes: np.ndarray, params: np.ndarray, inputs: np.ndarray
) -> int:
    """CRC-32 of a batch as stored: key, first row, count, classes, params and inputs."""
    crc = _checksum_start(key, start, len(classes))
    for values, dtype in ((classes, "<i2"), (params, "<f8"), (inputs, "<f4")):
        crc = zlib.crc32(np.ascontiguousarray(values, dtype=dtype), crc)
    return crc


def _checksum_start(key: str, start: int, count: int) -> int:
    crc = zlib.crc32(np.array([start, count], "<i8").tobytes())
    return zlib.crc32(key.encode("utf-8"), crc)


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _disk_itemsize(dtype: np.dtype) -> int:
    """Bytes one element takes in the file (a variable-length string: a 16-byte reference)."""
    if dtype.names:
        return sum(_disk_itemsize(dtype[name]) for name in dtype.names)
    return 16 if dtype.kind == "O" else dtype.itemsize


def _new_chunk_bytes(ds: h5py.Dataset, start: int, n: int) -> int:
    """Bytes of the chunks that writing rows ``start:start+n`` of ``ds`` allocates."""
    if n <= 0:
        return 0
    rows = ds.chunks[0]
    new = -(-(start + n) // rows) - -(-start // rows)  # chunks from ceil(start/rows) on
    return new * math.prod(ds.chunks) * _disk_itemsize(ds.dtype)


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind ``exc``: its own, or the one HDF5 quotes in its message."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno:
            return e.errno
        m = re.search(r"errno = (\d+)", str(e))
        if m:
            return int(m.group(1))
        e = e.__cause__ or e.__context__
    return None


def _reason(exc: BaseException) -> str:
    """``"disk full"``, ``"disk quota exceeded"``, ... for an error that means "no room"."""
    code = _errno_of(exc)
    if code in _REASONS:
        return _REASONS[code]
    text = str(exc)
    if "Disk quota" in text:
        return _REASONS[errno.EDQUOT]
    if "Read-only file system" in text:
        return _REASONS[errno.EROFS]
    return _REASONS[errno.ENOSPC]


def _one_line(exc: BaseException) -> str:
    """``exc`` in one line (HDF5's messages span several, with the OS error inside)."""
    text = str(exc)
    m = re.search(r"error message = '([^']*)'", text)
    if m:
        head = text.split("(", 1)[0].strip()
        return f"{head}: {m.group(1)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _close_without_writing(f: h5py.File) -> None:
    """Close ``f`` after a failed write, writing nothing more to the file.

    After a failed flush HDF5 keeps the dirty entries and tries to write them again on close:
    the close fails too, and any later use of the file (a second close, even
    ``get_vfd_handle``, or h5py's cleanup at interpreter exit) crashes the process with a
    segmentation fault. So the file descriptor is pointed at ``/dev/null`` before the one and
    only close: the close "writes" there and succeeds, and the file stays as the last
    successful flush left it (plus whatever part of the failed one reached the disk). Never
    call this after a close of ``f`` was tried.
    """
    if not f.id.valid:
        return
    try:
        fd = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except Exception:  # noqa: BLE001 - not a POSIX file: close it as it is
        pass
    with contextlib.suppress(Exception):
        f.close()


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


class StoreView:
    """A selection of samples (by split/phase/class) read lazily from the store."""

    def __init__(self, store: SampleStore, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def _read(self, name: str, rows: np.ndarray) -> np.ndarray:
        ds = self.store._dataset(name)
        if len(rows) == 0:
            return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
        # h5py fancy indexing needs increasing indices; read the covering slice when dense.
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if hi - lo <= 2 * len(rows):
            return ds[lo:hi][rows - lo]
        order = np.argsort(rows)
        out = ds[rows[order]]
        return out[np.argsort(order)]

    def params(self) -> np.ndarray:
        return self._read("params", self.indices)

    def classes(self) -> np.ndarray:
        return self._read("classes", self.indices).astype(np.int64)

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Inputs of view rows ``start:stop`` (everything by default)."""
        return self._read("inputs", self.indices[start:stop])

    def iter_blocks(self, block: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(inputs, classes, params)`` in blocks, so a large view never sits in memory whole."""
        for s in range(0, len(self), block):
            rows = self.indices[s : s + block]
            yield (
                self._read("inputs", rows),
                self._read("classes", rows).astype(np.int64),
                self._read("params", rows),
            )


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
        self.recovered: list[str] = []
        self._broken: str | None = None
        layout = None
        if param_names is not None and class_names is not None and input_shape is not None:
            layout = (
                list(param_names),
                list(class_names),
                tuple(int(s) for s in input_shape),
                dict(metadata or {}),
            )
        if mode == "a":
            self._remove_leftover_creation()
        if not self.path.exists():
            if mode == "r":
                raise StoreError(f"{self.path}: no sample store here")
            if layout is None:
                raise StoreError(
                    f"{self.path}: a new store needs param_names, class_names and input_shape"
                )
            self._create_file(layout)
            layout = None  # just created: nothing to recreate
        self._file = self._open(layout)
        try:
            self._check(param_names, class_names, input_shape)
        except StoreError:
            self._file.close()
            raise
        # Every dataset stays open while the store is: h5py closes a dataset when its last
        # Python handle goes away, and HDF5 then writes the dataset's cached chunks; an error
        # there (a full disk) is printed and lost, and the data with it. Held open, the chunks
        # are written by the store's own flushes, whose errors reach the caller.
        self._samples = {name: self._file["samples"][name] for name in _COLUMNS}
        self._failed = {name: self._file["failed"][name] for name in ("records", "params")}
        self._batches = self._file["batches"]
        self._version = int(self._file.attrs.get("format_version", 1))
        if mode == "a":
            self._recover()
            self._m = len(self._batches)
        else:  # a reader leaves the repairs to the writer and sees the valid batches only
            self._m = min(self._read_index(check_data=False), default=len(self._batches))
        self._n = self._committed_rows()

    # -- creation and checks --------------------------------------------------------------
    def _create(
        self,
        f: h5py.File,
        params: list[str],
        classes: list[str],
        shape: tuple[int, ...],
        metadata: dict[str, Any],
    ) -> None:
        """Write the layout of an empty store into the new file ``f``."""
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["class_names"] = json.dumps(classes)
        f.attrs["param_names"] = json.dumps(params)
        f.attrs["input_shape"] = json.dumps(list(shape))
        f.attrs["metadata"] = json.dumps(metadata)
        f.attrs["origins"] = json.dumps([])
        f.attrs["verified_batches"] = 0
        g = f.create_group("samples")
        rows = max(1, min(256, (1 << 20) // (4 * int(np.prod(shape)) or 1)))
        g.create_dataset(
            "params",
            (0, len(params)),
            "f8",
            maxshape=(None, len(params)),
            chunks=(1024, len(params)),
        )
        g.create_dataset(
            "inputs", (0, *shape), "f4", maxshape=(None, *shape), chunks=(rows, *shape)
        )
        for name, dtype in (
            ("classes", "i2"),
            ("phase", "i2"),
            ("split", "i1"),
            ("origin", "i2"),
            ("batch", "i4"),
        ):
            g.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(4096,))
        f.create_dataset("batches", (0,), _BATCH_DTYPE, maxshape=(None,), chunks=(256,))
        fg = f.create_group("failed")
        fg.create_dataset("records", (0,), _FAILED_DTYPE, maxshape=(None,), chunks=(256,))
        fg.create_dataset(
            "params",
            (0, len(params)),
            "f8",
            maxshape=(None, len(params)),
            chunks=(256, len(params)),
        )

    def _creating_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.creating")

    def _remove_leftover_creation(self) -> None:
        tmp = self._creating_path()
        if tmp.exists():
            with contextlib.suppress(OSError):
                tmp.unlink()
                self.recovered.append(f"removed {tmp.name}, a store whose creation was cut off")

    def _create_file(self, layout: tuple) -> None:
        """Create an empty store: layout written to a temporary file, fsynced, renamed."""
        tmp = self._creating_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = h5py.File(tmp, "w")
            try:
                self._create(f, *layout)
                f.flush()  # a failure shows here, not in close(), which must not fail
            except BaseException:
                _close_without_writing(f)
                raise
            f.close()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except Exception as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if durable.is_disk_full(exc):
                raise DiskFullError.at(
                    self.path, "a new sample store", reason=_reason(exc)
                ) from None
            raise StoreError(
                f"{self.path}: cannot create the sample store ({_one_line(exc)})"
            ) from None
        durable.fsync_dir(self.path.parent)

    def _empty_size(self, layout: tuple) -> int:
        """Bytes of an empty store with this layout (built in memory)."""
        name = f"{self.path}.empty-probe-{os.getpid()}"
        with h5py.File(name, "w", driver="core", backing_store=False, block_size=1) as f:
            self._create(f, *layout)
            f.flush()
            return int(f.id.get_filesize())

    @staticmethod
    def _missing_layout(f: h5py.File) -> list[str]:
        names = [f"samples/{c}" for c in _COLUMNS] + ["batches", "failed/records", "failed/params"]
        attrs = ["class_names", "param_names", "input_shape", "metadata", "origins"]
        return [f"attribute {a}" for a in attrs if a not in f.attrs] + [
            f"/{n}" for n in names if n not in f
        ]

    def _open(self, layout: tuple | None) -> h5py.File:
        """Open the existing file; recreate it when it holds no committed data.

        Recreating needs the ``layout`` (and append mode); ``None`` opens the file as it is.
        """
        try:
            f = h5py.File(self.path, "r+" if self.mode == "a" else "r")
        except OSError as exc:
            size = self.path.stat().st_size
            code = _errno_of(exc)  # None: HDF5 could read the file but not make sense of it
            torn = code is None and self.mode == "a" and layout is not None
            if torn and size < self._empty_size(layout):  # it cannot hold a committed batch
                self._create_file(layout)
                self.recovered.append(
                    "recreated the store: the file was torn while it was being created "
                    f"({size} bytes, not a readable HDF5 file)"
                )
                return h5py.File(self.path, "r+")
            if code is None:
                raise StoreError(
                    f"{self.path}: not a readable sample store ({size} bytes; {_one_line(exc)});"
                    " move it away to start a new store"
                ) from None
            if self.mode == "a" and durable.is_disk_full(exc):
                raise DiskFullError.at(
                    self.path, "any batch (cannot open the store for writing)", reason=_reason(exc)
                ) from None
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise StoreError(
                    f"{self.path}: the sample store is open in another process ({_one_line(exc)})"
                ) from None
            raise StoreError(
                f"{self.path}: cannot open the sample store ({_one_line(exc)})"
            ) from None
        missing = self._missing_layout(f)
        if self.mode == "a" and layout is not None:
            nb = len(f["batches"]) if "/batches" not in missing else 0
            nf = len(f["failed/records"]) if "/failed/records" not in missing else 0
            if nb == 0 and nf == 0:
                rows = f["samples/classes"].shape[0] if "/samples/classes" not in missing else 0
                why = "no committed batch"
                if missing:
                    why += f", incomplete layout (no {missing[0]})"
                if rows:
                    why += f", {rows} torn sample row(s)"
                f.close()
                self._create_file(layout)
                self.recovered.append(f"recreated the store: it had {why}")
                return h5py.File(self.path, "r+")
        version = f.attrs.get("format_version", 1)
        if missing:
            f.close()
            raise StoreError(
                f"{self.path}: not a complete sample store (no {', '.join(missing)}); "
                "move it away to start a new store"
            )
        if int(version) > FORMAT_VERSION:
            f.close()
            raise StoreError(
                f"{self.path}: store format version {version} is newer than this streamal "
                f"reads ({FORMAT_VERSION}); upgrade streamal"
            )
        return f

    def _check(self, params, classes, shape) -> None:
        attrs = self._file.attrs
        for key, want in (
            ("param_names", params),
            ("class_names", classes),
            ("input_shape", shape),
        ):
            have = json.loads(attrs[key])
            if want is not None and list(want) != have:
                raise StoreError(
                    f"{self.path}: store was written with {key} {have}, this run has {list(want)}"
                )

    # -- recovery on reopen -----------------------------------------------------------------
    def _recover(self) -> None:
        """Drop what is not committed; refuse a store whose committed data is damaged."""
        m = len(self._batches)
        bad = self._read_index(check_data=True)
        if bad and set(bad) != {m - 1}:
            self._file.close()
            listed = "; ".join(f"{key!r}: {why}" for key, why in list(bad.values())[:5])
            more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise StoreError(
                f"{self.path}: {len(bad)} committed batch(es) are damaged ({listed}{more}); "
                "their data was not written whole, so the store cannot be resumed: move it "
                "away to start the run anew"
            )
        try:
            if bad:
                row = self._batches[m - 1]
                self._batches.resize(m - 1, axis=0)
                self.recovered.append(
                    f"dropped the last batch {bad[m - 1][0]!r} ({int(row['count'])} samples): "
                    f"{bad[m - 1][1]} (its writing was cut off)"
                )
            self._drop_torn_rows()
            if int(self._file.attrs.get("verified_batches", -1)) != len(self._batches):
                self._file.attrs["verified_batches"] = len(self._batches)
            self._sync()
        except Exception as exc:
            self._abandon(exc)
            raise self._write_error(exc, "the repairs made on reopening", None) from exc

    def _read_index(self, *, check_data: bool) -> dict[int, tuple[str, str]]:
        """:meth:`_damaged` on opening: the data of the batches since the last check."""
        try:
            m = len(self._batches)
            first = min(int(self._file.attrs.get("verified_batches", 0)), m) if check_data else m
            return self._damaged(first)
        except Exception as exc:  # noqa: BLE001 - HDF5 cannot read its own index
            self._file.close()
            raise StoreError(
                f"{self.path}: cannot read the store's batch index ({_one_line(exc)}); move it "
                "away to start the run anew"
            ) from None

    def _damaged(self, first: int = 0) -> dict[int, tuple[str, str]]:
        """``{row: (key, what is wrong)}`` for committed batches that are not whole.

        Every row of ``/batches`` is checked for consistency (cheap); the data of rows
        ``first:`` is read and checked against the batch's checksum.
        """
        rows = self._batches[:]
        n_rows = min(self._samples[c].shape[0] for c in _COLUMNS)
        n_origins = len(self.origins)
        bad: dict[int, tuple[str, str]] = {}
        expected = 0
        for i, row in enumerate(rows):
            key, start, count = _text(row["key"]), int(row["start"]), int(row["count"])
            label = key or f"row {i}"
            if not key or start != expected or count < 0:
                bad[i] = (label, "its row in /batches is not valid")
            elif start + count > n_rows:
                bad[i] = (label, f"its sample rows {start}:{start + count} are missing")
            elif not (0 <= int(row["split"]) < len(SPLITS) and 0 <= int(row["origin"]) < n_origins):
                bad[i] = (label, "its row in /batches is not valid")
            elif i >= first:
                why = self._bad_data(key, start, count, row)
                if why:
                    bad[i] = (label, why)
            expected = start + max(count, 0)
        return bad

    def _bad_data(self, key: str, start: int, count: int, row: np.void) -> str | None:
        """What is wrong with the stored data of one batch, or None."""
        rows = slice(start, start + count)
        block = max(1, (64 << 20) // max(1, 4 * math.prod(self.input_shape)))
        inputs = self._samples["inputs"]
        try:
            if self._version >= 2:
                crc = _checksum_start(key, start, count)
                crc = zlib.crc32(np.ascontiguousarray(self._samples["classes"][rows], "<i2"), crc)
                crc = zlib.crc32(np.ascontiguousarray(self._samples["params"][rows], "<f8"), crc)
                for s in range(start, start + count, block):
                    part = inputs[s : min(s + block, start + count)]
                    crc = zlib.crc32(np.ascontiguousarray(part, "<f4"), crc)
                if crc != int(row["crc"]):
                    return "its data does not match its checksum"
                return None
            # Version 1 has no checksum: look for chunks never written, and all-zero inputs.
            for name in _COLUMNS:
                ds = self._samples[name]
                if count == 0 or not hasattr(ds.id, "get_chunk_info_by_coord"):
                    continue
                c = ds.chunks[0]
                for k in range(start // c, (start + count - 1) // c + 1):
                    info = ds.id.get_chunk_info_by_coord((k * c,) + (0,) * (ds.ndim - 1))
                    if info.byte_offset is None:
                        return f"its /samples/{name} rows were never written"
            if count and math.prod(self.input_shape) and not np.any(inputs[rows]):
                return "its inputs are all zero (never written)"
        except Exception as exc:  # noqa: BLE001 - an unreadable batch is a damaged batch
            return f"its data cannot be read ({_one_line(exc)})"
        return None

    def verify(self, first: int = 0) -> dict[str, str]:
        """Check committed batches ``first:`` (all by default) against their checksums.

        Reads their data (0.8 s for 300 MB from the page cache). Returns ``{batch key: what
        is wrong}``, empty when every batch is whole. Reopening for appending runs this on the
        batches committed since the previous reopen.
        """
        self._require_open()
        return dict(self._damaged(first).values())

    def _drop_torn_rows(self) -> None:
        """Drop sample rows that no committed batch covers (a crash mid-append)."""
        committed = self._committed_rows()
        torn = {name: ds.shape[0] for name, ds in self._samples.items() if ds.shape[0] != committed}
        if torn:
            self.recovered.append(
                f"dropped {max(torn.values()) - committed} sample row(s) of an uncommitted batch "
                f"(committed {committed}, found {self._samples['classes'].shape[0]})"
            )
            for name in torn:
                self._samples[name].resize(committed, axis=0)
        failed = self._failed
        nf = failed["records"].shape[0]
        if failed["params"].shape[0] != nf:
            self.recovered.append("dropped a torn failure record")
            failed["params"].resize(min(nf, failed["params"].shape[0]), axis=0)
            failed["records"].resize(failed["params"].shape[0], axis=0)

    def _committed_rows(self) -> int:
        m = getattr(self, "_m", len(self._batches))
        if not m:
            return 0
        last = self._batches[m - 1]
        return int(last["start"] + last["count"])

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

    def _writable(self) -> None:
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only")
        self._require_open()

    def _require_open(self) -> None:
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
        """Raise DiskFullError, writing nothing, unless ``needed`` bytes + the margin are free.

        The ``needed`` bytes are also reserved at the end of the file (where HDF5 allocates
        new space) so that another writer filling the disk cannot take them in between.
        """
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            free = None
        if free is not None and free < needed + SPACE_MARGIN:
            raise DiskFullError.at(self.path, what, needed=needed + SPACE_MARGIN)
        self._reserve(what, needed)

    def _reserve(self, what: str, needed: int) -> None:
        if not hasattr(os, "posix_fallocate"):
            return
        try:
            fd = self._file.id.get_vfd_handle()
            end = int(self._file.id.get_filesize())
            size = os.fstat(fd).st_size
        except Exception:  # noqa: BLE001 - not a plain POSIX file: no reservation
            return
        try:
            os.posix_fallocate(fd, end, needed)
        except OSError as exc:
            if exc.errno not in durable.DISK_FULL_ERRNOS:
                return  # the file system cannot reserve (EOPNOTSUPP, EINVAL): the check stands
            with contextlib.suppress(OSError):
                os.ftruncate(fd, max(size, end))  # give back a partial reservation
            raise DiskFullError.at(
                self.path, what, needed=needed + SPACE_MARGIN, reason=_reason(exc)
            ) from None

    def _sync(self, *, fsync: bool = True) -> None:
        """Flush HDF5's caches to the file and (``fsync``) the file to the disk."""
        self._file.flush()
        if not fsync:
            return
        try:
            fd = self._file.id.get_vfd_handle()
        except Exception:  # noqa: BLE001 - not a plain POSIX file: flushed is all we can do
            return
        os.fsync(fd)

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
            raise self._write_error(exc, what, needed) from exc

    def _abandon(self, exc: BaseException | None) -> None:
        """Close the store after a failed write without writing anything more."""
        self._broken = "no space" if exc is None else _one_line(exc)
        self._keys_cache = None
        _close_without_writing(self._file)

    def _write_error(self, exc: BaseException, what: str, needed: int | None) -> Exception:
        if durable.is_disk_full(exc):
            return DiskFullError.at(
                self.path,
                what,
                needed=None if needed is None else needed + SPACE_MARGIN,
                reason=_reason(exc),
            )
        return StoreError(
            f"{self.path}: cannot store {what}: {_one_line(exc)}; the store was closed, "
            "nothing of it is committed"
        )

    def _append_bytes(self, start: int, n: int, batch_row: int, key: str) -> int:
        """Bytes an append of ``n`` samples allocates in the file, at most."""
        chunks = sum(_new_chunk_bytes(self._samples[c], start, n) for c in _COLUMNS)
        chunks += _new_chunk_bytes(self._batches, batch_row, 1)
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
        self._writable()
        phase, split, origin = label.phase, label.split, label.origin
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
            "phase": np.full(n, phase, np.int16),
            "split": np.full(n, SPLITS.index(split), np.int8),
            "batch": np.full(n, batch_row, np.int32),
        }
        with self._writing(what, needed):
            code = self._origin_code(origin)
            columns["origin"] = np.full(n, code, np.int16)
            for name in _COLUMNS:
                ds = self._samples[name]
                ds.resize(start + n, axis=0)
                ds[start:] = columns[name]
            self._sync()  # the data is on disk before the row that commits it
            row = np.zeros((), dtype=self._batches.dtype)
            row["key"], row["start"], row["count"] = key, start, n
            row["phase"], row["split"], row["origin"] = phase, SPLITS.index(split), code
            row["time"] = time.time()
            if "crc" in row.dtype.names:
                row["crc"] = batch_checksum(key, start, columns["classes"], params, inputs)
            self._batches.resize(batch_row + 1, axis=0)
            self._batches[batch_row] = row
            self._sync(fsync=False)  # made durable by the next append's fsync, or by close()
        self._m, self._n = batch_row + 1, start + n
        if self._keys_cache is not None:
            self._keys_cache.add(key)
        return BatchInfo(key, start, n, phase, split, origin)

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
        self._writable()
        phase, split, origin = label.phase, label.split, label.origin
        f = self._failed
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        classes = np.atleast_1d(np.asarray(classes))
        n0, n = f["records"].shape[0], len(params)
        if len(classes) != n:
            raise StoreError(f"failure {key!r}: {len(classes)} classes for {n} parameter rows")
        cls = [int(c) for c in classes]
        what = f"the failure records of {key!r} ({n} samples)"
        needed = (
            _new_chunk_bytes(f["params"], n0, n)
            + _new_chunk_bytes(f["records"], n0, n)
            + n * (len(error.encode("utf-8")) + len(key.encode("utf-8")) + 64)
            + 4096
            + METADATA_ALLOWANCE
        )
        self._ensure_space(what, needed)
        with self._writing(what, needed):
            code = self._origin_code(origin)
            f["params"].resize(n0 + n, axis=0)
            f["params"][n0:] = params
            self._sync()  # parameters first: the record row is the commit marker
            f["records"].resize(n0 + n, axis=0)
            f["records"][n0:] = [
                (key, phase, SPLITS.index(split), code, c, error, time.time()) for c in cls
            ]
            self._sync(fsync=False)

    # -- reading ----------------------------------------------------------------------------
    def batch_keys(self) -> set[str]:
        if self._keys_cache is None:
            self._require_open()
            keys = self._batches["key"][: self._m] if self._m else []
            self._keys_cache = {_text(k) for k in keys}
        return self._keys_cache

    def has_batch(self, key: str) -> bool:
        return key in self.batch_keys()

    def batches(self) -> list[BatchInfo]:
        self._require_open()
        origins = self.origins
        return [
            BatchInfo(
                _text(row["key"]),
                int(row["start"]),
                int(row["count"]),
                int(row["phase"]),
                SPLITS[int(row["split"])],
                origins[int(row["origin"])],
            )
            for row in self._batches[: self._m]
        ]

    def failures(self) -> list[dict[str, Any]]:
        """Every recorded failed sample: key, phase, split, origin, class, params, error."""
        self._require_open()
        f = self._failed
        origins = self.origins
        nf = min(f["records"].shape[0], f["params"].shape[0])
        return [
            {
                "key": _text(rec["key"]),
                "phase": int(rec["phase"]),
                "split": SPLITS[int(rec["split"])],
                "origin": origins[int(rec["origin"])],
                "class": int(rec["cls"]),
                "params": params.tolist(),
                "error": _text(rec["error"]),
            }
            for rec, params in zip(f["records"][:nf], f["params"][:nf], strict=True)
        ]

    def select(
        self,
        *,
        split: str | Sequence[str] | None = None,
        phase: int | Sequence[int] | None = None,
        max_phase: int | None = None,
        classes: Sequence[int] | None = None,
    ) -> StoreView:
        """A lazy view of the committed samples matching every given filter."""
        n = len(self)
        mask = np.ones(n, dtype=bool)
        if split is not None:
            names = [split] if isinstance(split, str) else list(split)
            bad = [s for s in names if s not in SPLITS]
            if bad:
                raise StoreError(f"unknown split(s) {bad}; allowed: {list(SPLITS)}")
            mask &= np.isin(self._dataset("split")[:n], [SPLITS.index(s) for s in names])
        if phase is not None or max_phase is not None:
            phases = self._dataset("phase")[:n]
            if phase is not None:
                mask &= np.isin(phases, np.atleast_1d(phase))
            if max_phase is not None:
                mask &= phases <= max_phase
        if classes is not None:
            mask &= np.isin(self._dataset("classes")[:n], list(classes))
        return StoreView(self, np.flatnonzero(mask))

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
                raise self._write_error(exc, "the store's last changes", None) from exc
            self._trim()
        self._file.close()

    def _trim(self) -> None:
        """Give back what is left of the last space reservation past HDF5's end of file."""
        with contextlib.suppress(Exception):
            fd = self._file.id.get_vfd_handle()
            end = int(self._file.id.get_filesize())
            if os.fstat(fd).st_size > end:
                os.ftruncate(fd, end)

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
