"""MPI launch mode: a chunk simulated by ``mpiexec -n N`` ranks (mpi4py), for simulators that are
MPI programs or that should spread one chunk over several cores.

The pool worker that runs :func:`simulate_chunk_mpi` writes the chunk to a temporary ``.npz``,
starts ``mpiexec -n N python -m streamal.simulation.mpi IN OUT NAME OPTIONS`` (MPICH's
``mpiexec`` from the ``mpich`` wheel, in the same environment), each rank simulates a
contiguous slice, rank 0 gathers the slices and writes ``OUT``. The ranks inherit the worker's
core affinity; pass ``bind`` to have each rank pinned to one of the worker's cores.

Needs the ``mpi`` extra: ``pip install streamal[mpi]`` (mpi4py + mpich).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from streamal.errors import SimulationError


def mpiexec() -> str:
    """The ``mpiexec`` next to this interpreter (the mpich wheel's), else the one on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if not found:
        raise SimulationError("MPI launch mode needs mpiexec: pip install 'streamal[mpi]'")
    return found


def simulate_chunk_mpi(
    name: str,
    options_json: str,
    classes: np.ndarray,
    params: np.ndarray,
    ranks: int = 2,
    timeout: float = 600.0,
) -> np.ndarray:
    """Simulate one chunk with ``ranks`` MPI processes; returns the gathered outputs."""
    with tempfile.TemporaryDirectory(prefix="streamal-mpi-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npy"
        np.savez(src, classes=classes, params=params)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_"))}
        cmd = [
            mpiexec(),
            "-n",
            str(ranks),
            sys.executable,
            "-m",
            "streamal.simulation.mpi",
            str(src),
            str(dst),
            name,
            options_json,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if res.returncode != 0 or not dst.exists():
            raise SimulationError(
                f"mpiexec -n {ranks} {name} failed ({res.returncode}): {res.stderr[-2000:]}"
            )
        return np.load(dst)


def _rank_main(src: str, dst: str, name: str, options_json: str) -> None:
    from mpi4py import MPI

    from streamal import plugins

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    data = np.load(src)
    rows = np.array_split(np.arange(len(data["classes"])), size)[rank]
    sim = plugins.load("simulators", name)(**json.loads(options_json))
    error = None
    try:
        part = sim.simulate(data["classes"][rows], data["params"][rows])
    except Exception as exc:  # noqa: BLE001 - reported by rank 0 for the whole chunk
        part, error = None, f"rank {rank}: {type(exc).__name__}: {exc}"
    parts = comm.gather((part, error, os.sched_getaffinity(0)), root=0)
    if rank == 0:
        errors = [e for _, e, _ in parts if e]
        if errors:
            print("; ".join(errors), file=sys.stderr)
            sys.exit(1)
        np.save(dst, np.concatenate([p for p, _, _ in parts]))


if __name__ == "__main__":
    _rank_main(*sys.argv[1:5])
