"""Running one external program in its work directory: launcher prefix, timeout, clean kill.

:func:`run_program` starts the program in a new session (its own process group), with its
stdout and stderr in ``stdout.txt`` / ``stderr.txt`` of the work directory, and waits for it.
A program that runs past its timeout, or whose task is cancelled by the scheduler (its
:class:`~streamal.runtime.task.CancelToken`, e.g. at the task's walltime), is killed with its
whole process group and every descendant still alive (an ``mpiexec`` and its ranks), so the
pool worker is free again. A failure raises :class:`~streamal.errors.SimulationError` with one
line naming the command, the exit status (or the timeout), the end of stderr and the work
directory.

MPI programs are started behind the prefix Parsl composes for its own MPI tasks
(``parsl.executors.high_throughput.mpi_prefix_composer``)::

    launch_prefix("mpiexec", ranks=4)
    # ['/venv/bin/mpiexec', '-n', '4', '-ppn', '4', '-hosts', 'node1']
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from streamal.errors import SimulationError

#: MPI launchers Parsl can compose a prefix for (``mpi_prefix_composer.VALID_LAUNCHERS``).
LAUNCHERS = ("mpiexec", "srun", "aprun")
STDOUT_NAME = "stdout.txt"
STDERR_NAME = "stderr.txt"
#: Environment variables of an enclosing MPI job, hidden from the program so that its own
#: ``MPI_Init`` does not join the job that started the pool workers.
FOREIGN_MPI_PREFIXES = ("PMI_", "OMPI_", "PMIX_", "MPI_LOCALRANKID", "MPI_LOCALNRANKS")
_POLL_S = 0.1


def launch_prefix(
    launcher: str, ranks: int, *, options: str = "", path: str | None = None
) -> list[str]:
    """The argv prefix that starts ``ranks`` MPI ranks on this node.

    Args:
        launcher: One of :data:`LAUNCHERS`.
        ranks: Number of ranks.
        options: Extra launcher options (e.g. ``"--cpu-bind list:0:1"``), appended as Parsl
            appends ``launcher_options``.
        path: The launcher executable; default: for ``mpiexec`` the one of the mpich wheel
            next to this interpreter, else the one on ``PATH``; for the others, ``PATH``'s.

    Raises:
        SimulationError: Unknown launcher, or its executable is not found.
    """
    from parsl.executors.high_throughput import mpi_prefix_composer as composer

    if launcher not in composer.VALID_LAUNCHERS:
        raise SimulationError(
            f"launcher {launcher!r} is not an MPI launcher Parsl knows; "
            f"allowed: {', '.join(composer.VALID_LAUNCHERS)}"
        )
    compose = getattr(composer, f"compose_{launcher}_launch_cmd")
    nodes = os.environ.get("PARSL_MPI_NODELIST", "").split(",")
    nodes = [n for n in nodes if n] or [socket.gethostname()]
    spec = {
        "num_nodes": len(nodes),
        "num_ranks": ranks,
        "ranks_per_node": -(-ranks // len(nodes)),
        "launcher_options": options,
    }
    _, prefix = compose(spec, nodes)
    argv = shlex.split(prefix)
    argv[0] = path or _launcher_path(launcher)
    return argv


def _launcher_path(launcher: str) -> str:
    if launcher == "mpiexec":
        from streamal.simulation.mpi import mpiexec

        return mpiexec()
    found = shutil.which(launcher)
    if not found:
        raise SimulationError(f"launcher {launcher!r} is not on PATH; set `launcher_path`")
    return found


def program_environment(extra: dict[str, str], threads: int) -> dict[str, str]:
    """The worker's environment without a foreign MPI job's variables, with
    ``OMP_NUM_THREADS=threads`` and ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_MPI_PREFIXES)}
    env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra)
    return env


def run_program(
    argv: Sequence[str],
    *,
    workdir: Path,
    env: dict[str, str],
    timeout_s: float | None,
    what: str,
) -> None:
    """Run ``argv`` in ``workdir`` until it exits; raise if it fails.

    Args:
        argv: The command (launcher prefix included).
        workdir: Its working directory; receives ``stdout.txt`` and ``stderr.txt``.
        env: Its environment.
        timeout_s: Kill it (process group and descendants) after this many seconds.
        what: Who runs it, first on an error message (the simulator's name).

    Raises:
        SimulationError: It could not start, exited with a non-zero status, or timed out.
        StopRequested: The scheduler asked the task to stop; the program was killed.
    """
    from streamal.runtime.task import StopRequested, cancelled
    from streamal.runtime.tether import die_with_parent, libc_prctl

    command = shlex.join(argv)
    prctl, parent = libc_prctl(), os.getpid()
    with open(workdir / STDOUT_NAME, "wb") as out, open(workdir / STDERR_NAME, "wb") as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: killed as one
                preexec_fn=lambda: die_with_parent(signal.SIGKILL, parent, prctl),
            )
        except OSError as exc:
            raise SimulationError(
                f"{what}: command {command!r} could not start ({exc.strerror or exc}); "
                f"workdir {workdir}"
            ) from None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                status = proc.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancelled():
                kill_process_tree(proc)
                raise StopRequested(f"{what}: command {command!r} killed: task cancelled")
            if deadline is not None and time.monotonic() > deadline:
                kill_process_tree(proc)
                raise SimulationError(
                    f"{what}: command {command!r} timed out after {timeout_s:g} s (killed)"
                    f"{_stderr_part(workdir)}; workdir {workdir}"
                )
    if status != 0:
        raise SimulationError(
            f"{what}: command {command!r} exited with {_status(status)}"
            f"{_stderr_part(workdir)}; workdir {workdir}"
        )


def kill_process_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group and every descendant still alive, then reap ``proc``.

    The group alone is not enough: MPICH's hydra starts its proxy and each rank in sessions of
    their own.
    """
    import psutil

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()
    proc.wait()
    psutil.wait_procs(descendants, timeout=5)


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"status {code} (killed by {signal.Signals(-code).name})"
    return f"status {code}"


def stderr_tail(workdir: Path, lines: int = 5, limit: int = 600) -> str:
    """The last non-empty ``lines`` of ``stderr.txt``, joined with `` | `` (at most ``limit``
    characters, the end kept)."""
    try:
        with open(workdir / STDERR_NAME, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16 * limit))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [" ".join(line.split()) for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= limit else "..." + joined[-limit:]


def _stderr_part(workdir: Path) -> str:
    tail = stderr_tail(workdir)
    return f"; stderr: {tail}" if tail else "; stderr empty"
