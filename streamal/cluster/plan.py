"""The plan that splits a node between the simulator pool and trainer ranks.

Trainer rank ``k`` is placed on the ``k``-th GPU ordered by the GPU's NUMA domain and gets
``cores_per_rank`` cores inside that domain; on a node without GPUs the ranks are spread
round-robin across NUMA domains. Every other usable core goes to the simulator pool. On
Polaris this reproduces the paper's binding: rank ``k`` on cores ``{8k, 8k+1}`` with GPU ``3-k``.

A plan over ``nodes`` nodes repeats the same split on every node; its :attr:`NodePlan.world`
numbers the trainer ranks globally, ``rank = node * ranks_per_node + local_rank``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamal.cluster.topology import Topology
from streamal.errors import ConfigError

DEFAULT_CORES_PER_RANK = 2

if TYPE_CHECKING:
    from streamal.config import SiteConfig


@dataclass(frozen=True)
class RankPlacement:
    """Where one DDP rank runs: its pinned cores and its GPU (``None`` on a CPU-only node).

    The node plan places the ranks; a training spec carries them to the ranks' launcher.
    """

    rank: int
    cores: tuple[int, ...]
    gpu: int | None

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "cores": list(self.cores), "gpu": self.gpu}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RankPlacement:
        return cls(int(data["rank"]), tuple(data["cores"]), data["gpu"])


@dataclass(frozen=True)
class WorldRank:
    """One trainer rank of a multi-node plan: its global rank, node and node-local placement."""

    rank: int
    node: int
    local_rank: int
    cores: tuple[int, ...]
    gpu: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "node": self.node,
            "local_rank": self.local_rank,
            "cores": list(self.cores),
            "gpu": self.gpu,
        }


@dataclass(frozen=True)
class NodePlan:
    """Which cores and GPUs each pool owns on a node, repeated on each of ``nodes`` nodes.

    ``sim_cores`` and ``trainer_ranks`` describe one node (node 0; every node is the same).
    """

    site: str
    sim_cores: tuple[int, ...]
    trainer_ranks: tuple[RankPlacement, ...]
    nodes: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1:
            raise ConfigError(f"site.nodes: must be an integer >= 1 (got {self.nodes!r})")

    @property
    def world(self) -> tuple[WorldRank, ...]:
        """Every trainer rank on every node, global rank ``node * ranks_per_node + local``."""
        per_node = len(self.trainer_ranks)
        return tuple(
            WorldRank(node * per_node + r.rank, node, r.rank, r.cores, r.gpu)
            for node in range(self.nodes)
            for r in self.trainer_ranks
        )

    @property
    def world_size(self) -> int:
        """Trainer ranks over all nodes."""
        return self.nodes * len(self.trainer_ranks)

    @property
    def total_sim_cores(self) -> int:
        """Simulator cores over all nodes."""
        return self.nodes * len(self.sim_cores)

    @property
    def trainer_cores(self) -> tuple[int, ...]:
        return tuple(c for r in self.trainer_ranks for c in r.cores)

    @property
    def gpus(self) -> tuple[int, ...]:
        return tuple(r.gpu for r in self.trainer_ranks if r.gpu is not None)

    def to_json(self) -> dict:
        """``{"site", "sim_cores", "trainer_ranks", "nodes", "world"}``.

        ``sim_cores`` and ``trainer_ranks: [{"rank", "cores", "gpu"}]`` are one node's split;
        ``world: [{"rank", "node", "local_rank", "cores", "gpu"}]`` lists every node's ranks.
        """
        return {
            "site": self.site,
            "sim_cores": list(self.sim_cores),
            "trainer_ranks": [r.to_json() for r in self.trainer_ranks],
            "nodes": self.nodes,
            "world": [w.to_json() for w in self.world],
        }

    @classmethod
    def from_json(cls, data: dict) -> NodePlan:
        """Reads :meth:`to_json`; JSON written before multi-node plans means one node."""
        ranks = tuple(RankPlacement.from_json(r) for r in data["trainer_ranks"])
        return cls(data["site"], tuple(data["sim_cores"]), ranks, int(data.get("nodes", 1)))

    @classmethod
    def build(
        cls,
        topology: Topology,
        *,
        site: str = "local",
        trainer_ranks: int | None = None,
        cores_per_rank: int | None = None,
        sim_workers: int | None = None,
        nodes: int = 1,
    ) -> NodePlan:
        """Place trainer ranks NUMA-locally to their GPUs and give the rest to simulation.

        The split is made for one node and repeated on each of ``nodes`` nodes.

        ``cores_per_rank=None`` means 2, or fewer on a node too small to leave a simulator
        core otherwise (1 rank on a 2-core laptop gets 1 core).

        Raises:
            ConfigError: The node cannot host the ranks, no core is left to simulate, or
                ``nodes`` < 1.
        """
        n_ranks = trainer_ranks or max(len(topology.gpus), 1)
        if cores_per_rank is None:
            cores_per_rank = max(
                1, min(DEFAULT_CORES_PER_RANK, (len(topology.cores) - 1) // n_ranks)
            )
        free = {d: list(cores) for d, cores in enumerate(topology.numa_domains)}
        if topology.gpus:
            if n_ranks > len(topology.gpus):
                raise ConfigError(
                    f"site.trainer_ranks: {n_ranks} ranks but the node has "
                    f"{len(topology.gpus)} GPUs; allowed: 1..{len(topology.gpus)}"
                )
            gpus = sorted(topology.gpus, key=lambda g: (g.numa, g.index))[:n_ranks]
            placement = [(g.numa, g.index) for g in gpus]
        else:
            n_domains = len(topology.numa_domains)
            placement = [(k % n_domains, None) for k in range(n_ranks)]
        ranks = []
        for k, (domain, gpu) in enumerate(placement):
            if len(free[domain]) < cores_per_rank:
                raise ConfigError(
                    f"site.cores_per_rank: rank {k} needs {cores_per_rank} cores in NUMA domain "
                    f"{domain}, only {len(free[domain])} left "
                    f"(node has {len(topology.cores)} usable cores)"
                )
            cores, free[domain] = free[domain][:cores_per_rank], free[domain][cores_per_rank:]
            ranks.append(RankPlacement(k, tuple(cores), gpu))
        sim = sorted(c for cores in free.values() for c in cores)
        if not sim:
            raise ConfigError(
                f"site.cores_per_rank: {n_ranks} rank(s) x {cores_per_rank} cores leave no core "
                f"for the simulator pool on a node with {len(topology.cores)} usable cores; "
                "lower site.cores_per_rank or site.trainer_ranks"
            )
        if sim_workers is not None:
            if sim_workers > len(sim):
                raise ConfigError(
                    f"site.sim_workers: {sim_workers} workers but only {len(sim)} simulator "
                    f"cores are free; allowed: 1..{len(sim)}"
                )
            sim = sim[:sim_workers]
        return cls(site, tuple(sim), tuple(ranks), nodes)


def plan_for(site_cfg: SiteConfig) -> NodePlan:
    """The NodePlan of a :class:`~streamal.config.SiteConfig` on ``site_cfg.nodes`` nodes.

    Raises:
        ConfigError: The node cannot host the requested ranks and workers.
        PluginError: ``site_cfg.name`` is not an installed site.
    """
    from streamal.cluster import sites

    return NodePlan.build(
        sites.get(site_cfg.name).topology(),
        site=site_cfg.name,
        trainer_ranks=site_cfg.trainer_ranks,
        cores_per_rank=site_cfg.cores_per_rank,
        sim_workers=site_cfg.sim_workers,
        nodes=site_cfg.nodes,
    )


def cpu_ranges(cores: tuple[int, ...] | list[int]) -> str:
    """``(2, 3, 4, 5, 10, 11, 12)`` → ``"2-5,10-12"``; ``"-"`` when empty."""
    parts: list[str] = []
    ordered = sorted(cores)
    start = prev = None
    for c in ordered + [None]:
        if start is not None and (c is None or c != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if c is not None and start is None:
            start = c
        prev = c
    return ",".join(parts) or "-"


def describe(plan: NodePlan) -> str:
    """Human-readable lines for ``streamal plan``: each node's pools and the global rank table."""
    per_node = len(plan.trainer_ranks)
    lines = [
        f"site {plan.site}: {plan.nodes} node(s), each {len(plan.sim_cores)} simulator cores "
        f"+ {per_node} trainer rank(s); in all {plan.total_sim_cores} simulator cores, "
        f"{plan.world_size} trainer ranks",
        "simulator cores per node:",
    ]
    sim = cpu_ranges(plan.sim_cores)
    lines += [f"  node {n}: {sim} ({len(plan.sim_cores)})" for n in range(plan.nodes)]
    lines.append("trainer ranks on each node:")
    for r in plan.trainer_ranks:
        gpu = f"GPU {r.gpu}" if r.gpu is not None else "no GPU"
        lines.append(f"  trainer rank {r.rank}: cores {list(r.cores)}, {gpu}")
    lines.append("global ranks (rank = node * ranks per node + local rank):")
    header = ("rank", "node", "local", "cores", "GPU")
    rows = [
        (str(w.rank), str(w.node), str(w.local_rank), cpu_ranges(w.cores), _gpu(w.gpu))
        for w in plan.world
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  " + "  ".join(cells))
    return "\n".join(lines)


def _gpu(gpu: int | None) -> str:
    return "-" if gpu is None else str(gpu)
