"""How a DDP rank finds out who it is, pins itself and meets the others.

Started by our launcher (:func:`streamal.train.ddp.train`) a rank gets its number as an
argument and the rendezvous store's listening socket from its launcher; started by an MPI
launcher (:func:`streamal.train.mpi_launch.train_mpi`) it reads rank, world size and local
rank from the launcher's environment (:func:`launcher_env`), pins itself before torch is imported
(:func:`place_self`), and rank 0 publishes the store's address in ``OUT_DIR/rendezvous.json``
for the others (:func:`published_store`).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from streamal import durable
from streamal.cluster.plan import RankPlacement
from streamal.runtime.tether import ORPHANED_STATUS
from streamal.train.ddp import (
    AFFINITY_VARIABLES,
    STORE_FD_VARIABLE,
    TrainingError,
    interface_of,
    listen_socket,
)
from streamal.train.spec import TrainSpec

LAUNCHER_CHECK_S = 1.0  # how often a rank checks that its launcher is alive
RENDEZVOUS_FILE = "rendezvous.json"  # rank 0's store address under an MPI launcher
RENDEZVOUS_WAIT_S = 600.0  # how long the other ranks wait for it (a shared FS may lag)

#: (rank, world size, local rank) variables of each launcher, most specific first: PALS
#: (Polaris ``mpiexec``) also sets ``PMI_*``, and ``SLURM_PROCID`` is set (0) in a whole
#: batch script, so it is read last.
LAUNCHER_VARIABLES = (
    ("PALS_RANKID", "PMI_SIZE", "PALS_LOCAL_RANKID"),
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),  # MPICH hydra
    ("PMI_RANK", "PMI_SIZE", "PMI_LOCAL_RANK"),  # PMI launchers that name it so (ALBAND)
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),  # srun
)
#: Node index variables, where a launcher gives one.
NODE_VARIABLES = ("PALS_NODEID", "SLURM_NODEID")


def launcher_env(environ: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """``(rank, world size, local rank)`` as an MPI launcher (hydra ``mpiexec``, PALS, srun,
    Open MPI) gave them to this process, or ``None`` when none did.

    Raises:
        TrainingError: A launcher's variable is not an integer.
    """
    env = os.environ if environ is None else environ
    for rank_var, world_var, local_var in LAUNCHER_VARIABLES:
        if rank_var in env and world_var in env and local_var in env:
            try:
                return int(env[rank_var]), int(env[world_var]), int(env[local_var])
            except ValueError as exc:
                raise TrainingError(
                    f"launcher variables {rank_var}/{world_var}/{local_var} are not integers: "
                    f"{env[rank_var]!r}/{env[world_var]!r}/{env[local_var]!r}"
                ) from exc
    return None


def place_self(placement: RankPlacement) -> None:
    """Pin this process to its placement's cores and GPU; call before torch is imported.

    Removes the OpenMP affinity variables (HTEX's ``GOMP_CPU_AFFINITY`` would put every torch
    thread on one core), sizes OpenMP/MKL to the cores, and shows the process only its GPU
    (none on a CPU-only placement). What our own launcher already did is simply done again.
    """
    for name in AFFINITY_VARIABLES:
        os.environ.pop(name, None)
    if placement.cores:
        os.sched_setaffinity(0, set(placement.cores))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(len(placement.cores))
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    os.environ["CUDA_VISIBLE_DEVICES"] = "" if placement.gpu is None else str(placement.gpu)
    os.environ["LOCAL_RANK_DEVICE"] = "0"


def spec_identity(path: str | Path) -> str:
    """What tells one launch's spec file from another's: a spec is written atomically (a new
    inode each time), so every rank of one launch, on any node, reads the same value."""
    st = os.stat(path)
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def route_interface(addr: str) -> str:
    """The interface this node would reach ``addr`` through (``lo`` for 127.0.0.1), for
    gloo's and NCCL's sockets on a rank that does not own ``addr`` itself."""
    family = socket.getaddrinfo(addr, None, type=socket.SOCK_DGRAM)[0][0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((addr, 9))  # UDP: no packet is sent, the kernel just picks a route
        local = probe.getsockname()[0]
    return interface_of(local)


def published_store(spec: TrainSpec, rank: int, world: int, launch: str):  # noqa: ANN202
    """The store of an MPI-launched training: rank 0 binds ``spec.master_addr`` (a free port)
    and publishes it in ``OUT_DIR/rendezvous.json`` tagged with ``launch``; the others wait
    for a file with that tag and connect. Sets gloo's/NCCL's interface on each rank.
    """
    from torch.distributed import TCPStore
    from torch.distributed.constants import default_pg_timeout

    path = Path(spec.out_dir) / RENDEZVOUS_FILE
    if rank == 0:
        sock = listen_socket(spec.master_addr)
        addr, port = spec.master_addr, sock.getsockname()[1]
        os.environ["GLOO_SOCKET_IFNAME"] = interface = interface_of(addr)
        os.environ["NCCL_SOCKET_IFNAME"] = f"={interface}"
        store = TCPStore(
            addr,
            port,
            world,
            is_master=True,
            timeout=default_pg_timeout,
            master_listen_fd=sock.detach(),
            wait_for_workers=False,
        )
        durable.write_json(path, {"addr": addr, "port": port, "launch": launch})
        return store
    deadline = time.time() + RENDEZVOUS_WAIT_S
    while True:
        found = durable.read_json(path, default=None)
        if isinstance(found, dict) and found.get("launch") == launch:
            break
        if time.time() > deadline:
            raise TrainingError(
                f"rank {rank}: no {path} from rank 0 of this launch after {RENDEZVOUS_WAIT_S} s"
            )
        time.sleep(0.1)
    addr, port = str(found["addr"]), int(found["port"])
    interface = route_interface(addr)
    os.environ["GLOO_SOCKET_IFNAME"] = interface
    os.environ["NCCL_SOCKET_IFNAME"] = f"={interface}"
    return TCPStore(addr, port, world, is_master=False, timeout=default_pg_timeout)


def exit_with_launcher(launcher: int, period: float = LAUNCHER_CHECK_S) -> threading.Thread:
    """Exit this process once ``launcher`` is no longer its parent (it died; we were
    re-parented). The fallback for systems without ``PR_SET_PDEATHSIG``, which the launcher
    sets on Linux; it also covers a rank still waiting in the rendezvous."""

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(period)
        sys.stderr.write(f"launcher {launcher} is gone; this rank exits\n")
        sys.stderr.flush()
        os._exit(ORPHANED_STATUS)

    thread = threading.Thread(target=watch, name="launcher-watch", daemon=True)
    thread.start()
    return thread


def rendezvous_store(rank: int, world: int):  # noqa: ANN202
    """The TCP store the ranks meet through, served by rank 0 on ``MASTER_ADDR`` only.

    torch's ``env://`` rendezvous binds its store server to every interface (``::`` or
    ``0.0.0.0``), whatever ``MASTER_ADDR`` says; a server given an already bound socket
    (``master_listen_fd``) listens where that socket does. The launcher binds it and passes
    it down (``STREAMAL_STORE_FD``); a rank 0 started some other way binds it here.
    """
    from torch.distributed import TCPStore
    from torch.distributed.constants import default_pg_timeout

    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    if rank != 0:
        return TCPStore(addr, port, world, is_master=False, timeout=default_pg_timeout)
    fd = os.environ.pop(STORE_FD_VARIABLE, None)
    listen_fd = int(fd) if fd is not None else listen_socket(addr, port).detach()
    return TCPStore(
        addr, port, world, is_master=True, timeout=default_pg_timeout, master_listen_fd=listen_fd
    )


def who_am_i(spec: TrainSpec, rank: int | None) -> tuple[int, int]:
    """``(rank, local rank)``: the given rank (our launcher: local rank = rank), else the MPI
    launcher's, checked against the spec's world size.

    Raises:
        TrainingError: No rank given and no launcher variables, or a world size or rank the
            spec does not have.
    """
    if rank is not None:
        return rank, rank
    found = launcher_env()
    if found is None:
        names = ", ".join(r for r, _, _ in LAUNCHER_VARIABLES)
        raise TrainingError(f"no rank given and no MPI launcher variables ({names}) set")
    rank, world, local_rank = found
    if world != spec.world_size or not 0 <= rank < world:
        raise TrainingError(
            f"the launcher started rank {rank} of {world}, the spec places {spec.world_size} "
            "ranks; launch it with as many ranks (-n) as spec.ranks has"
        )
    return rank, local_rank
