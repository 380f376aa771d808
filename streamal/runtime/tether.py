"""``python -m streamal.runtime.tether --parent PID CMD ...``: run CMD tied to the driver's life.

The Parsl interchange is started through this wrapper (``interchange_launch_cmd``), so it

* ignores the terminal's Ctrl-C, which signals the whole foreground process group: the driver
  catches it and stops the pools in order, instead of losing its interchange mid-shutdown;
* receives SIGTERM when the driver dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``), so no
  interchange outlives its driver; the workers then lose their heartbeat and exit, and the
  DDP ranks die with their worker (see :mod:`streamal.train.ddp`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHANED_STATUS = 75  # exit status of a process that found its parent already gone


def libc_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), or None. Look it up before a fork: a forked child must not
    load libraries."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int, parent: int, prctl: Callable[..., int] | None) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent thread exits; exit at
    once if ``parent`` (the expected parent pid) is already gone, closing the race."""
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(ORPHANED_STATUS)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "--parent":
        print(
            "usage: python -m streamal.runtime.tether --parent PID CMD [ARG ...]", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited across exec
    die_with_parent(signal.SIGTERM, int(argv[1]), libc_prctl())
    os.execvp(argv[2], argv[2:])
    return 127  # pragma: no cover - execvp does not return


def launch_command(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped so that it is tied to this process (the driver)."""
    return [sys.executable, "-m", "streamal.runtime.tether", "--parent", str(os.getpid()), *cmd]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
