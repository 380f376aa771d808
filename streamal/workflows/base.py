"""The workflow interface and the services every workflow shares (simulate, train, record)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from streamal.cluster.plan import NodePlan
from streamal.config import RunConfig
from streamal.data.space import ParameterSpace
from streamal.data.store import SampleStore
from streamal.errors import ConfigError
from streamal.runtime.pools import TRAIN_POOL
from streamal.runtime.scheduler import Scheduler
from streamal.simulation.batches import SimulationReport, simulate_batch
from streamal.train.metrics import MetricsLog
from streamal.train.spec import RankSpec, TrainSpec

SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "study": 3}


@dataclass
class RunContext:
    """What a workflow runs with."""

    config: RunConfig
    run_dir: Path
    plan: NodePlan
    scheduler: Scheduler
    store: SampleStore | None  # None when the config names no simulator
    space: ParameterSpace | None
    input_shape: tuple[int, ...]
    metrics: MetricsLog


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitOptions(BaseModel):
    """Sizes of the validation and test sets relative to phase 0's training set."""

    model_config = ConfigDict(extra="forbid")
    val_fraction: float = Field(0.5, gt=0, description="validation samples per training sample")
    test_fraction: float = Field(0.5, gt=0, description="test samples per training sample")


class Workflow(ABC):
    """A campaign's control flow. Subclasses implement :meth:`run` with the helpers below."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    needs_model: ClassVar[bool] = True
    needs_simulator: ClassVar[bool] = True
    train_worker_per_rank: ClassVar[bool] = False  # one train worker per rank (see executors)

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.options = self.Options.model_validate(ctx.config.workflow.options)
        if self.needs_model and ctx.config.model is None:
            raise ConfigError(f"model: required by the {self.name!r} workflow")
        if self.needs_simulator and ctx.config.simulator is None:
            raise ConfigError(f"simulator: required by the {self.name!r} workflow")

    @abstractmethod
    async def run(self) -> None:
        """Run the whole campaign (resumable: skip what the store and metrics already hold)."""

    # -- helpers ------------------------------------------------------------------------------
    def rng(self, *stream: int) -> np.random.Generator:
        """A generator that depends only on the seed and ``stream`` (same draws on resume)."""
        return np.random.default_rng([self.ctx.config.seed, *stream])

    async def simulate(
        self,
        key: str,
        classes: np.ndarray,
        params: np.ndarray,
        *,
        phase: int,
        split: str,
        origin: str,
        task_phase: str,
    ) -> SimulationReport:
        cfg = self.ctx.config.simulator
        return await simulate_batch(
            self.ctx.scheduler,
            self.ctx.store,
            simulator=cfg.name,
            options=cfg.options,
            key=key,
            classes=classes,
            params=params,
            phase=phase,
            split=split,
            origin=origin,
            chunk_size=cfg.chunk_size,
            task_phase=task_phase,
            mpi_ranks=cfg.mpi_ranks,
        )

    def uniform_sets(self, n_per_class: int, options: SplitOptions) -> list:
        """Coroutines simulating phase 0's uniform train, validation and test sets (``S0``)."""
        from streamal.policy.uniform import UniformPolicy

        sizes = {
            "train": n_per_class,
            "val": max(1, round(n_per_class * options.val_fraction)),
            "test": max(1, round(n_per_class * options.test_fraction)),
        }
        uniform = UniformPolicy(self.ctx.space)
        jobs = []
        for split, size in sizes.items():
            classes, params = uniform.sample(size, self.rng(0, SPLIT_CODES[split]))
            jobs.append(
                self.simulate(
                    f"p0/{split}",
                    classes,
                    params,
                    phase=0,
                    split=split,
                    origin=uniform.name,
                    task_phase="S0",
                )
            )
        return jobs

    def rows(self, split: str, max_phase: int | None = None) -> list[int]:
        return self.ctx.store.select(split=split, max_phase=max_phase).indices.tolist()

    async def train(
        self,
        task_phase: str,
        *,
        epochs: int,
        max_phase: int | None,
        warm_start: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Train on every training sample up to ``max_phase``; record the phase's metrics.

        A phase whose metrics are already recorded (a resumed run) is not trained again.
        """
        done = self.ctx.metrics.get(task_phase)
        if done is not None:
            return done
        cfg = self.ctx.config
        train_rows = self.rows("train", max_phase)
        out_dir = self.ctx.run_dir / "checkpoints" / task_phase
        spec = TrainSpec(
            store=str(self.ctx.store.path),
            train_rows=train_rows,
            val_rows=self.rows("val"),
            test_rows=self.rows("test"),
            model=cfg.model.name,
            model_options=cfg.model.options,
            space=self.ctx.space.to_dict(),
            input_shape=self.ctx.input_shape,
            out_dir=str(out_dir),
            epochs=epochs,
            ranks=tuple(RankSpec(r.rank, r.cores, r.gpu) for r in self.ctx.plan.trainer_ranks),
            batch_size=cfg.train.batch_size,
            learning_rate=cfg.train.learning_rate,
            grad_clip=cfg.train.grad_clip,
            seed=cfg.seed,
            backend=cfg.train.backend,
            warm_start=warm_start,
            cancel_path=str(out_dir / "STOP"),
            checkpoint_interval_s=cfg.train.checkpoint_interval_s,
            phase=task_phase,
        )
        from streamal.train.ddp import train

        t0 = time.time()
        result = await self.ctx.scheduler.submit(
            TRAIN_POOL,
            train,
            spec,
            phase=task_phase,
            name=task_phase,
            info={"samples": len(train_rows), "epochs": epochs, **(info or {})},
        )
        scored = [h for h in result["history"] if h.get("val_score") == h.get("val_score")]
        best = min(scored, key=lambda h: h["val_score"], default={})
        entry = {
            "phase": task_phase,
            "n_train": len(train_rows),
            "epochs": epochs,
            "wall_s": time.time() - t0,
            "best_checkpoint": result["best_checkpoint"],
            "val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
            "test": result["test"] or {},
            "epoch_s_mean": float(np.mean([h["epoch_s"] for h in result["history"]]))
            if result["history"]
            else None,
            **(info or {}),
        }
        self.ctx.metrics.put(entry)
        return entry
