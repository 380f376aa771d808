"""The training service every workflow uses: one DDP training task per call, recorded once.

A workflow asks for a training by its stage name (``T0``, ``T1``, …); the service builds the
:class:`~streamal.train.spec.TrainSpec`, runs it on the ``train`` pool and keeps its metrics in
``metrics.json``. A stage whose metrics are already recorded (a resumed run) is not trained
again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamal.cluster.parsl_config import mpi_train_resources, train_launcher
from streamal.cluster.plan import RankPlacement
from streamal.runtime.pools import TRAIN_POOL
from streamal.train.metrics import MetricsLog
from streamal.train.spec import TrainSpec

if TYPE_CHECKING:
    from streamal.cluster.plan import NodePlan
    from streamal.config import RunConfig
    from streamal.data.space import ParameterSpace
    from streamal.data.store import SampleStore
    from streamal.runtime.scheduler import Scheduler


def _to_list(value: Any) -> Any:
    """``json.dumps``'s fallback: numpy arrays and scalars as lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


class TrainingService:
    """Trains the configured model on rows of the store, on the trainer ranks of a plan.

    Args:
        config: The run's configuration (``model``, ``train``, ``seed``).
        scheduler: Runs the training task on the ``train`` pool.
        store: The sample store the ranks read.
        space: The run's parameter space.
        input_shape: Shape of one stored input.
        plan: Where the ranks go.
        metrics: Where each stage's metrics are kept.
        checkpoints: Folder of one subfolder of checkpoints per stage.
    """

    def __init__(
        self,
        config: RunConfig,
        scheduler: Scheduler,
        store: SampleStore,
        space: ParameterSpace,
        input_shape: tuple[int, ...],
        plan: NodePlan,
        metrics: MetricsLog,
        checkpoints: Path,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.store = store
        self.space = space
        self.input_shape = input_shape
        self.plan = plan
        self.metrics = metrics
        self.checkpoints = checkpoints
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        """What every stage's ``model.json`` records about the run beside its spec: ``run``
        (name, config fingerprint), ``simulator`` (name, options) and ``input_axis`` (the
        simulator's :meth:`~streamal.simulation.simulator.Simulator.input_axis`). Built once;
        a simulator that cannot be built here, or whose ``input_axis`` fails, gives no axis
        (``input_axis_error`` says why) and the training goes on."""
        if self._metadata is not None:
            return self._metadata
        cfg = self.config
        meta: dict[str, Any] = {
            "run": {"name": cfg.name, "fingerprint": cfg.fingerprint()},
            "simulator": None,
            "input_axis": None,
        }
        if cfg.simulator is not None:
            meta["simulator"] = {"name": cfg.simulator.name, "options": dict(cfg.simulator.options)}
            try:
                from streamal import plugins

                simulator = plugins.load("simulators", cfg.simulator.name)(**cfg.simulator.options)
                axis = getattr(simulator, "input_axis", None)
                described = axis() if callable(axis) else None
                # plain JSON (numpy arrays and scalars as lists and numbers): it goes in the spec
                meta["input_axis"] = json.loads(json.dumps(described, default=_to_list))
            except Exception as exc:  # a description must not stop the campaign
                meta["input_axis_error"] = f"{type(exc).__name__}: {exc}"[:500]
        self._metadata = meta
        return meta

    @property
    def launcher(self) -> str:
        """``local`` (this node's ranks, started by the task) or ``mpi`` (every node's ranks,
        started by the train pool's MPI launcher)."""
        return train_launcher(self.config.train.launcher, self.plan)

    def ranks(self) -> tuple[RankPlacement, ...]:
        """The ranks of a training: node 0's, or with the MPI launcher every node's."""
        if self.launcher == "mpi":
            return tuple(RankPlacement(w.rank, w.cores, w.gpu) for w in self.plan.world)
        return self.plan.trainer_ranks

    def resources(self) -> dict[str, Any] | None:
        """What the train pool is asked for: with the MPI launcher every node's ranks."""
        if self.launcher != "mpi":
            return None
        return mpi_train_resources(self.plan, self.config.site.name)

    def rows(self, split: str, max_phase: int | None = None) -> list[int]:
        """Store rows of ``split`` whose phase is at most ``max_phase``."""
        return self.store.select(split=split, max_phase=max_phase).indices.tolist()

    def stop_file(self, stage: str) -> Path:
        """The file that asks a training's ranks to stop after their current epoch."""
        return self.checkpoints / stage / "STOP"

    def spec(
        self, stage: str, *, epochs: int, train_rows: list[int], warm_start: str | None
    ) -> TrainSpec:
        """The spec of a training on ``train_rows`` (validated and tested on every row)."""
        cfg = self.config
        out_dir = self.checkpoints / stage
        return TrainSpec(
            store=str(self.store.path),
            train_rows=train_rows,
            val_rows=self.rows("val"),
            test_rows=self.rows("test"),
            model=cfg.model.name,
            model_options=cfg.model.options,
            space=self.space.to_dict(),
            input_shape=self.input_shape,
            out_dir=str(out_dir),
            epochs=epochs,
            ranks=self.ranks(),
            batch_size=cfg.train.batch_size,
            learning_rate=cfg.train.learning_rate,
            grad_clip=cfg.train.grad_clip,
            seed=cfg.seed,
            backend=cfg.train.backend,
            warm_start=warm_start,
            cancel_path=str(self.stop_file(stage)),
            checkpoint_interval_s=cfg.train.checkpoint_interval_s,
            stage=stage,
            metadata=self.metadata(),
        )

    async def train(
        self,
        stage: str,
        *,
        epochs: int,
        max_phase: int | None,
        warm_start: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Train on every training sample up to ``max_phase``; record the stage's metrics.

        Returns:
            The stage's ``metrics.json`` entry: ``phase`` (the stage name), ``n_train``,
            ``epochs``, ``wall_s``, ``best_checkpoint``, ``val``, ``test``, ``epoch_s_mean``
            and ``info``'s keys.
        """
        done = self.metrics.get(stage)
        if done is not None:
            return done
        from streamal.train.ddp import train

        train_rows = self.rows("train", max_phase)
        spec = self.spec(stage, epochs=epochs, train_rows=train_rows, warm_start=warm_start)
        t0 = time.time()
        result = await self.scheduler.submit(
            TRAIN_POOL,
            train,
            spec,
            stage=stage,
            name=stage,
            info={
                "samples": len(train_rows),
                "epochs": epochs,
                "launcher": self.launcher,
                "checkpoints": os.path.relpath(spec.out_dir, self.scheduler.run_dir),
                **(info or {}),
            },
            resources=self.resources(),
        )
        scored = [h for h in result["history"] if h.get("val_score") == h.get("val_score")]
        best = min(scored, key=lambda h: h["val_score"], default={})
        history = result["history"]
        entry = {
            "phase": stage,
            "n_train": len(train_rows),
            "epochs": epochs,
            "wall_s": time.time() - t0,
            "best_checkpoint": result["best_checkpoint"],
            "val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
            "test": result["test"] or {},
            "epoch_s_mean": float(np.mean([h["epoch_s"] for h in history])) if history else None,
            **(info or {}),
        }
        if "launcher" in result:  # the command an MPI launcher started the ranks with
            entry["launcher"] = result["launcher"]
        self.metrics.put(entry)
        return entry
