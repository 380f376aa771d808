"""NodePlan + site → ``parsl.Config`` with two pools: ``sim`` and ``train``.

* ``sim``: a HighThroughputExecutor with one worker per simulator core, each pinned to its
  core (``cpu_affinity="list:c0:c1:..."``) and no GPU visible.
* ``train``: a HighThroughputExecutor with one worker that owns every trainer core and GPU;
  the training task itself starts the DDP ranks and pins each one (see ``streamal.train``).

The site profile (:mod:`streamal.cluster.sites`) gives each pool its provider and says
whether traffic is encrypted and whether the interchange binds loopback. With
``site.allocation: inside-job`` the built-in batch sites start both pools on the allocation's
nodes through their MPI launcher (LocalProvider), so each node is split between the pools
exactly as the NodePlan says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from streamal.cluster import sites
from streamal.cluster.plan import NodePlan
from streamal.runtime.pools import SIM_POOL, TRAIN_POOL
from streamal.runtime.tether import launch_command

if TYPE_CHECKING:
    import parsl

    from streamal.config import SchedulerConfig, SiteConfig

LOOPBACK = "127.0.0.1"
HIDE_GPUS = "export CUDA_VISIBLE_DEVICES=''"


def affinity_list(groups: list[tuple[int, ...]]) -> str:
    """Parsl ``cpu_affinity`` for workers pinned to ``groups`` (worker i → groups[i])."""
    return "list:" + ":".join(",".join(str(c) for c in g) for g in groups)


def _join(*cmds: str) -> str:
    return "; ".join(c for c in cmds if c)


def sim_core_groups(plan: NodePlan, cores_per_worker: int = 1) -> list[tuple[int, ...]]:
    """The simulator cores cut into one group per worker (MPI mode: several per worker)."""
    cores = plan.sim_cores
    n = max(1, len(cores) // cores_per_worker)
    return [
        tuple(cores[i * cores_per_worker : (i + 1) * cores_per_worker]) or cores for i in range(n)
    ]


def build_parsl_config(
    plan: NodePlan,
    site: SiteConfig,
    scheduler: SchedulerConfig,
    run_dir: str | Path,
    *,
    sim_cores_per_worker: int = 1,
    train_worker_per_rank: bool = False,
) -> parsl.Config:
    """The ``parsl.Config`` with the ``sim`` and ``train`` pools of a NodePlan.

    ``sim_cores_per_worker`` > 1 gives each simulator worker a group of cores (MPI launch
    mode: a chunk runs as that many ranks). ``train_worker_per_rank`` gives the train pool one
    worker per trainer rank (its cores and GPU) instead of one worker that starts DDP ranks —
    for workflows that train many small models at once (architecture search).
    Nothing is submitted or started.
    """
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor

    profile = sites.get(site.name)
    address = {"address": LOOPBACK, "loopback_address": LOOPBACK} if profile.binds_loopback else {}
    common = {
        # the interchange ignores Ctrl-C and dies with the driver (see streamal.runtime.tether)
        "interchange_launch_cmd": launch_command(["interchange.py"]),
        "encrypted": profile.encrypted(site),
        "heartbeat_period": 5,
        "heartbeat_threshold": 30,
        "poll_period": 10,
        **address,
    }
    groups = sim_core_groups(plan, sim_cores_per_worker)
    sim = HighThroughputExecutor(
        label=SIM_POOL,
        max_workers_per_node=len(groups),
        cpu_affinity=affinity_list(groups),
        available_accelerators=(),
        provider=profile.provider(
            site,
            pool=SIM_POOL,
            cores_per_node=len(plan.sim_cores),
            gpus=0,
            worker_init=_join(site.worker_init, HIDE_GPUS),
        ),
        **common,
    )
    gpus = plan.gpus
    if train_worker_per_rank:
        train_groups = [r.cores for r in plan.trainer_ranks]
        accelerators = [str(r.gpu) for r in plan.trainer_ranks] if gpus else ()
    else:
        train_groups = [plan.trainer_cores]
        accelerators = [",".join(str(g) for g in gpus)] if gpus else ()
    train = HighThroughputExecutor(
        label=TRAIN_POOL,
        max_workers_per_node=len(train_groups),
        cpu_affinity=affinity_list(train_groups),
        available_accelerators=accelerators,
        provider=profile.provider(
            site,
            pool=TRAIN_POOL,
            cores_per_node=len(plan.trainer_cores),
            gpus=len(gpus),
            worker_init=site.worker_init,
        ),
        **common,
    )
    return Config(
        executors=[sim, train],
        run_dir=str(Path(run_dir) / "runinfo"),
        strategy_period=scheduler.strategy_period,
        retries=0,  # the streamal scheduler retries, so each attempt gets its own record
        initialize_logging=False,
        usage_tracking=0,
    )


def ensure_worker_commands_on_path() -> None:
    """Parsl starts ``interchange.py`` and ``process_worker_pool.py`` from ``PATH``.

    Put this interpreter's script directory first so a venv works without activation.
    """
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in path:
        os.environ["PATH"] = os.pathsep.join([bindir, *path])
