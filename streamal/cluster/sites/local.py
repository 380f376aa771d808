"""This machine: a LocalProvider, the interchange on loopback, no encryption.

With ``site.nodes`` > 1 the node list is ``$PBS_NODEFILE`` and each pool starts one manager
per listed node through MPICH's hydra ``mpiexec`` (Parsl's ``MpiExecLauncher``): naming this
machine twice (``localhost`` and ``127.0.0.1``) emulates two nodes honestly, with the real
launcher starting every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamal.cluster.sites.base import ONE_BLOCK, SiteProfile, mpiexec_launcher
from streamal.cluster.topology import Topology

if TYPE_CHECKING:
    from collections.abc import Sequence

    from parsl.providers import LocalProvider

    from streamal.cluster.plan import RankPlacement
    from streamal.config import SiteConfig


class LocalSite(SiteProfile):
    """The node the driver runs on; its topology is read from this node."""

    name = "local"
    description = "this machine: Parsl LocalProvider, interchange on 127.0.0.1, no encryption"
    mpi_launcher = "mpiexec"
    submits_jobs = False
    encrypted_by_default = False
    binds_loopback = True

    def topology(self) -> Topology:
        """This node's usable cores, NUMA domains and NVIDIA GPUs."""
        return Topology.discover()

    def provider(
        self, site: SiteConfig, *, pool: str, cores_per_node: int, gpus: int, worker_init: str
    ) -> LocalProvider:
        """Workers started on this node; on several nodes, one manager per node by mpiexec."""
        from parsl.launchers import SingleNodeLauncher
        from parsl.providers import LocalProvider

        if site.nodes > 1:
            launcher = mpiexec_launcher(bind_cmd="-bind-to", overrides="-ppn 1")
            return LocalProvider(
                nodes_per_block=site.nodes, launcher=launcher, worker_init=worker_init, **ONE_BLOCK
            )
        return LocalProvider(launcher=SingleNodeLauncher(), worker_init=worker_init, **ONE_BLOCK)

    def mpi_binding(self, ranks: Sequence[RankPlacement]) -> str:
        """MPICH hydra: ``-bind-to user:0+1,2+3`` (local rank i → the cores of ``ranks[i]``)."""
        return "-bind-to user:" + ",".join("+".join(map(str, r.cores)) for r in ranks)
