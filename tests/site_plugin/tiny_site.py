"""A site defined outside ``streamal/``: ``tests/test_sites.py`` registers it by entry point.

The whole of adding a site: this file plus ``test-site = tiny_site:TinySite`` in the
``streamal.sites`` group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamal.cluster.sites.base import ONE_BLOCK, SiteProfile
from streamal.cluster.topology import Topology, numa_gpu_node

if TYPE_CHECKING:
    from parsl.providers.base import ExecutionProvider

    from streamal.config import SiteConfig


class TinySite(SiteProfile):
    """A Slurm node with 16 cores in 2 NUMA domains and one GPU on each."""

    name = "test-site"
    description = "test cluster: Slurm + srun; 16 cores, 2 NUMA domains, 2 GPUs"
    mpi_launcher = "srun"

    def topology(self) -> Topology:
        """16 cores, NUMA domain k holds GPU k."""
        return numa_gpu_node(16, 2, {0: 0, 1: 1})

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
            gpus_per_node=gpus or None,
            worker_init=worker_init,
            launcher=launcher,
            walltime=site.walltime,
            **ONE_BLOCK,
        )
