"""NodePlan + site → ``parsl.Config`` with two pools: ``sim`` and ``train``.

* ``sim``: a HighThroughputExecutor with one worker per simulator core, each pinned to its
  core (``cpu_affinity="list:c0:c1:..."``) and no GPU visible.
* ``train``: a HighThroughputExecutor with one worker per node that owns every trainer core
  and GPU of its node; the training task itself starts the DDP ranks of its node and pins
  each one (see ``streamal.train``). With ``train.launcher: mpi`` (``auto`` on several
  nodes) it is instead Parsl's ``MPIExecutor``: a training task asks for every node
  (``parsl_resource_specification``), gets ``$PARSL_MPI_PREFIX`` and starts every rank of
  every node through the site's MPI launcher (:mod:`streamal.train.mpi_launch`).

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
from typing import TYPE_CHECKING, Any

from streamal.cluster import sites
from streamal.cluster.plan import NodePlan
from streamal.errors import ConfigError
from streamal.runtime.pools import SIM_POOL, TRAIN_POOL
from streamal.runtime.tether import launch_command

if TYPE_CHECKING:
    import parsl

    from streamal.config import SchedulerConfig, SiteConfig

LOOPBACK = "127.0.0.1"
HIDE_GPUS = "export CUDA_VISIBLE_DEVICES=''"
#: Where Parsl's MPIExecutor finds the nodes of its block.
NODE_LIST_VARIABLES = ("PBS_NODEFILE", "SLURM_NODELIST")


def train_launcher(launcher: str, plan: NodePlan, *, ddp_trainings: bool = True) -> str:
    """``local`` or ``mpi``: how the trainings of a run start their ranks.

    ``auto`` means ``mpi`` when the plan spans several nodes and the workflow's trainings are
    DDP jobs over the trainer ranks (``ddp_trainings``), else ``local`` (each training task
    starts its ranks on its own node; a workflow of small single-worker trainings spreads them
    over the train workers of every node).
    """
    if launcher == "auto":
        return "mpi" if plan.nodes > 1 and ddp_trainings else "local"
    return launcher


def _check_mpi_train(ddp_trainings: bool) -> None:
    if not ddp_trainings:
        raise ConfigError(
            "train.launcher: mpi starts one DDP training over every node; this workflow's "
            "trainings are single-worker tasks spread over every node: use train.launcher: "
            "auto or local"
        )
    if not any(os.environ.get(v) for v in NODE_LIST_VARIABLES):
        raise ConfigError(
            f"train.launcher: mpi needs the job's nodes in ${' or $'.join(NODE_LIST_VARIABLES)}"
            " (run inside a batch job; on site local: a PBS_NODEFILE listing one name per "
            "emulated node, e.g. localhost and 127.0.0.1)"
        )


def heartbeat_period(threshold_s: int) -> int:
    """Seconds between the pools' heartbeats: 5, or a quarter of a shorter threshold (at
    least 1), so that a pool is taken as lost only after several missed heartbeats."""
    return max(1, min(5, threshold_s // 4))


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
    train_launcher: str = "local",
    ddp_trainings: bool = True,
) -> parsl.Config:
    """The ``parsl.Config`` with the ``sim`` and ``train`` pools of a NodePlan.

    ``sim_cores_per_worker`` > 1 gives each simulator worker a group of cores (MPI launch
    mode: a chunk runs as that many ranks). ``train_worker_per_rank`` gives the train pool one
    worker per trainer rank (its cores and GPU) instead of one worker that starts DDP ranks —
    for workflows that train many small models at once (architecture search).
    ``train_launcher="mpi"`` (see :func:`train_launcher`) makes the train pool an
    ``MPIExecutor`` whose one worker launches each training over all ``plan.nodes`` nodes.
    Nothing is submitted or started.

    Raises:
        ConfigError: ``train_launcher="mpi"`` on a site, workflow or environment that
            cannot run it.
    """
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor

    profile = sites.get(site.name)
    address = {"address": LOOPBACK, "loopback_address": LOOPBACK} if profile.binds_loopback else {}
    common = {
        # the interchange ignores Ctrl-C and dies with the driver (see streamal.runtime.tether)
        "interchange_launch_cmd": launch_command(["interchange.py"]),
        "encrypted": profile.encrypted(site),
        "heartbeat_period": heartbeat_period(scheduler.heartbeat_threshold_s),
        "heartbeat_threshold": scheduler.heartbeat_threshold_s,
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
    if train_launcher == "mpi":
        _check_mpi_train(ddp_trainings)
        train = _mpi_train_pool(plan, profile, site, common)
    else:
        train = _train_pool(plan, profile, site, common, train_worker_per_rank)
    return Config(
        executors=[sim, train],
        run_dir=str(Path(run_dir) / "runinfo"),
        strategy_period=scheduler.strategy_period,
        retries=0,  # the streamal scheduler retries, so each attempt gets its own record
        initialize_logging=False,
        usage_tracking=0,
    )


def mpi_train_resources(plan: NodePlan, site_name: str) -> dict[str, Any]:
    """The ``parsl_resource_specification`` of one training over every node of ``plan``:
    all three of ``num_nodes``, ``ranks_per_node``, ``num_ranks``, and the site's binding of
    each local rank to its cores (``launcher_options``)."""
    options = sites.get(site_name).mpi_binding(plan.trainer_ranks)
    return {
        "num_nodes": plan.nodes,
        "ranks_per_node": len(plan.trainer_ranks),
        "num_ranks": plan.world_size,
        **({"launcher_options": options} if options else {}),
    }


#: The ``parsl_resource_specification`` of a one-process task on an MPI pool (an AL task).
ONE_PROCESS = {"num_nodes": 1, "ranks_per_node": 1, "num_ranks": 1}


def pool_resources(launcher: str) -> dict[str, dict[str, Any]]:
    """Per pool, the resource specification of a task that asks for none (the scheduler's
    ``resources``): with the MPI train launcher, one process on one node."""
    return {TRAIN_POOL: dict(ONE_PROCESS)} if launcher == "mpi" else {}


def _mpi_train_pool(
    plan: NodePlan, profile: sites.SiteProfile, site: SiteConfig, common: dict
) -> parsl.executors.MPIExecutor:
    """Parsl's MPIExecutor: one worker, on the block's lead node, that launches each training
    over the nodes its ``parsl_resource_specification`` asks for (``$PARSL_MPI_PREFIX``)."""
    from parsl.executors import MPIExecutor

    launch_cmd = common["interchange_launch_cmd"]  # MPIExecutor's annotation says str only
    pool = MPIExecutor(
        label=TRAIN_POOL,
        max_workers_per_block=1,
        mpi_launcher=profile.mpi_launcher,
        provider=profile.lead_node_provider(
            site,
            cores_per_node=len(plan.trainer_cores),
            gpus=len(plan.gpus),
            worker_init=site.worker_init,
        ),
        **{k: v for k, v in common.items() if k != "interchange_launch_cmd"},
    )
    pool.interchange_launch_cmd = launch_cmd
    return pool


def _train_pool(
    plan: NodePlan,
    profile: sites.SiteProfile,
    site: SiteConfig,
    common: dict,
    train_worker_per_rank: bool,
):
    from parsl.executors import HighThroughputExecutor

    gpus = plan.gpus
    if train_worker_per_rank:
        train_groups = [r.cores for r in plan.trainer_ranks]
        accelerators = [str(r.gpu) for r in plan.trainer_ranks] if gpus else ()
    else:
        train_groups = [plan.trainer_cores]
        accelerators = [",".join(str(g) for g in gpus)] if gpus else ()
    return HighThroughputExecutor(
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


def ensure_worker_commands_on_path() -> None:
    """Parsl starts ``interchange.py`` and ``process_worker_pool.py`` from ``PATH``.

    Put this interpreter's script directory first so a venv works without activation.
    """
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in path:
        os.environ["PATH"] = os.pathsep.join([bindir, *path])
