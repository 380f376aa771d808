"""Errors that name the input that was wrong and what would be right."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from streamal.durable import existing_ancestor


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a SyntaxError's or a plugin's may span several)."""
    return " ".join(str(exc).split()) or "(no message)"


class StreamalError(Exception):
    """Base class for every error streamal raises on purpose."""


class ConfigError(StreamalError):
    """A configuration value is wrong; the message names its key path."""


class ParameterError(StreamalError, ValueError):
    """Simulation parameters are outside their space; the message names the sample."""


class SimulationError(StreamalError):
    """A simulator failed on a chunk of samples."""


class PluginError(StreamalError):
    """A plugin name is unknown or a plugin does not satisfy its interface."""


class StoreError(StreamalError):
    """The sample store is unreadable or does not match the run."""


class DiskFullError(StreamalError):
    """A file could not be written: its file system is full, over quota or read-only.

    The message is one line: what could not be written, where (file and mount point), and the
    space free, needed and total. Build one with :meth:`at`, which measures the file system.

    Attributes:
        path: The file that could not be written (``None`` if unknown).
        free: Bytes free on its file system when the error was raised (``None`` if unknown).
        needed: Bytes the write needed, an estimate (``None`` if unknown).
        total: Size of the file system in bytes (``None`` if unknown).
        mount: Mount point of the file system (``None`` if unknown).
        reason: ``"disk full"``, ``"disk quota exceeded"``, ``"read-only file system"``, ...
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        free: int | None = None,
        needed: int | None = None,
        total: int | None = None,
        mount: str | os.PathLike[str] | None = None,
        reason: str = "disk full",
    ) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.free = free
        self.needed = needed
        self.total = total
        self.mount = None if mount is None else Path(mount)
        self.reason = reason

    @classmethod
    def at(
        cls,
        path: str | os.PathLike[str],
        what: str,
        *,
        needed: int | None = None,
        reason: str = "disk full",
    ) -> DiskFullError:
        """The error for ``what`` (e.g. ``"batch 'p0/val' (32 samples)"``) not written to ``path``.

        Measures the free space of ``path``'s file system. Example message::

            disk full: cannot store batch 'p0/val' (32 samples) in /tmp/x/store.h5: needs
            616 KiB, 180 KiB free of 2.0 MiB on /tmp/x
        """
        from streamal.footprint import human_bytes as _human

        path = Path(path)
        mount = _mount_point(path.parent)
        try:
            usage = shutil.disk_usage(existing_ancestor(path.parent))
            free, total = int(usage.free), int(usage.total)
            space = f"{_human(free)} free of {_human(total)} on {mount}"
        except OSError:
            free = total = None
            space = f"free space unknown on {mount}"
        if needed is not None:
            space = f"needs {_human(needed)}, {space}"
        return cls(
            f"{reason}: cannot store {what} in {path}: {space}",
            path=path,
            free=free,
            needed=needed,
            total=total,
            mount=mount,
            reason=reason,
        )


def _mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path``."""
    p = existing_ancestor(path)
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def os_reason(exc: BaseException) -> str:
    """The system's reason for an OS error (``Permission denied``), else the message."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
