"""Baseline: one bulk uniform simulation of train/val/test, then one training."""

from __future__ import annotations

import asyncio

from streamal.errors import ConfigError
from streamal.workflows.base import SplitOptions, Workflow


class BaselineWorkflow(Workflow):
    """``phases[0].samples`` uniform training samples per class, validation and test sets of
    ``val_fraction``/``test_fraction`` times that size, simulated at once; then ``T0``."""

    name = "baseline"
    Options = SplitOptions

    async def run(self) -> None:
        phases = self.ctx.config.workflow.phases
        if len(phases) != 1:
            raise ConfigError(
                f"workflow.phases: the baseline workflow has one phase, got {len(phases)}"
            )
        await asyncio.gather(*self.uniform_sets(phases[0].samples, self.options))
        await self.trainer.train("T0", epochs=phases[0].epochs, max_phase=0)
