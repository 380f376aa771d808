"""A DDP training behind an MPI launcher: one ``<prefix> python -m streamal.train.rank SPEC``
command starts every rank, on every node of the task (the prefix is Parsl's
``$PARSL_MPI_PREFIX``: ``mpiexec -n N -ppn P -hosts …``, ``srun …``)."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.train.ddp import (
    AFFINITY_VARIABLES,
    LAUNCHER_PID_VARIABLE,
    STORE_FD_VARIABLE,
    TrainingError,
    ask_to_stop_if_cancelled,
    pin_before_exec,
    training_result,
)
from streamal.train.spec import TrainSpec

MPI_PREFIX_VARIABLE = "PARSL_MPI_PREFIX"
#: The hosts of a Parsl MPIExecutor task, comma-separated; rank 0 runs on the first.
MPI_NODELIST_VARIABLE = "PARSL_MPI_NODELIST"
#: Lines in which a launcher names the process or rank that failed: MPICH hydra 4+ names the
#: PID and host (matched to ``rank-N.started.json``), older hydra the rank, srun the task.
_FAILED_PID = re.compile(r"PID (\d+) RUNNING AT (\S+)")
_FAILED_RANK = (
    re.compile(r"RANK (\d+) PID \d+ RUNNING AT"),
    re.compile(r"error: \S+: task (\d+): (?:Exited|Killed)"),
)


def _failed_rank(spec: TrainSpec, out: Path, launcher_log: str) -> int:
    """The rank an MPI launch failed on: the one the launcher names (by PID or rank), else
    the first whose log holds a Python traceback, else the first without a report."""
    for pattern in _FAILED_RANK:
        if found := pattern.search(launcher_log):
            return int(found.group(1))
    if found := _FAILED_PID.search(launcher_log):
        for r in spec.ranks:
            started = durable.read_json(out / f"rank-{r.rank}.started.json", default=None)
            if isinstance(started, dict) and started.get("pid") == int(found.group(1)):
                return r.rank
    for r in spec.ranks:
        log = out / f"rank-{r.rank}.log"
        if log.exists() and "Traceback" in log.read_text(errors="replace"):
            return r.rank
    missing = [r.rank for r in spec.ranks if not (out / f"rank-{r.rank}.json").exists()]
    return missing[0] if missing else 0


def master_addr_of(nodelist: str | None) -> str | None:
    """The IPv4 address of the first host of ``$PARSL_MPI_NODELIST`` (where rank 0 runs), or
    ``None`` without one.

    Raises:
        TrainingError: The host name does not resolve.
    """
    host = (nodelist or "").split(",")[0].strip()
    if not host:
        return None
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise TrainingError(
            f"{MPI_NODELIST_VARIABLE}: cannot resolve rank 0's host {host!r} ({exc})"
        ) from exc


def train_mpi(spec: TrainSpec, prefix: str, *, timeout: float | None = None) -> dict[str, Any]:
    """Run one DDP training whose ranks an MPI launcher starts, possibly on several nodes.

    Runs ``<prefix> python -m streamal.train.rank SPEC_JSON`` (one command for all ranks; the
    prefix gives their number, ranks per node and hosts, and must start ``len(spec.ranks)``
    ranks). Each rank pins itself to its ``spec.ranks[rank]`` cores and GPU before importing
    torch (binding through the launcher, e.g. hydra's ``-bind-to user:…``, is optional: the
    self-pinning overrides it). ``spec.master_addr`` must be an address of the node rank 0
    runs on, reachable from the others (loopback when every "node" is this machine); inside a
    Parsl MPIExecutor task it is the address of the first host of ``$PARSL_MPI_NODELIST``.

    Returns:
        What :func:`train` returns, plus ``"launcher"``: the command that started the ranks.

    Raises:
        TrainingError: The launcher exited non-zero or the training timed out; the message
            names the failing rank and carries the end of its log.
    """
    from streamal.runtime.task import note_in_timeline, raise_if_cancelled

    if addr := master_addr_of(os.environ.get(MPI_NODELIST_VARIABLE)):
        spec = dataclasses.replace(spec, master_addr=addr)
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    durable.remove_temporaries(out)
    if spec.cancel_path:
        Path(spec.cancel_path).unlink(missing_ok=True)
    for stale in [out / "rendezvous.json", *out.glob("rank-*.json")]:  # an earlier attempt's
        stale.unlink(missing_ok=True)
    spec_path = spec.write(out / "spec.json")
    command = [*shlex.split(prefix), sys.executable, "-m", "streamal.train.rank", str(spec_path)]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*AFFINITY_VARIABLES, STORE_FD_VARIABLE, LAUNCHER_PID_VARIABLE)
    }
    env["PYTHONFAULTHANDLER"] = "1"
    note_in_timeline(launch_command=shlex.join(command))
    launcher_log = out / "launcher.log"
    deadline = None if timeout is None else time.time() + timeout
    with open(launcher_log, "w") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=pin_before_exec(set(), os.getpid()),
        )
        try:
            while proc.poll() is None:
                deadline = ask_to_stop_if_cancelled(spec.cancel_path, deadline)
                if deadline is not None and time.time() > deadline:
                    break
                time.sleep(0.2)
            raise_if_cancelled()
        finally:
            timed_out = proc.poll() is None
            if timed_out:
                proc.terminate()  # hydra forwards it to every rank
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if timed_out or proc.returncode != 0:
        said = launcher_log.read_text(errors="replace")
        rank = _failed_rank(spec, out, said)
        rank_log = out / f"rank-{rank}.log"
        tail = rank_log.read_text(errors="replace")[-2000:] if rank_log.exists() else ""
        why = "timed out" if timed_out else f"failed (launcher exit status {proc.returncode})"
        raise TrainingError(
            f"DDP rank {rank} {why}; launched by {shlex.join(command)}\n"
            f"rank {rank} log:\n{tail}\nlauncher log:\n{said[-1500:]}"
        )
    return {**training_result(spec, out), "launcher": shlex.join(command)}
