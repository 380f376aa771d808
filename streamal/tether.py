"""``python -m streamal.tether --parent PID CMD ...``: run CMD tied to the driver's life.

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

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread exits.

    Returns False where the call is not available (not Linux); exits at once if ``parent``
    (the expected parent pid) is already gone, closing the race with the request.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    if parent is not None and os.getppid() != parent:
        os._exit(0)
    return ok


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "--parent":
        print("usage: python -m streamal.tether --parent PID CMD [ARG ...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited across exec
    die_with_parent(signal.SIGTERM, parent=int(argv[1]))
    os.execvp(argv[2], argv[2:])
    return 127  # pragma: no cover - execvp does not return


def launch_command(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped so that it is tied to this process (the driver)."""
    return [sys.executable, "-m", "streamal.tether", "--parent", str(os.getpid()), *cmd]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
