"""The sample store's file layout: its creation, and the checks on opening.

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

**Creation** (:func:`create_file`) writes the layout to ``.<name>.creating`` beside the store,
fsyncs it and renames it, so a crash during creation never leaves a half store under the real
name. :func:`open_file` recreates a store with no committed batch and no failure record (or an
unreadable file smaller than an empty store, torn by an older version) when it is given the
layout to write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from streamal import durable
from streamal.data import disk
from streamal.errors import DiskFullError, StoreError

FORMAT_VERSION = 2
COLUMNS = ("params", "classes", "inputs", "phase", "split", "origin", "batch")
"""The datasets under ``/samples``, one row per sample."""
BATCH_DTYPE = np.dtype(
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
FAILED_DTYPE = np.dtype(
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
_ATTRIBUTES = ("class_names", "param_names", "input_shape", "metadata", "origins")

WriteLayout = Callable[[h5py.File], None]
"""Writes an empty store's layout into a new file."""


@dataclass(frozen=True)
class StoreLayout:
    """What a new store is created with.

    Attributes:
        param_names: Names of the parameter vector.
        class_names: Class labels.
        input_shape: Shape of one sample's input.
        metadata: JSON-able run metadata.
    """

    param_names: list[str]
    class_names: list[str]
    input_shape: tuple[int, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def given(
        cls,
        param_names: Sequence[str] | None,
        class_names: Sequence[str] | None,
        input_shape: Sequence[int] | None,
        metadata: dict[str, Any] | None = None,
    ) -> StoreLayout | None:
        """The layout, or ``None`` unless names and shape are all given."""
        if param_names is None or class_names is None or input_shape is None:
            return None
        shape = tuple(int(s) for s in input_shape)
        return cls(list(param_names), list(class_names), shape, dict(metadata or {}))


def text(x: Any) -> str:
    """A string HDF5 returned (bytes or str) as str."""
    return x.decode() if isinstance(x, bytes) else str(x)


def write_layout(f: h5py.File, layout: StoreLayout) -> None:
    """Write the layout of an empty store into the new file ``f``."""
    params, shape = layout.param_names, layout.input_shape
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["class_names"] = json.dumps(layout.class_names)
    f.attrs["param_names"] = json.dumps(params)
    f.attrs["input_shape"] = json.dumps(list(shape))
    f.attrs["metadata"] = json.dumps(layout.metadata)
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
    g.create_dataset("inputs", (0, *shape), "f4", maxshape=(None, *shape), chunks=(rows, *shape))
    for name, dtype in (
        ("classes", "i2"),
        ("phase", "i2"),
        ("split", "i1"),
        ("origin", "i2"),
        ("batch", "i4"),
    ):
        g.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(4096,))
    f.create_dataset("batches", (0,), BATCH_DTYPE, maxshape=(None,), chunks=(256,))
    fg = f.create_group("failed")
    fg.create_dataset("records", (0,), FAILED_DTYPE, maxshape=(None,), chunks=(256,))
    fg.create_dataset(
        "params",
        (0, len(params)),
        "f8",
        maxshape=(None, len(params)),
        chunks=(256, len(params)),
    )


def creating_path(path: Path) -> Path:
    """Where a store at ``path`` is written while it is created."""
    return path.with_name(f".{path.name}.creating")


def remove_leftover(path: Path) -> str | None:
    """Remove what a creation of the store at ``path`` cut off left; say so (or ``None``)."""
    tmp = creating_path(path)
    if tmp.exists():
        with contextlib.suppress(OSError):
            tmp.unlink()
            return f"removed {tmp.name}, a store whose creation was cut off"
    return None


def create_file(path: Path, write: WriteLayout) -> None:
    """Create an empty store: layout written to a temporary file, fsynced, renamed.

    Raises:
        DiskFullError: No room for the new store.
        StoreError: The store could not be created otherwise.
    """
    tmp = creating_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(tmp, "w")
        try:
            write(f)
            f.flush()  # a failure shows here, not in close(), which must not fail
        except BaseException:
            disk.close_without_writing(f)
            raise
        f.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if durable.is_disk_full(exc):
            raise DiskFullError.at(path, "a new sample store", reason=disk.reason(exc)) from None
        raise StoreError(
            f"{path}: cannot create the sample store ({disk.error_line(exc)})"
        ) from None
    durable.fsync_dir(path.parent)


def empty_size(path: Path, write: WriteLayout) -> int:
    """Bytes of an empty store with this layout (built in memory)."""
    name = f"{path}.empty-probe-{os.getpid()}"
    with h5py.File(name, "w", driver="core", backing_store=False, block_size=1) as f:
        write(f)
        f.flush()
        return int(f.id.get_filesize())


def missing_layout(f: h5py.File) -> list[str]:
    """The attributes and datasets of the layout that ``f`` lacks."""
    names = [f"samples/{c}" for c in COLUMNS] + ["batches", "failed/records", "failed/params"]
    return [f"attribute {a}" for a in _ATTRIBUTES if a not in f.attrs] + [
        f"/{n}" for n in names if n not in f
    ]


def check_layout(
    path: Path,
    f: h5py.File,
    *,
    param_names: Sequence[str] | None,
    class_names: Sequence[str] | None,
    input_shape: Sequence[int] | None,
) -> None:
    """Raise StoreError unless ``f`` was written with the given names and shape (if given)."""
    for key, want in (
        ("param_names", param_names),
        ("class_names", class_names),
        ("input_shape", input_shape),
    ):
        have = json.loads(f.attrs[key])
        if want is not None and list(want) != have:
            raise StoreError(
                f"{path}: store was written with {key} {have}, this run has {list(want)}"
            )


def open_file(
    path: Path,
    mode: str,
    write: WriteLayout | None,
    *,
    param_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
) -> tuple[h5py.File, list[str]]:
    """Open the store at ``path``; in mode ``"a"``, create it if missing and recreate it when
    it holds no committed data.

    Args:
        path: The store.
        mode: ``"a"`` (opened ``r+``) or ``"r"``.
        write: Writes the layout of an empty store (``None`` in mode ``"r"``). Given, a
            missing store is created with it, and a store with no committed batch and no
            failure record, or a torn file smaller than an empty store, is recreated with it.
        param_names, class_names, input_shape: What the store must have been written with
            (each checked if given).

    Returns:
        The open file, and what was repaired on the way (a cut-off creation removed, the store
        recreated), one line each.

    Raises:
        StoreError: No store at ``path`` (and no ``write``); the file is not a readable,
            complete store of a version this streamal reads, is open in another process, or
            was written with other names or shape.
        DiskFullError: It cannot be created or opened for writing for lack of room.
    """
    leftover = remove_leftover(path) if mode == "a" else None
    notes = [leftover] if leftover else []
    if not path.exists():
        if mode == "r":
            raise StoreError(f"{path}: no sample store here")
        if write is None:
            raise StoreError(f"{path}: a new store needs param_names, class_names and input_shape")
        create_file(path, write)
        write = None  # just created: nothing to recreate
    f, note = _open_existing(path, mode, write)
    notes += [note] if note else []
    try:
        check_layout(
            path, f, param_names=param_names, class_names=class_names, input_shape=input_shape
        )
    except StoreError:
        f.close()
        raise
    return f, notes


def _open_existing(
    path: Path, mode: str, write: WriteLayout | None
) -> tuple[h5py.File, str | None]:
    """Open the existing store; recreate it with ``write`` (if given) when it holds no
    committed data. Returns the file and what was recreated (``None`` if nothing was)."""
    try:
        f = h5py.File(path, "r+" if mode == "a" else "r")
    except OSError as exc:
        size = path.stat().st_size
        code = disk.errno_of(exc)  # None: HDF5 could read the file but not make sense of it
        torn = code is None and mode == "a" and write is not None
        if torn and size < empty_size(path, write):  # it cannot hold a committed batch
            create_file(path, write)
            note = (
                "recreated the store: the file was torn while it was being created "
                f"({size} bytes, not a readable HDF5 file)"
            )
            return h5py.File(path, "r+"), note
        line = disk.error_line(exc)
        if code is None:
            raise StoreError(
                f"{path}: not a readable sample store ({size} bytes; {line});"
                " move it away to start a new store"
            ) from None
        if mode == "a" and durable.is_disk_full(exc):
            raise DiskFullError.at(
                path, "any batch (cannot open the store for writing)", reason=disk.reason(exc)
            ) from None
        if code in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise StoreError(
                f"{path}: the sample store is open in another process ({line})"
            ) from None
        raise StoreError(f"{path}: cannot open the sample store ({line})") from None
    missing = missing_layout(f)
    if mode == "a" and write is not None:
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
            create_file(path, write)
            return h5py.File(path, "r+"), f"recreated the store: it had {why}"
    try:
        check_version(path, f, missing)
    except StoreError:
        f.close()
        raise
    return f, None


def check_version(path: Path, f: h5py.File, missing: list[str] | None = None) -> None:
    """Raise StoreError if ``f`` lacks part of the layout or is newer than this streamal."""
    missing = missing_layout(f) if missing is None else missing
    if missing:
        raise StoreError(
            f"{path}: not a complete sample store (no {', '.join(missing)}); "
            "move it away to start a new store"
        )
    version = f.attrs.get("format_version", 1)
    if int(version) > FORMAT_VERSION:
        raise StoreError(
            f"{path}: store format version {version} is newer than this streamal "
            f"reads ({FORMAT_VERSION}); upgrade streamal"
        )
