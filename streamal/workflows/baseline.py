"""Baseline: one bulk uniform simulation of train/val/test, then one training."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from streamal.errors import ConfigError
from streamal.policy.uniform import UniformPolicy
from streamal.workflows.base import SPLIT_CODES, Workflow


class BaselineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    val_fraction: float = Field(0.5, gt=0, description="validation samples per training sample")
    test_fraction: float = Field(0.5, gt=0, description="test samples per training sample")


class BaselineWorkflow(Workflow):
    """``phases[0].samples`` uniform training samples per class, validation and test sets of
    ``val_fraction``/``test_fraction`` times that size, simulated at once; then ``T0``."""

    name = "baseline"
    Options = BaselineOptions

    async def run(self) -> None:
        phases = self.ctx.config.workflow.phases
        if len(phases) != 1:
            raise ConfigError(
                f"workflow.phases: the baseline workflow has one phase, got {len(phases)}"
            )
        n = phases[0].samples
        sizes = {
            "train": n,
            "val": max(1, round(n * self.options.val_fraction)),
            "test": max(1, round(n * self.options.test_fraction)),
        }
        policy = UniformPolicy(self.ctx.space)
        jobs = []
        for split, size in sizes.items():
            classes, params = policy.sample(size, self.rng(0, SPLIT_CODES[split]))
            jobs.append(
                self.simulate(
                    f"p0/{split}",
                    classes,
                    params,
                    phase=0,
                    split=split,
                    origin=policy.name,
                    task_phase="S0",
                )
            )
        await asyncio.gather(*jobs)
        await self.train("T0", epochs=phases[0].epochs, max_phase=0)
