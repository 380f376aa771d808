"""Files that must survive a crash: written whole or not at all, read back with a fallback.

Every state file of a run directory goes through :func:`write_bytes` (temporary file in the
same directory, ``fsync``, ``rename``, ``fsync`` of the directory), so a process killed while
writing leaves the previous version, never a torn one. A failed write (a full disk) removes
its temporary file and raises :class:`OSError` unchanged; :func:`is_disk_full` tells the
errors that mean "no space".

Example::

    from streamal import durable

    durable.write_json(run_dir / "run.json", {"status": "running"})
    state = durable.read_json(run_dir / "run.json", default={})
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
_MISSING = object()


class TornFileError(ValueError):
    """A state file exists but cannot be parsed (it was torn by a crash or edited by hand)."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the file system has no room or is read-only."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        text = str(exc)
        if any(s in text for s in ("No space left", "Disk quota", "Read-only file system")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def existing_ancestor(path: str | Path) -> Path:
    """``path`` or its nearest existing parent (a run directory may not exist yet)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new file in ``path`` durable (no-op where directories can't fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_with(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, then atomically replace ``path``.

    Raises:
        OSError: The write failed (the temporary file is removed; ``path`` is unchanged).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return path


def remove_temporaries(folder: str | Path, name: str = "*") -> None:
    """Remove the temporary files (of ``name``, or any) that writers killed mid-write left in
    ``folder``; only while no writer of that folder runs."""
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably."""
    return write_with(path, lambda fh: fh.write(data))


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and durably."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, *, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON to ``path`` atomically and durably."""
    return write_text(path, json.dumps(data, indent=indent))


def read_json(path: str | Path, default: Any = _MISSING) -> Any:
    """The JSON in ``path``; ``default`` if it is missing or torn (if given), else raise.

    Raises:
        FileNotFoundError: ``path`` does not exist and no default was given.
        TornFileError: ``path`` is empty or not valid JSON and no default was given.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        if default is _MISSING:
            raise
        return default
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if default is not _MISSING:
            return default
        raise TornFileError(f"{path}: not valid JSON ({len(raw)} bytes): {exc}") from None


def save_torch(path: str | Path, state: Any) -> Path:
    """``torch.save(state)`` to ``path`` atomically and durably."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return write_bytes(path, buf.getvalue())
