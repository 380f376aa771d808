"""Streaming workflow (paper Fig. 3): simulation overlaps training in parallel groups.

Phase 0 simulates train/val/test (S0); the study set (S'0) is simulated while T0 trains. In
phase k ≥ 1 the AL batch is split: a part is simulated before T_k (S_k) and the rest (S'_k)
while T_k trains, joining the training data of phase k+1. The last phase simulates its whole
batch before training.

The split is ``split_fraction`` (the paper: ½), or ``"auto"``: chosen from the measured
simulation rate and training cost so that S'_k ends when T_k ends — the balance the paper
names as its open gap ("unbalanced parallel groups").
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, Field

from streamal import durable
from streamal.runtime.timeline import TaskRecord
from streamal.workflows.active import ActiveLearningWorkflow, ActiveOptions


def _fraction_or_auto(value: float | str) -> float | str:
    """0 < f <= 1: at f <= 0 no new sample precedes T_k (it retrains on old data); f = 1
    simulates the whole batch first (no overlap, as the last phase does); above 1 is a typo."""
    if value != "auto" and not 0 < value <= 1:
        raise ValueError(f"must be > 0 and <= 1, or 'auto' (got {value!r})")
    return value


class StreamingOptions(ActiveOptions):
    split_fraction: Annotated[float | Literal["auto"], AfterValidator(_fraction_or_auto)] = Field(
        0.5, description="part of each AL batch simulated before training (0 < f <= 1), or 'auto'"
    )
    min_fraction: float = Field(0.1, gt=0, le=1, description="lower bound of the auto split")


def balanced_fraction(
    n: int, n_train: int, sim_rate: float, train_cost: float, epochs: int, lower: float
) -> float:
    """Fraction f of an AL batch of ``n`` to simulate before training so that the remaining
    (1−f)·n samples take as long to simulate as training on n_train + f·n samples::

        (1 − f)·n / sim_rate = train_cost · epochs · (n_train + f·n)

    ``sim_rate``: samples/s of the sim pool; ``train_cost``: seconds per sample-epoch.
    """
    a = sim_rate * train_cost * epochs
    f = (n - a * n_train) / (n * (1 + a))
    return float(np.clip(f, lower, 1.0))


def measured_rates(
    records: list[TaskRecord], sim_stage: str, train_entry: dict
) -> tuple[float, float]:
    """Simulation rate (samples/s over the span of ``sim_stage``) and training cost
    (s per sample-epoch of the last training)."""
    sims = [r for r in records if r.stage == sim_stage and r.status == "done" and r.started]
    span = max(r.ended for r in sims) - min(r.started for r in sims) if sims else 0.0
    rate = sum(r.info.get("samples", 0) for r in sims) / span if span > 0 else float("inf")
    cost = train_entry["wall_s"] / max(1, train_entry["n_train"] * train_entry["epochs"])
    return rate, cost


class StreamingWorkflow(ActiveLearningWorkflow):
    name = "streaming"
    Options = StreamingOptions

    def split_for(self, k: int, n: int, previous: dict, sim_stage: str) -> float:
        """The fraction simulated before T_k; saved so a resumed run splits the same way."""
        path = self.al_dir / f"split-{k}.json"
        saved = durable.read_json(path, default=None)
        if isinstance(saved, dict) and "fraction" in saved:
            return float(saved["fraction"])
        if k == len(self.phases) - 1:
            f = 1.0
        elif self.options.split_fraction == "auto":
            rate, cost = measured_rates(self.ctx.scheduler.timeline.records, sim_stage, previous)
            f = balanced_fraction(
                n,
                len(self.trainer.rows("train", k)),
                rate,
                cost,
                self.phases[k].epochs,
                self.options.min_fraction,
            )
        else:
            f = float(self.options.split_fraction)
        durable.write_json(path, {"fraction": f})
        return f

    async def run(self) -> None:
        await self.gather(self.phase0_jobs(study=False))
        study = asyncio.ensure_future(self.study_job("S'0"))
        result = await self.trainer.train("T0", epochs=self.phases[0].epochs, max_phase=0)
        await study
        sim_stage = "S0"
        for k in range(1, len(self.phases)):
            n = self.phases[k].samples
            batch = await self.al_batch(k, n, result["best_checkpoint"])
            f = self.split_for(k, n, result, sim_stage)
            cut = round(f * len(batch["classes"]))
            await self.simulate_al(f"p{k}/train", batch, slice(0, cut), phase=k, stage=f"S{k}")
            sim_stage = f"S{k}"
            later = None
            if cut < len(batch["classes"]):
                later = asyncio.ensure_future(
                    self.simulate_al(
                        f"p{k}/stream", batch, slice(cut, None), phase=k + 1, stage=f"S'{k}"
                    )
                )
            result = await self.trainer.train(
                f"T{k}",
                epochs=self.phases[k].epochs,
                max_phase=k,
                warm_start=result["best_checkpoint"],
                info={"split_fraction": f},
            )
            if later is not None:
                await later
