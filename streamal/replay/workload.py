"""What a replay runs: a campaign's sizes (:class:`Workload`) on nodes (:class:`Resources`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from streamal.errors import ConfigError

WORKFLOWS = ("baseline", "serial", "streaming", "continuous")


@dataclass(frozen=True)
class Phase:
    """Phase k: ``samples`` simulated for training (phase 0: all classes), ``epochs`` trained."""

    samples: int
    epochs: int


@dataclass(frozen=True)
class Workload:
    """A campaign's task sizes, as the workflows derive them from a config.

    Attributes:
        workflow: ``baseline``, ``serial``, ``streaming`` or ``continuous``.
        phases: Phase 0's uniform training set (``samples`` over all classes) and each AL batch.
        val / test / study: Sizes of the validation, test and study sets (study 0: no AL task).
        split_fraction: Streaming: part of each AL batch simulated before ``T_k``, or ``"auto"``.
        min_fraction: Lower bound of the automatic split.
        chunk_size: Samples per simulation task; ``None``: each batch is one task over the
            whole simulator pool (the paper's MPI task).
        min_new_samples: Continuous: new samples a retraining waits for (default: a chunk).
        chunks_in_flight: Continuous: chunks queued (default: two per simulator worker).
        min_epochs: Continuous: the fewest epochs of a training.
        recorded_splits: Streaming: ``(phase, fraction)`` a run already chose (``al/split-k.json``);
            they win over ``split_fraction``, as on a resumed run.
    """

    workflow: str
    phases: tuple[Phase, ...]
    val: int
    test: int
    study: int
    split_fraction: float | str = 0.5
    min_fraction: float = 0.1
    chunk_size: int | None = None
    min_new_samples: int | None = None
    chunks_in_flight: int | None = None
    min_epochs: int = 1
    recorded_splits: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        if self.workflow not in WORKFLOWS:
            raise ConfigError(
                f"workflow: {self.workflow!r} cannot be replayed; use one of {', '.join(WORKFLOWS)}"
            )
        if not self.phases:
            raise ConfigError("workload.phases: needs at least one phase")
        f = self.split_fraction
        if f != "auto" and not (isinstance(f, int | float) and 0 < f <= 1):
            raise ConfigError(f"split: must be 'auto' or a fraction in (0, 1] (got {f!r})")
        if self.workflow == "continuous" and not self.chunk_size:
            raise ConfigError("workload.chunk_size: the continuous workflow needs a chunk size")

    @property
    def train0(self) -> int:
        return self.phases[0].samples

    def with_(self, **changes: Any) -> Workload:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workload:
        try:
            phases = tuple(Phase(int(p["samples"]), int(p["epochs"])) for p in data["phases"])
            splits = tuple((int(k), float(f)) for k, f in data.get("recorded_splits", ()))
            return cls(**{**data, "phases": phases, "recorded_splits": splits})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"workload: {exc} (keys: workflow, phases, val, test, study)"
            ) from None


@dataclass(frozen=True)
class Resources:
    """Nodes and how each is split (as a :class:`~streamal.cluster.plan.NodePlan`).

    Attributes:
        nodes: Nodes of the allocation; the simulator pool has ``sim_workers`` on each.
        sim_workers: Simulator workers per node.
        cores_per_sim_worker: Cores of each simulator worker (an MPI chunk's ranks).
        ranks_per_node: Trainer ranks (GPUs) per node.
        train_all_nodes: One training spans every node (the MPI launcher); else node 0's ranks.
    """

    nodes: int = 1
    sim_workers: int = 1
    cores_per_sim_worker: int = 1
    ranks_per_node: int = 1
    train_all_nodes: bool = True

    def __post_init__(self) -> None:
        for name in ("nodes", "sim_workers", "cores_per_sim_worker", "ranks_per_node"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1 (got {value!r})")

    @property
    def total_sim_workers(self) -> int:
        return self.nodes * self.sim_workers

    @property
    def sim_cores(self) -> int:
        return self.total_sim_workers * self.cores_per_sim_worker

    @property
    def train_nodes(self) -> int:
        """Nodes one training spans."""
        return self.nodes if self.train_all_nodes else 1

    @property
    def ranks(self) -> int:
        """Ranks of one training."""
        return self.ranks_per_node * self.train_nodes

    def on_nodes(self, nodes: int) -> Resources:
        """The same split of each node, on ``nodes`` nodes."""
        return replace(self, nodes=nodes)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resources:
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"resources: {exc}") from None
