"""What a training task needs, as plain data that crosses process boundaries (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.cluster.plan import RankPlacement


@dataclass(frozen=True)
class TrainSpec:
    """Everything a DDP training task reads.

    Attributes:
        store: Path of the HDF5 sample store.
        train_rows / val_rows / test_rows: Store rows of each split (committed before the task).
        model: Model plugin name; ``model_options`` its options.
        space: ``{"param_names": [...], "classes": [{name, bounds, tied, min_separation}]}``.
        out_dir: Where ``best.pt``, ``last.pt``, ``history.json`` and rank reports go.
        warm_start: A previous phase's ``best.pt`` to start from (weights only).
        ranks: Placement of every rank (world size = ``len(ranks)``).
        backend: ``gloo``, ``nccl`` or ``auto`` (NCCL when every rank has a GPU).
        cancel_path: A file whose existence asks the ranks to stop after the current epoch.
        checkpoint_interval_s: Write ``last.pt``/``best.pt``/history at most this often
            (0: every epoch); always after the last epoch and when stopped early. A killed
            task loses at most this much training.
        master_addr: The address the ranks meet on: loopback on one node; the high-speed
            interface's address when the ranks span nodes. The rendezvous store listens on
            this address only, gloo's and NCCL's sockets on the interface that holds it;
            nothing listens on all interfaces.
        metadata: What ``model.json`` records beside the spec's own fields (see
            :func:`streamal.train.checkpoint.model_description`): ``run`` (name, config
            fingerprint), ``simulator`` (name and options, or ``None``) and ``input_axis``
            (the simulator's :meth:`~streamal.simulation.simulator.Simulator.input_axis`, or
            ``None``). Plain JSON.
    """

    store: str
    train_rows: list[int]
    val_rows: list[int]
    test_rows: list[int]
    model: str
    model_options: dict[str, Any]
    space: dict[str, Any]
    input_shape: tuple[int, ...]
    out_dir: str
    epochs: int
    ranks: tuple[RankPlacement, ...]
    batch_size: int = 512
    learning_rate: float = 5e-4
    grad_clip: float = 50.0
    seed: int = 0
    backend: str = "auto"
    warm_start: str | None = None
    cancel_path: str | None = None
    checkpoint_interval_s: float = 0.0
    stage: str = ""
    master_addr: str = "127.0.0.1"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        return len(self.ranks)

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        return "nccl" if all(r.gpu is not None for r in self.ranks) else "gloo"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainSpec:
        data = json.loads(text)
        data["ranks"] = tuple(RankPlacement.from_json(r) for r in data["ranks"])
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**data)

    def write(self, path: str | Path) -> Path:
        """Write the spec as JSON to ``path``, atomically."""
        return durable.write_text(path, self.to_json())


def scheduled_epochs(
    n_total: int, sizes: Sequence[int], epochs: Sequence[int], minimum: int = 1
) -> int:
    """Epochs of a training on ``n_total`` samples under a phase schedule: phase k trains
    ``epochs[k]`` epochs on ``sizes[k]`` samples; linear in between, held beyond the ends."""
    if len(sizes) != len(epochs) or not len(sizes):
        raise ValueError("sizes and epochs need the same, non-zero length")
    import numpy as np  # here, not at import: a DDP rank reads its spec before it pins itself

    return max(minimum, round(float(np.interp(n_total, sizes, epochs))))
