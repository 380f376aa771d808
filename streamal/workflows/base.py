"""The workflow interface and what every workflow shares: its context, simulating and training."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, Field

from streamal.cluster import sites
from streamal.cluster.plan import NodePlan
from streamal.config import RunConfig
from streamal.data.label import SPLITS, BatchLabel
from streamal.data.space import ParameterSpace
from streamal.data.store import SampleStore
from streamal.errors import ConfigError
from streamal.plugins import PluginOptions
from streamal.runtime.scheduler import Scheduler
from streamal.simulation.batches import SimulationReport, simulate_batch
from streamal.train.metrics import MetricsLog
from streamal.train.service import TrainingService


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


class SplitOptions(PluginOptions):
    """Sizes of the validation and test sets relative to phase 0's training set."""

    val_fraction: float = Field(0.5, gt=0, description="validation samples per training sample")
    test_fraction: float = Field(0.5, gt=0, description="test samples per training sample")


def split_sizes(n_per_class: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Phase 0's uniform samples per class of each split: ``n_per_class`` training samples and
    validation and test sets of that times their fractions (at least one each)."""
    return {
        "train": n_per_class,
        "val": max(1, round(n_per_class * val_fraction)),
        "test": max(1, round(n_per_class * test_fraction)),
    }


class Workflow(ABC):
    """A campaign's control flow. Subclasses implement :meth:`run` with the helpers below."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = PluginOptions
    needs_model: ClassVar[bool] = True
    needs_simulator: ClassVar[bool] = True
    train_worker_per_rank: ClassVar[bool] = False  # one train worker per rank (see executors)
    #: Each training is one DDP job over the trainer ranks (on several nodes: of every node,
    #: through the site's MPI launcher); ``False``: the workflow's trainings are small
    #: single-worker tasks (architecture search).
    ddp_trainings: ClassVar[bool] = True

    @classmethod
    def model_per_rank(cls, options: dict[str, Any]) -> bool:
        """Whether the ``train`` pool gets one worker per trainer rank of every node (a
        workflow that trains many small models at once) rather than one per node (DDP
        trainings); ``options``: the run's ``workflow.options``, already validated."""
        return cls.train_worker_per_rank

    @classmethod
    def stored_samples(cls, options: dict[str, Any], n_classes: int) -> tuple[int, int, int] | None:
        """``(train, validation + test, study)`` samples a run stores, for ``streamal
        validate``'s footprint; ``None``: the core's estimate from ``phases`` (see
        :mod:`streamal.footprint`). ``options``: the run's ``workflow.options``."""
        return None

    @classmethod
    def report(cls, run_dir: Path, out: Path) -> list[Path]:
        """Figures and tables only this workflow makes, from the run directory alone.

        Called by ``streamal report`` (and at the end of a run) after the common report.

        Args:
            run_dir: The run directory.
            out: The report folder (``run_dir / "report"``), already made.

        Returns:
            The files written.
        """
        return []

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.options = self.Options.model_validate(ctx.config.workflow.options)
        if self.needs_model and ctx.config.model is None:
            raise ConfigError(f"model: required by the {self.name!r} workflow")
        if self.needs_simulator and ctx.config.simulator is None:
            raise ConfigError(f"simulator: required by the {self.name!r} workflow")
        # the site's MPI launcher, handed to simulators that start MPI programs
        self.mpi_launcher = sites.get(ctx.config.site.name).mpi_launcher
        self.trainer = TrainingService(
            ctx.config,
            ctx.scheduler,
            ctx.store,
            ctx.space,
            ctx.input_shape,
            ctx.plan,
            ctx.metrics,
            ctx.run_dir / "checkpoints",
        )

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
        label: BatchLabel,
        *,
        stage: str,
    ) -> SimulationReport:
        """Simulate ``params`` on the sim pool in chunks; store each chunk under ``label``."""
        cfg = self.ctx.config.simulator
        return await simulate_batch(
            self.ctx.scheduler,
            self.ctx.store,
            simulator=cfg.name,
            options=cfg.options,
            key=key,
            classes=classes,
            params=params,
            label=label,
            chunk_size=cfg.chunk_size,
            stage=stage,
            mpi_ranks=cfg.mpi_ranks,
            mpi_launcher=self.mpi_launcher,
        )

    def uniform_sets(
        self, n_per_class: int, options: SplitOptions, *, interleave: bool = False
    ) -> list:
        """Coroutines simulating phase 0's uniform train, validation and test sets (``S0``),
        in that order.

        ``interleave``: each set's draws alternate between the classes (one of each class,
        then the next of each) instead of coming class after class, so that its first
        chunks hold every class evenly (for training that starts on the first chunks).
        """
        from streamal.policy.uniform import UniformPolicy

        sizes = split_sizes(n_per_class, options.val_fraction, options.test_fraction)
        uniform = UniformPolicy(self.ctx.space)
        jobs = []
        for split, size in sizes.items():
            classes, params = uniform.sample(size, self.rng(0, SPLITS.index(split)))
            if interleave:
                order = np.arange(len(classes)).reshape(-1, size).T.ravel()
                classes, params = classes[order], params[order]
            label = BatchLabel(0, split, uniform.name)
            jobs.append(self.simulate(f"p0/{split}", classes, params, label, stage="S0"))
        return jobs
