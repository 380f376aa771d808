"""The store file on disk: room for a write, its reservation, sync, and a write that failed.

A write first checks the file system has room for what it allocates plus
:data:`SPACE_MARGIN` and reserves that room at the end of the file (``posix_fallocate``)
(:func:`ensure_space`); the sample store then writes, flushes and fsyncs (:func:`sync`). A
write that fails closes the file without writing anything more (:func:`close_without_writing`)
and becomes one clear error (:func:`write_error`): :class:`~streamal.errors.DiskFullError`
when the file system has no room, is over quota or read-only, else
:class:`~streamal.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np

from streamal import durable
from streamal.errors import DiskFullError, StoreError

SPACE_MARGIN = 256 * 1024
"""Bytes an append leaves free on the file system, for the run's small state files."""
METADATA_ALLOWANCE = 64 * 1024
"""Bytes an append may add besides its chunks: index nodes, heap collections, headers."""
_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large",
}


def disk_itemsize(dtype: np.dtype) -> int:
    """Bytes one element takes in the file (a variable-length string: a 16-byte reference)."""
    if dtype.names:
        return sum(disk_itemsize(dtype[name]) for name in dtype.names)
    return 16 if dtype.kind == "O" else dtype.itemsize


def new_chunk_bytes(ds: h5py.Dataset, start: int, n: int) -> int:
    """Bytes of the chunks that writing rows ``start:start+n`` of ``ds`` allocates."""
    if n <= 0:
        return 0
    rows = ds.chunks[0]
    new = -(-(start + n) // rows) - -(-start // rows)  # chunks from ceil(start/rows) on
    return new * math.prod(ds.chunks) * disk_itemsize(ds.dtype)


def errno_of(exc: BaseException) -> int | None:
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


def reason(exc: BaseException) -> str:
    """``"disk full"``, ``"disk quota exceeded"``, ... for an error that means "no room"."""
    code = errno_of(exc)
    if code in _REASONS:
        return _REASONS[code]
    text = str(exc)
    if "Disk quota" in text:
        return _REASONS[errno.EDQUOT]
    if "Read-only file system" in text:
        return _REASONS[errno.EROFS]
    return _REASONS[errno.ENOSPC]


def error_line(exc: BaseException) -> str:
    """``exc`` in one line: for HDF5's messages, which span several with the OS error inside,
    their head and the OS error (:func:`streamal.errors.one_line` keeps every field)."""
    text = str(exc)
    m = re.search(r"error message = '([^']*)'", text)
    if m:
        head = text.split("(", 1)[0].strip()
        return f"{head}: {m.group(1)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def write_error(path: Path, exc: BaseException, what: str, needed: int | None) -> Exception:
    """The error to raise for a failed write of ``what`` (``needed`` bytes, if known)."""
    if durable.is_disk_full(exc):
        return DiskFullError.at(
            path,
            what,
            needed=None if needed is None else needed + SPACE_MARGIN,
            reason=reason(exc),
        )
    return StoreError(
        f"{path}: cannot store {what}: {error_line(exc)}; the store was closed, "
        "nothing of it is committed"
    )


def ensure_space(path: Path, f: h5py.File, what: str, needed: int) -> None:
    """Raise DiskFullError, writing nothing, unless ``needed`` bytes + the margin are free.

    The ``needed`` bytes are also reserved at the end of ``f`` (where HDF5 allocates new
    space) so that another writer filling the disk cannot take them in between.
    """
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < needed + SPACE_MARGIN:
        raise DiskFullError.at(path, what, needed=needed + SPACE_MARGIN)
    reserve(path, f, what, needed)


def reserve(path: Path, f: h5py.File, what: str, needed: int) -> None:
    """Reserve ``needed`` bytes past HDF5's end of ``f``; DiskFullError if there are none."""
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        fd = f.id.get_vfd_handle()
        end = int(f.id.get_filesize())
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
            path, what, needed=needed + SPACE_MARGIN, reason=reason(exc)
        ) from None


def trim(f: h5py.File) -> None:
    """Give back what is left of the last space reservation past HDF5's end of file."""
    with contextlib.suppress(Exception):
        fd = f.id.get_vfd_handle()
        end = int(f.id.get_filesize())
        if os.fstat(fd).st_size > end:
            os.ftruncate(fd, end)


def sync(f: h5py.File, *, fsync: bool = True) -> None:
    """Flush HDF5's caches to the file and (``fsync``) the file to the disk."""
    f.flush()
    if not fsync:
        return
    try:
        fd = f.id.get_vfd_handle()
    except Exception:  # noqa: BLE001 - not a plain POSIX file: flushed is all we can do
        return
    os.fsync(fd)


def close_without_writing(f: h5py.File) -> None:
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
