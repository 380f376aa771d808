"""The training task: runs inside the ``train`` pool's worker and starts the DDP ranks.

Each rank is a fresh ``python -m streamal.train.rank`` process, pinned to its NodePlan cores
before ``exec`` and with the OpenMP affinity variables HTEX exported removed (they would put
every torch thread on one core). Each rank sees only its own GPU; gloo on CPU, NCCL when every
rank has a GPU.

Sockets: the ranks meet through a TCP store whose listening socket this launcher binds to
``TrainSpec.master_addr`` (loopback by default) and hands to rank 0; gloo's and NCCL's own
sockets are held to the interface that owns that address. Nothing listens on all interfaces
(torch's ``env://`` rendezvous would: its store server binds ``::``/``0.0.0.0`` whatever
``MASTER_ADDR`` says).

Lifetime: a rank dies with its launcher (``PR_SET_PDEATHSIG`` on Linux, and a watchdog in the
rank everywhere), so a launcher killed with SIGKILL leaves no rank training behind it.

Across nodes (:func:`streamal.train.mpi_launch.train_mpi`): one MPI launcher command starts
every rank (``<prefix> python -m streamal.train.rank SPEC_JSON``; the prefix, e.g. Parsl
MPIExecutor's ``$PARSL_MPI_PREFIX``, gives ``-n``/``-ppn``/hosts). Each rank finds its rank in the
launcher's environment and pins itself to ``spec.ranks[rank]`` before importing torch; rank 0
publishes the store it bound on ``spec.master_addr`` through ``OUT_DIR/rendezvous.json`` (see
:mod:`streamal.train.rank`). The launcher process dies with this task (``PR_SET_PDEATHSIG``)
and takes its ranks down with it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from streamal import durable
from streamal.cluster.plan import RankPlacement
from streamal.errors import StreamalError
from streamal.runtime.tether import die_with_parent, libc_prctl
from streamal.train.spec import TrainSpec

AFFINITY_VARIABLES = ("GOMP_CPU_AFFINITY", "KMP_AFFINITY", "OMP_PROC_BIND", "OMP_PLACES")
STORE_FD_VARIABLE = "STREAMAL_STORE_FD"  # rank 0: the store's listening socket, inherited
LAUNCHER_PID_VARIABLE = "STREAMAL_LAUNCHER_PID"  # every rank exits once this is not its parent


class TrainingError(StreamalError):
    """A DDP rank failed; the message carries the end of its stderr."""


def listen_socket(addr: str, port: int = 0) -> socket.socket:
    """A TCP socket listening on ``addr:port`` only (``port`` 0: a free one), for the store.

    Raises:
        TrainingError: ``addr`` does not resolve, or this node cannot bind it.
    """
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[
            0
        ]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise TrainingError(f"master_addr {addr!r}: cannot resolve it ({exc})") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise TrainingError(
            f"master_addr {addr!r}: cannot listen on port {port} of it ({exc}); "
            "give an address of this node (127.0.0.1 when every rank runs here)"
        ) from exc
    return sock


def interface_of(addr: str) -> str:
    """The name of this node's network interface that holds ``addr`` (``lo`` for 127.0.0.1).

    Raises:
        TrainingError: No interface of this node has that address.
    """
    import psutil

    try:
        wanted = {
            ipaddress.ip_address(str(info[4][0]).split("%")[0])
            for info in socket.getaddrinfo(addr, None, type=socket.SOCK_STREAM)
        }
    except OSError as exc:
        raise TrainingError(f"master_addr {addr!r}: cannot resolve it ({exc})") from exc
    for name, addresses in psutil.net_if_addrs().items():
        for a in addresses:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(a.address.split("%")[0]) in wanted:
                    return name
    raise TrainingError(
        f"master_addr {addr!r} is not an address of this node ({socket.gethostname()}); "
        "give one of its interfaces' addresses (127.0.0.1 when every rank runs here)"
    )


def rank_environment(
    rank: RankPlacement,
    world: int,
    port: int,
    base: dict[str, str],
    *,
    master_addr: str = "127.0.0.1",
    interface: str = "lo",
) -> dict[str, str]:
    """The environment of one rank process."""
    env = {k: v for k, v in base.items() if k not in AFFINITY_VARIABLES}
    env.pop(STORE_FD_VARIABLE, None)
    env.update(
        {
            "RANK": str(rank.rank),
            "LOCAL_RANK": str(rank.rank),
            "WORLD_SIZE": str(world),
            "MASTER_ADDR": master_addr,
            "MASTER_PORT": str(port),
            # gloo's and NCCL's sockets: on the interface of master_addr only ("=": exact name)
            "GLOO_SOCKET_IFNAME": interface,
            "NCCL_SOCKET_IFNAME": f"={interface}",
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": "" if rank.gpu is None else str(rank.gpu),
            "LOCAL_RANK_DEVICE": "0",
            "PYTHONFAULTHANDLER": "1",  # a crashing rank logs its Python stack
            LAUNCHER_PID_VARIABLE: str(os.getpid()),
        }
    )
    if rank.cores:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(len(rank.cores))
    else:  # unpinned: torch sizes its thread pool from the whole machine
        env.pop("OMP_NUM_THREADS", None)
        env.pop("MKL_NUM_THREADS", None)
    return env


def pin_before_exec(cores: set[int], launcher: int) -> Callable[[], None]:
    """What a rank runs between ``fork`` and ``exec``: pin it, and make it die with us.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends. That thread is the
    one calling :func:`train`, which does not return while a rank lives (HTEX runs a task in
    its worker process's main thread), so the signal means the launcher process died.
    """
    prctl = libc_prctl()

    def run() -> None:
        if cores:
            os.sched_setaffinity(0, cores)
        die_with_parent(signal.SIGKILL, launcher, prctl)

    return run


def _start_rank(
    spec: TrainSpec,
    r: RankPlacement,
    spec_path: Path,
    store: socket.socket,
    interface: str,
    base: dict[str, str],
    log: IO[str],
) -> subprocess.Popen:
    """Start one rank process, pinned to its cores before it execs; rank 0 gets the store."""
    env = rank_environment(
        r,
        spec.world_size,
        store.getsockname()[1],
        base,
        master_addr=spec.master_addr,
        interface=interface,
    )
    pass_fds: tuple[int, ...] = ()
    if r.rank == 0:
        env[STORE_FD_VARIABLE] = str(store.fileno())
        pass_fds = (store.fileno(),)
    return subprocess.Popen(
        [sys.executable, "-m", "streamal.train.rank", str(spec_path), str(r.rank)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
        preexec_fn=pin_before_exec(set(r.cores), os.getpid()),
    )


#: Seconds the ranks get to finish their epoch and save once their task is asked to stop.
STOP_GRACE_S = 60.0


def ask_to_stop_if_cancelled(stop_file: str | None, deadline: float | None) -> float | None:
    """Once the task is asked to stop, ask the ranks too (``stop_file``: they save after
    their epoch) and return the deadline cut to :data:`STOP_GRACE_S` from now."""
    from streamal.runtime.task import cancelled

    if stop_file and cancelled() and not os.path.exists(stop_file):
        Path(stop_file).touch()
        grace = time.time() + STOP_GRACE_S
        return grace if deadline is None else min(deadline, grace)
    return deadline


def _wait(
    procs: list[tuple[RankPlacement, subprocess.Popen, Path]],
    timeout: float | None,
    stop_file: str | None,
) -> None:
    """Wait for every rank; on the first failure (or the timeout) raise with its log tail.

    When the task is asked to stop (its walltime, or the run stopping), ``stop_file`` asks
    the ranks to save ``last.pt`` after their current epoch; they get
    :data:`STOP_GRACE_S` to do so, then :class:`~streamal.runtime.task.StopRequested` is
    raised (ranks still running are killed by the caller).
    """
    from streamal.runtime.task import raise_if_cancelled

    deadline = None if timeout is None else time.time() + timeout
    while any(p.poll() is None for _, p, _ in procs):
        if any(p.poll() not in (None, 0) for _, p, _ in procs):
            break
        deadline = ask_to_stop_if_cancelled(stop_file, deadline)
        if deadline is not None and time.time() > deadline:
            break
        time.sleep(0.2)
    raise_if_cancelled()
    failed = [(r, p, log) for r, p, log in procs if p.poll() not in (None, 0)]
    if failed or any(p.poll() is None for _, p, _ in procs):
        r, p, log = failed[0] if failed else procs[0]
        tail = log.read_text()[-3000:] if log.exists() else ""
        why = f"exited with status {p.returncode}" if failed else "timed out"
        raise TrainingError(f"DDP rank {r.rank} {why}:\n{tail}")


def train(
    spec: TrainSpec,
    *,
    timeout: float | None = None,
    parsl_resource_specification: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one DDP training to completion; return the best checkpoint, history and rank reports.

    Inside a Parsl MPIExecutor task (``$PARSL_MPI_PREFIX`` set) the ranks are started by that
    MPI launcher, across the task's nodes (:func:`streamal.train.mpi_launch.train_mpi`);
    otherwise by this process, on this node. ``parsl_resource_specification`` is read by
    Parsl, not here (Parsl passes it on to the app): ``{"num_nodes", "ranks_per_node",
    "num_ranks"}`` with ``num_ranks == len(spec.ranks)``.

    Raises:
        TrainingError: A rank exited non-zero (the others are stopped), or ``spec.master_addr``
            is not an address of this node.
    """
    from streamal.runtime.task import note_in_timeline
    from streamal.train.mpi_launch import MPI_PREFIX_VARIABLE, train_mpi

    if prefix := os.environ.get(MPI_PREFIX_VARIABLE):
        return train_mpi(spec, prefix, timeout=timeout)
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    interface = interface_of(spec.master_addr)
    durable.remove_temporaries(out)
    if spec.cancel_path:  # a previous attempt's stop request is not this attempt's
        Path(spec.cancel_path).unlink(missing_ok=True)
    spec_path = spec.write(out / "spec.json")
    ranks = ",".join(str(r.rank) for r in spec.ranks)
    note_in_timeline(
        launch_command=f"{sys.executable} -m streamal.train.rank {spec_path} RANK "
        f"(RANK in {ranks}: subprocesses of the training task on this node)"
    )
    base = dict(os.environ)
    procs: list[tuple[RankPlacement, subprocess.Popen, Path]] = []
    with contextlib.ExitStack() as logs:
        try:
            with listen_socket(spec.master_addr) as store:  # ours closes once rank 0 has it
                for r in spec.ranks:
                    log = out / f"rank-{r.rank}.log"
                    handle = logs.enter_context(open(log, "w"))
                    procs.append(
                        (r, _start_rank(spec, r, spec_path, store, interface, base, handle), log)
                    )
            _wait(procs, timeout, spec.cancel_path)
        finally:
            for _, p, _ in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return training_result(spec, out)


def training_result(spec: TrainSpec, out: Path) -> dict[str, Any]:
    """The training's result: best checkpoint, history and every rank's report."""
    ranks = [
        durable.read_json(out / f"rank-{r.rank}.json", default=None)
        or {"rank": r.rank, "report_missing": f"rank-{r.rank}.json missing or unreadable"}
        for r in spec.ranks
    ]
    history = durable.read_json(out / "history.json", default=[])
    return {
        "stage": spec.stage,
        "best_checkpoint": str(out / "best.pt"),
        "history": history if isinstance(history, list) else [],
        "ranks": ranks,
        "test": ranks[0].get("test"),
        "world_size": spec.world_size,
        "n_train": len(spec.train_rows),
    }


#: The environment variable Parsl's MPIExecutor gives a task: its launch prefix
#: (``mpiexec -n N -ppn P -hosts h1,h2 <launcher_options>``, or the srun/aprun equivalent).
