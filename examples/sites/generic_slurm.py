"""A generic Slurm cluster: copy this file, change the node and the job options, register it.

Two sockets of 32 cores (one NUMA domain each), no GPU; pools submit with ``sbatch`` to
``site.queue`` (the partition; the cluster's default when unset) and start workers with
``srun``. Register it in your package's ``pyproject.toml``::

    [project.entry-points."streamal.sites"]
    generic-slurm = "mypackage.sites:GenericSlurmSite"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamal.cluster.sites.base import ONE_BLOCK, SiteProfile
from streamal.cluster.topology import Topology, numa_gpu_node

if TYPE_CHECKING:
    from parsl.providers.base import ExecutionProvider

    from streamal.config import SiteConfig


class GenericSlurmSite(SiteProfile):
    """A CPU node of a Slurm cluster: 2 sockets x 32 cores, no GPU."""

    name = "generic-slurm"
    description = "generic Slurm cluster: sbatch + srun; 2 sockets x 32 cores, no GPU"
    mpi_launcher = "srun"
    node_memory_bytes = 256 * 2**30  # what one node has; `validate` checks a campaign fits

    def topology(self) -> Topology:
        """64 cores in 2 NUMA domains of 32 (one per socket), no GPU."""
        return numa_gpu_node(64, 2, {})

    def provider(
        self, site: SiteConfig, *, pool: str, cores_per_node: int, gpus: int, worker_init: str
    ) -> ExecutionProvider:
        """SlurmProvider + SrunLauncher; inside a job, a LocalProvider on its nodes."""
        from parsl.launchers import SrunLauncher
        from parsl.providers import LocalProvider, SlurmProvider

        launcher = SrunLauncher(overrides=f"--cpus-per-task={cores_per_node}")
        if site.allocation == "inside-job":
            return LocalProvider(
                nodes_per_block=site.nodes, launcher=launcher, worker_init=worker_init, **ONE_BLOCK
            )
        return SlurmProvider(
            partition=site.queue,
            account=site.account,
            nodes_per_block=site.nodes,
            cores_per_node=cores_per_node,
            scheduler_options=site.scheduler_options,
            worker_init=worker_init,
            launcher=launcher,
            walltime=site.walltime,
            exclusive=True,
            **ONE_BLOCK,
        )
