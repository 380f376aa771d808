"""This machine: a LocalProvider, the interchange on loopback, no encryption."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamal.cluster.sites.base import ONE_BLOCK, SiteProfile
from streamal.cluster.topology import Topology

if TYPE_CHECKING:
    from parsl.providers import LocalProvider

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
        """Workers started on this node."""
        from parsl.launchers import SingleNodeLauncher
        from parsl.providers import LocalProvider

        return LocalProvider(launcher=SingleNodeLauncher(), worker_init=worker_init, **ONE_BLOCK)
