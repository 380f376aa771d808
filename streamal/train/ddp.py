"""The training task: runs inside the ``train`` pool's worker and starts the DDP ranks.

Each rank is a fresh ``python -m streamal.train.rank`` process, pinned to its NodePlan cores
before ``exec`` and with the OpenMP affinity variables HTEX exported removed (they would put
every torch thread on one core). Each rank sees only its own GPU. Ranks rendezvous over TCP on
loopback (``MASTER_ADDR=127.0.0.1``); gloo on CPU, NCCL when every rank has a GPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from streamal.errors import StreamalError
from streamal.train.spec import RankSpec, TrainSpec

AFFINITY_VARIABLES = ("GOMP_CPU_AFFINITY", "KMP_AFFINITY", "OMP_PROC_BIND", "OMP_PLACES")


class TrainingError(StreamalError):
    """A DDP rank failed; the message carries the end of its stderr."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_environment(rank: RankSpec, world: int, port: int, base: dict[str, str]) -> dict[str, str]:
    """The environment of one rank process."""
    env = {k: v for k, v in base.items() if k not in AFFINITY_VARIABLES}
    env.update(
        {
            "RANK": str(rank.rank),
            "LOCAL_RANK": str(rank.rank),
            "WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": "" if rank.gpu is None else str(rank.gpu),
            "LOCAL_RANK_DEVICE": "0",
            "PYTHONFAULTHANDLER": "1",  # a crashing rank logs its Python stack
        }
    )
    if rank.cores:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(len(rank.cores))
    else:  # unpinned: torch sizes its thread pool from the whole machine
        env.pop("OMP_NUM_THREADS", None)
        env.pop("MKL_NUM_THREADS", None)
    return env


def _start_rank(
    spec: TrainSpec, r: RankSpec, spec_path: Path, port: int, base: dict[str, str], log: IO[str]
) -> subprocess.Popen:
    """Start one rank process, pinned to its cores before it execs."""
    cores = set(r.cores)
    return subprocess.Popen(
        [sys.executable, "-m", "streamal.train.rank", str(spec_path), str(r.rank)],
        env=rank_environment(r, spec.world_size, port, base),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
    )


def _wait(procs: list[tuple[RankSpec, subprocess.Popen, Path]], timeout: float | None) -> None:
    """Wait for every rank; on the first failure (or the timeout) raise with its log tail."""
    deadline = None if timeout is None else time.time() + timeout
    while any(p.poll() is None for _, p, _ in procs):
        if any(p.poll() not in (None, 0) for _, p, _ in procs):
            break
        if deadline is not None and time.time() > deadline:
            break
        time.sleep(0.2)
    failed = [(r, p, log) for r, p, log in procs if p.poll() not in (None, 0)]
    if failed or any(p.poll() is None for _, p, _ in procs):
        r, p, log = failed[0] if failed else procs[0]
        tail = log.read_text()[-3000:] if log.exists() else ""
        why = f"exited with status {p.returncode}" if failed else "timed out"
        raise TrainingError(f"DDP rank {r.rank} {why}:\n{tail}")


def train(spec: TrainSpec, *, timeout: float | None = None) -> dict[str, Any]:
    """Run one DDP training to completion; return the best checkpoint, history and rank reports.

    Raises:
        TrainingError: A rank exited non-zero (the others are stopped).
    """
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = spec.write(out / "spec.json")
    port = _free_port()
    base = dict(os.environ)
    procs: list[tuple[RankSpec, subprocess.Popen, Path]] = []
    with contextlib.ExitStack() as logs:
        try:
            for r in spec.ranks:
                log = out / f"rank-{r.rank}.log"
                procs.append(
                    (
                        r,
                        _start_rank(
                            spec, r, spec_path, port, base, logs.enter_context(open(log, "w"))
                        ),
                        log,
                    )
                )
            _wait(procs, timeout)
        finally:
            for _, p, _ in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    ranks = [json.loads((out / f"rank-{r.rank}.json").read_text()) for r in spec.ranks]
    history_path = out / "history.json"
    return {
        "phase": spec.phase,
        "best_checkpoint": str(out / "best.pt"),
        "history": json.loads(history_path.read_text()) if history_path.exists() else [],
        "ranks": ranks,
        "test": ranks[0].get("test"),
        "world_size": spec.world_size,
        "n_train": len(spec.train_rows),
    }
