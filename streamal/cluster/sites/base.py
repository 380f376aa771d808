"""The site profile interface and its conformance check.

A site is one class registered under the ``streamal.sites`` entry-point group. It describes
one compute node (:meth:`SiteProfile.topology`) and how a pool gets nodes
(:meth:`SiteProfile.provider`), so no caller asks which concrete site it holds.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from streamal.cluster.topology import Topology

if TYPE_CHECKING:
    from collections.abc import Sequence

    from parsl.launchers.base import Launcher
    from parsl.providers.base import ExecutionProvider

    from streamal.cluster.plan import RankPlacement
    from streamal.config import SiteConfig

#: Every pool is one block, started with the run and kept until it ends.
ONE_BLOCK = {"init_blocks": 1, "min_blocks": 1, "max_blocks": 1}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SiteProfile(ABC):
    """One machine: its compute node and how the ``sim`` and ``train`` pools get nodes.

    Attributes:
        name: The name users write in ``site.name`` (the entry-point name).
        description: One line for humans: the machine, scheduler and node.
        mpi_launcher: The MPI launcher of the machine, one of Parsl's ``VALID_LAUNCHERS``
            (``"mpiexec"``, ``"srun"``, ``"aprun"``).
        submits_jobs: A batch site: with ``allocation: submit`` streamal submits one batch
            job of ``site.nodes`` nodes that runs the campaign (so it needs ``account``);
            ``False`` for a site that runs on the node it is started on.
        encrypted_by_default: Encrypt HTEX traffic when ``site.encrypted`` is not set.
        binds_loopback: The interchange listens on ``127.0.0.1`` only (single-node sites).
        node_memory_bytes: Memory of one compute node; ``None``: this node's free memory.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    mpi_launcher: ClassVar[str] = "mpiexec"
    submits_jobs: ClassVar[bool] = True
    encrypted_by_default: ClassVar[bool] = True
    binds_loopback: ClassVar[bool] = False
    node_memory_bytes: ClassVar[int | None] = None

    @abstractmethod
    def topology(self) -> Topology:
        """Usable cores, NUMA domains and GPUs of one compute node."""

    @abstractmethod
    def provider(
        self, site: SiteConfig, *, pool: str, cores_per_node: int, gpus: int, worker_init: str
    ) -> ExecutionProvider:
        """The Parsl provider that starts one pool's workers.

        Args:
            site: The run's site settings (``nodes``, ``allocation``, ``account``, ...).
            pool: ``"sim"`` or ``"train"``.
            cores_per_node: Cores the pool owns on each node.
            gpus: GPUs the pool owns on each node.
            worker_init: Shell commands to run before the workers start; pass them on.
        """

    def lead_node_provider(
        self, site: SiteConfig, *, cores_per_node: int, gpus: int, worker_init: str
    ) -> ExecutionProvider:
        """The ``train`` pool's provider with Parsl's ``SimpleLauncher``: its command runs
        once, on the first node of the block, and reaches the other nodes itself through the
        MPI launcher — what Parsl's ``MPIExecutor`` needs, and the body of the one batch job
        of ``allocation: submit``."""
        from parsl.launchers import SimpleLauncher

        from streamal.runtime.pools import TRAIN_POOL

        provider = self.provider(
            site, pool=TRAIN_POOL, cores_per_node=cores_per_node, gpus=gpus, worker_init=worker_init
        )
        provider.launcher = SimpleLauncher()
        return provider

    def mpi_binding(self, ranks: Sequence[RankPlacement]) -> str:
        """Options of :attr:`mpi_launcher` that bind local rank ``i`` of every node to
        ``ranks[i]``'s cores (and make its GPU visible); ``""``: no binding (each streamal
        rank pins itself before importing torch in any case)."""
        return ""

    def needs_account(self, site: SiteConfig) -> bool:
        """Whether ``site`` must name an ``account`` (batch jobs submitted by the pools)."""
        return self.submits_jobs and site.allocation == "submit"

    def encrypted(self, site: SiteConfig) -> bool:
        """Whether HTEX traffic is encrypted: ``site.encrypted``, else the site's default."""
        return site.encrypted if site.encrypted is not None else self.encrypted_by_default


#: Where Parsl's ``MpiExecLauncher`` writes the job's node list, and where it should.
_NODE_LIST_IN_CWD = 'HOSTFILE="$JOBNAME.nodes"'
_NODE_LIST_BY_SCRIPT = 'HOSTFILE="${SCRIPT_DIR:+$SCRIPT_DIR/}$JOBNAME.nodes"'


def mpiexec_launcher(*, bind_cmd: str, overrides: str) -> Launcher:
    """Parsl's ``MpiExecLauncher`` (one manager per node), but it keeps its node-list file
    beside its job script (under the run's ``runinfo``), not in the user's working folder."""
    from parsl.launchers import MpiExecLauncher

    class ScriptDirMpiExecLauncher(MpiExecLauncher):
        def __call__(
            self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = ""
        ) -> str:
            script = super().__call__(command, tasks_per_node, nodes_per_block, script_dir)
            return script.replace(_NODE_LIST_IN_CWD, _NODE_LIST_BY_SCRIPT)

    return ScriptDirMpiExecLauncher(bind_cmd=bind_cmd, overrides=overrides)


def check_site_profile(profile: SiteProfile) -> None:
    """Conformance check every site plugin must pass.

    Checks the name, description and MPI launcher, that the topology is one consistent node
    (each usable core in exactly one NUMA domain, each GPU on an existing domain), that the
    default :class:`~streamal.cluster.plan.NodePlan` fits on it, and that :meth:`provider`
    returns a Parsl ``ExecutionProvider`` that keeps ``worker_init`` for both pools and both
    allocation modes (a batch site gets a dummy account). Nothing is submitted.

    Raises:
        AssertionError: With a message saying which property failed.
    """
    from parsl.executors.high_throughput.mpi_prefix_composer import VALID_LAUNCHERS
    from parsl.providers.base import ExecutionProvider

    from streamal.cluster.plan import NodePlan
    from streamal.config import SiteConfig
    from streamal.errors import ConfigError
    from streamal.runtime.pools import SIM_POOL, TRAIN_POOL

    assert isinstance(profile, SiteProfile), f"{profile!r} is not a SiteProfile"
    name = profile.name
    assert isinstance(name, str) and _NAME.match(name), (
        f"name {name!r}: needs letters, digits, '_', '.' or '-' (no ':' or spaces)"
    )
    assert profile.description and "\n" not in profile.description, (
        f"site {name!r}: `description` must be one non-empty line"
    )
    assert profile.mpi_launcher in VALID_LAUNCHERS, (
        f"site {name!r}: mpi_launcher {profile.mpi_launcher!r}; allowed: {sorted(VALID_LAUNCHERS)}"
    )
    memory = profile.node_memory_bytes
    assert memory is None or (isinstance(memory, int) and memory > 0), (
        f"site {name!r}: node_memory_bytes must be None or > 0 (got {memory!r})"
    )
    topo = profile.topology()
    _check_topology(name, topo)
    try:
        plan = NodePlan.build(topo, site=name)
    except ConfigError as exc:
        raise AssertionError(f"site {name!r}: the default NodePlan does not fit: {exc}") from None

    marker = "echo streamal-check"
    for allocation in ("submit", "inside-job"):
        cfg = SiteConfig().model_copy(
            update={"name": name, "allocation": allocation, "account": "check-account"}
        )
        for pool, cores, gpus in (
            (SIM_POOL, len(plan.sim_cores), 0),
            (TRAIN_POOL, len(plan.trainer_cores), len(plan.gpus)),
        ):
            where = f"site {name!r}, allocation {allocation!r}, pool {pool!r}"
            got = profile.provider(
                cfg, pool=pool, cores_per_node=cores, gpus=gpus, worker_init=marker
            )
            assert isinstance(got, ExecutionProvider), (
                f"{where}: provider() returned {type(got).__name__}, not a Parsl ExecutionProvider"
            )
            assert marker in getattr(got, "worker_init", marker), (
                f"{where}: the provider dropped `worker_init` (the sim pool hides GPUs there)"
            )
    for setting in (True, False):
        cfg = SiteConfig().model_copy(update={"name": name, "encrypted": setting})
        assert profile.encrypted(cfg) is setting, f"site {name!r}: site.encrypted is ignored"


def _check_topology(name: str, topo: Topology) -> None:
    """A node: cores, each in exactly one non-empty NUMA domain, GPUs on existing domains."""
    assert isinstance(topo, Topology), f"site {name!r}: topology() must return a Topology"
    assert topo.cores, f"site {name!r}: the topology has no cores"
    assert len(set(topo.cores)) == len(topo.cores), f"site {name!r}: a core is listed twice"
    in_domains = [c for d in topo.numa_domains for c in d]
    assert all(topo.numa_domains), f"site {name!r}: an empty NUMA domain"
    assert sorted(in_domains) == sorted(topo.cores), (
        f"site {name!r}: the NUMA domains must hold every core exactly once"
    )
    indices = [g.index for g in topo.gpus]
    assert len(set(indices)) == len(indices), f"site {name!r}: a GPU index is listed twice"
    for g in topo.gpus:
        assert 0 <= g.numa < len(topo.numa_domains), (
            f"site {name!r}: GPU {g.index} is on NUMA domain {g.numa}; "
            f"allowed: 0..{len(topo.numa_domains) - 1}"
        )
