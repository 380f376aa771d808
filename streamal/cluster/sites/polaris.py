"""ALCF Polaris: PBS Pro jobs, ``mpiexec`` on the nodes, 32 cores and 4 A100 per node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamal.cluster.sites.base import ONE_BLOCK, SiteProfile, mpiexec_launcher
from streamal.cluster.topology import Topology, numa_gpu_node

if TYPE_CHECKING:
    from collections.abc import Sequence

    from parsl.providers.base import ExecutionProvider

    from streamal.cluster.plan import RankPlacement
    from streamal.config import SiteConfig


class PolarisSite(SiteProfile):
    """A Polaris compute node; pools submit to PBS Pro (queue ``debug`` unless set)."""

    name = "polaris"
    description = "ALCF Polaris: PBS Pro + mpiexec; 32-core Milan, 4 NUMA domains, 4 A100"
    mpi_launcher = "mpiexec"
    node_memory_bytes = 512 * 2**30  # 512 GB DDR4 per node

    def topology(self) -> Topology:
        """32-core Milan, 4 NUMA domains of 8, GPU0↔NUMA3 … GPU3↔NUMA0."""
        return numa_gpu_node(32, 4, {3: 0, 2: 1, 1: 2, 0: 3})

    def provider(
        self, site: SiteConfig, *, pool: str, cores_per_node: int, gpus: int, worker_init: str
    ) -> ExecutionProvider:
        """PBSProProvider + MpiExecLauncher; inside a job, a LocalProvider on its nodes."""
        from parsl.providers import LocalProvider, PBSProProvider

        launcher = mpiexec_launcher(bind_cmd="--cpu-bind", overrides="--depth=64 --ppn 1")
        if site.allocation == "inside-job":
            return LocalProvider(
                nodes_per_block=site.nodes, launcher=launcher, worker_init=worker_init, **ONE_BLOCK
            )
        # scheduler_options are lines of the job script: one directive per line
        options = "\n".join(
            o for o in (site.scheduler_options, "#PBS -l filesystems=home:eagle") if o
        )
        return PBSProProvider(
            account=site.account,
            queue=site.queue or "debug",
            select_options=f"ngpus={gpus}" if gpus else "",
            scheduler_options=options,
            worker_init=worker_init,
            nodes_per_block=site.nodes,
            cpus_per_node=cores_per_node,
            launcher=launcher,
            walltime=site.walltime,
            **ONE_BLOCK,
        )

    def mpi_binding(self, ranks: Sequence[RankPlacement]) -> str:
        """PALS ``mpiexec``: ``--cpu-bind list:0,1:8,9:…`` (local rank i → ``ranks[i]``'s cores).

        Every GPU stays visible; each rank selects its own from the plan (``GPU 3−k``).
        """
        return "--cpu-bind list:" + ":".join(",".join(map(str, r.cores)) for r in ranks)
