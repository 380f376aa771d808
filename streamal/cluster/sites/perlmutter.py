"""NERSC Perlmutter GPU nodes: Slurm jobs, ``srun`` on the nodes, 64 cores and 4 A100."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamal.cluster.sites.base import ONE_BLOCK, SiteProfile
from streamal.cluster.topology import Topology, numa_gpu_node

if TYPE_CHECKING:
    from collections.abc import Sequence

    from parsl.providers.base import ExecutionProvider

    from streamal.cluster.plan import RankPlacement
    from streamal.config import SiteConfig


class PerlmutterSite(SiteProfile):
    """A Perlmutter GPU node; pools submit to Slurm (QOS ``regular`` unless set)."""

    name = "perlmutter"
    description = "NERSC Perlmutter GPU: Slurm + srun; 64-core Milan, 4 NUMA domains, 4 A100"
    mpi_launcher = "srun"
    node_memory_bytes = 256 * 2**30  # 256 GB DDR4 per GPU node

    def topology(self) -> Topology:
        """64 cores, 4 NUMA domains of 16, GPU 3−k ↔ NUMA k."""
        return numa_gpu_node(64, 4, {3: 0, 2: 1, 1: 2, 0: 3})

    def provider(
        self, site: SiteConfig, *, pool: str, cores_per_node: int, gpus: int, worker_init: str
    ) -> ExecutionProvider:
        """SlurmProvider + SrunLauncher; inside a job, a LocalProvider on its nodes."""
        from parsl.launchers import SrunLauncher
        from parsl.providers import LocalProvider, SlurmProvider

        # One manager per node that sees the whole node (HTEX pins each worker to its plan
        # cores), in a step that overlaps the other pool's and the trainings' steps; GPUs only
        # for the pool that trains.
        node_cores = len(self.topology().cores)
        gpus_option = " --gpus-per-node=4" if gpus else ""
        launcher = SrunLauncher(overrides=f"--cpus-per-task={node_cores} --overlap{gpus_option}")
        if site.allocation == "inside-job":
            return LocalProvider(
                nodes_per_block=site.nodes, launcher=launcher, worker_init=worker_init, **ONE_BLOCK
            )
        return SlurmProvider(
            account=site.account,
            qos=site.queue or "regular",
            constraint="gpu",
            nodes_per_block=site.nodes,
            cores_per_node=cores_per_node,
            gpus_per_node=4 if gpus else None,
            scheduler_options=site.scheduler_options,
            worker_init=worker_init,
            launcher=launcher,
            walltime=site.walltime,
            exclusive=True,
            **ONE_BLOCK,
        )

    def mpi_binding(self, ranks: Sequence[RankPlacement]) -> str:
        """``srun --cpu-bind=mask_cpu:…`` (local rank i → ``ranks[i]``'s cores; a mask, not
        ``map_cpu``, since a rank owns several cores) with every GPU of the node visible to
        every rank (``--gpus-per-node=4 --gpu-bind=none``): each rank selects its own GPU from
        the plan (``GPU 3−k``), which a one-GPU-per-task cgroup would hide. ``--overlap``: the
        pools' managers hold job steps on the same nodes for the whole run."""
        masks = ",".join(hex(sum(1 << c for c in r.cores)) for r in ranks)
        return f"--cpu-bind=mask_cpu:{masks} --gpus-per-node=4 --gpu-bind=none --overlap"
