"""One driver per run directory: an exclusive lock held for the whole run.

The lock is ``RUN_DIR/.lock``, locked with ``flock`` (released by the kernel when the driver
dies, even by SIGKILL) and holding ``host pid start-time`` so a refusal can say who holds it.
Where ``flock`` is not supported (some Lustre/NFS mounts) the file is created exclusively
instead; such a lock left by a dead driver on this host is detected (its pid is gone) and
taken over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from streamal.errors import StreamalError

_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


class RunDirBusy(StreamalError):
    """Another driver holds the run directory."""


def _holder_text() -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})


def _describe(raw: str) -> str:
    try:
        h = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h["since"])))
        return f"pid {h['pid']} on {h['host']} since {since}"
    except (ValueError, KeyError, TypeError):
        return "another driver"


def _alive_here(raw: str) -> bool:
    """Whether the holder recorded in ``raw`` may still be running (unknown host: yes)."""
    try:
        h = json.loads(raw)
        if h["host"] != socket.gethostname():
            return True
        os.kill(int(h["pid"]), 0)
    except ProcessLookupError:
        return False
    except (ValueError, KeyError, TypeError):
        return False  # an unreadable lock file holds no one
    except PermissionError:
        return True
    return True


class RunDirLock:
    """Exclusive lock on a run directory; use as a context manager or acquire/release."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / ".lock"
        self._fd: int | None = None
        self._exclusive_file = False

    def acquire(self) -> RunDirLock:
        """Take the lock or raise :class:`RunDirBusy` naming its holder; changes nothing then."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            raise self._busy(holder) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_FLOCK:
                raise
            return self._acquire_exclusive_file()
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_text().encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def _acquire_exclusive_file(self) -> RunDirLock:
        path = self.path.with_name(".lock.held")
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = path.read_text(errors="replace")
                if _alive_here(holder):
                    raise self._busy(holder) from None
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # left by a driver that died on this host
                continue
            os.write(fd, _holder_text().encode())
            os.fsync(fd)
            os.close(fd)
            self._exclusive_file = True
            return self
        raise self._busy(path.read_text(errors="replace"))

    def _busy(self, holder: str) -> RunDirBusy:
        return RunDirBusy(
            f"{self.run_dir}: in use by {_describe(holder)}; one driver per run directory "
            "(wait for it to end, or stop it first)"
        )

    def release(self) -> None:
        if self._exclusive_file:
            with contextlib.suppress(FileNotFoundError):
                self.path.with_name(".lock.held").unlink()
            self._exclusive_file = False
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
