"""Driver side of one candidate's evaluation: similarity check, training, the candidate row.

:class:`CandidateEvaluator` submits the similarity check (:func:`~.similarity.similarity_decision`,
``sim`` pool) and the training (:func:`~.evaluate.train_candidate`, ``train`` pool) of one
candidate and collects what they return into the candidate's row (the columns of
:data:`~.outputs.COLUMNS`, plus ``curve``). A candidate similar to a trained one under
``similarity.mode: skip`` is not trained and inherits the provider's fitness.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from streamal.runtime.pools import SIM_POOL, TRAIN_POOL
from streamal.runtime.scheduler import Scheduler

from .datasets import DataSpec
from .evaluate import train_candidate
from .genome import genome_to_dict
from .objectives import candidate_cost, model_cost
from .options import NasOptions
from .prediction.supervisor import EngineSupervisor
from .search_state import SessionFence
from .similarity import similarity_decision
from .strategies import Candidate

__all__ = ["CandidateEvaluator"]

Trained = dict[str, dict[str, Any]]
"""``{candidate id: {genome, fitness, checkpoint, cost, energy_j}}`` of trained candidates."""


class CandidateEvaluator:
    """Evaluates candidates of one search on the run's pools.

    Args:
        options: The workflow's options.
        scheduler: The run's scheduler.
        seed: The run's seed (candidate and data seeds derive from it).
        max_epochs: The most epochs a candidate trains.
        records_path: The shared training-records file.
        decisions_dir: The engine's decision files (``None``: no prediction engine).
        prediction: The engine's :func:`~.prediction.prediction_config` values, or ``None``.
        ckpt_dir: Where each candidate's checkpoint goes (``<id>.pt``).
        engine: The engine's supervisor (the similarity check holds a sim slot through it).
        use_gpu: Train on the worker's GPU.
        fence: The driver session's fence, checked by the tasks before they write.
        data: What candidates train on (default: digits with the run's seed).
    """

    def __init__(
        self,
        options: NasOptions,
        scheduler: Scheduler,
        *,
        seed: int,
        max_epochs: float,
        records_path: Path,
        decisions_dir: Path | None,
        prediction: dict[str, Any] | None,
        ckpt_dir: Path,
        engine: EngineSupervisor | None,
        use_gpu: bool,
        fence: SessionFence,
        data: DataSpec | None = None,
    ) -> None:
        self.options = options
        self.scheduler = scheduler
        self.seed = seed
        self.max_epochs = max_epochs
        self.records_path = records_path
        self.decisions_dir = decisions_dir
        self.prediction = prediction
        self.ckpt_dir = ckpt_dir
        self.engine = engine
        self.use_gpu = use_gpu
        self.fence = fence
        self.data = data if data is not None else DataSpec("digits", seed=seed)

    async def evaluate(self, c: Candidate, trained: Trained) -> dict[str, Any]:
        """Similarity check, then training; ``trained``: the candidates told before ``c``."""
        o = self.options
        t0 = time.time()
        row: dict[str, Any] = {
            "id": c.id,
            "genome": c.genome.key(),
            "parent": c.parent_id,
            "generation": c.generation,
            "similar_to": None,
            "distance": None,
            "transfer_provider": None,
            "tensors_transferred": 0,
            "similarity_s": 0.0,
        }
        provider = None
        parent_trained = c.parent_id in trained
        if o.transfer.enabled and parent_trained:
            provider = c.parent_id
        need_provider = o.transfer.enabled and provider is None
        if (o.similarity.enabled or need_provider) and trained:
            decision = await self._similarity(c, trained, need_provider)
            row["similarity_s"] = decision["seconds"]
            if decision["action"] == "skip":
                return self._skipped(row, c, trained, decision, t0)
            if decision["action"] == "transfer" or (need_provider and decision["provider_id"]):
                provider = decision["provider_id"]
                row["similar_to"], row["distance"] = provider, decision["distance"]
        result = await self.scheduler.submit(
            TRAIN_POOL,
            train_candidate,
            self._spec(c, provider, trained),
            stage="train",
            name=f"train/{c.id}",
            info={"candidate": c.id, "epochs": self.max_epochs, "transfer_from": provider},
        )
        return self._trained(row, result, t0)

    def _spec(self, c: Candidate, provider: str | None, trained: Trained) -> dict[str, Any]:
        """The :func:`~.evaluate.train_candidate` spec of ``c``."""
        o = self.options
        return {
            "candidate": c.id,
            "genome": genome_to_dict(c.genome),
            "max_epochs": self.max_epochs,
            "epochs_per_iteration": o.epochs_per_iteration,
            "batch_size": o.batch_size,
            "learning_rate": o.learning_rate,
            "channels": o.channels,
            "network": o.network.model_dump(),
            "data": self.data.to_dict(),
            "fitness": o.fitness,
            "fitness_weights": o.fitness_weights,
            "seed": self.seed * 100_003 + int(c.id[1:]),
            "records_path": str(self.records_path),
            "decisions_dir": str(self.decisions_dir) if self.decisions_dir is not None else None,
            "prediction": self.prediction,
            "checkpoint": str(self.ckpt_dir / f"{c.id}.pt"),
            "provider": provider,
            "provider_checkpoint": trained[provider]["checkpoint"] if provider else None,
            "transfer_method": o.transfer.method,
            "gpu": self.use_gpu,
            "fence": self.fence,
        }

    def _trained(self, row: dict[str, Any], result: dict[str, Any], t0: float) -> dict[str, Any]:
        """``row`` completed with what the training task returned."""
        energy = result["energy"] or {}
        cost, proxy = candidate_cost(
            self.options.objective, result["flops"], result["epochs"], energy.get("energy_j")
        )
        transfer = result["transfer"] or {}
        row.update(
            status="trained",
            epochs=result["epochs"],
            stop_reason=result["stop_reason"],
            stop_epoch=result["stop_epoch"],
            fitness_metric=self.options.fitness,
            fitness=result["fitness"],
            predicted_fitness=result["predicted_fitness"],
            actual_fitness=result["actual_fitness"],
            flops=result["flops"],
            params=result["params"],
            cost=cost,
            cost_is_proxy=proxy,
            energy_j=energy.get("energy_j"),
            energy_source=energy.get("source", "unavailable"),
            transfer_provider=transfer.get("provider"),
            tensors_transferred=transfer.get("tensors", 0),
            train_s=result["train_s"],
            data_wait_s=result.get("data_wait_s", 0.0),
            wall_s=time.time() - t0,
            curve=result["curve"],
            metrics=result.get("metrics"),
        )
        return row

    async def _similarity(
        self, c: Candidate, trained: Trained, find_provider: bool
    ) -> dict[str, Any]:
        s = self.options.similarity
        compared = [(k, genome_to_dict(v["genome"]), v["fitness"]) for k, v in trained.items()]
        threshold, mode = (s.threshold, s.mode) if s.enabled else (0.0, "transfer")
        slot = self.engine.sim_slot() if self.engine is not None else contextlib.nullcontext()
        async with slot:
            return await self.scheduler.submit(
                SIM_POOL,
                similarity_decision,
                genome_to_dict(c.genome),
                compared,
                threshold,
                mode,
                s.timeout_s,
                find_provider,
                stage="similarity",
                name=f"similarity/{c.id}",
                info={"candidate": c.id, "compared": len(compared)},
            )

    def _skipped(
        self,
        row: dict[str, Any],
        c: Candidate,
        trained: Trained,
        decision: dict[str, Any],
        t0: float,
    ) -> dict[str, Any]:
        """``row`` of a candidate not trained: it inherits the similar provider's fitness."""
        provider = trained[decision["provider_id"]]
        flops, params = model_cost(c.genome, self.options, self.data)
        if self.options.objective == "energy":
            cost, proxy = provider["cost"], provider["energy_j"] is None
        else:
            cost, proxy = float(flops), False
        row.update(
            status="skipped",
            epochs=0.0,
            stop_reason="similar",
            stop_epoch=None,
            fitness_metric=self.options.fitness,
            fitness=decision["inherited_fitness"],
            predicted_fitness=None,
            actual_fitness=None,
            flops=flops,
            params=params,
            cost=cost,
            cost_is_proxy=proxy,
            energy_j=None,
            energy_source="unavailable",
            similar_to=decision["provider_id"],
            distance=decision["distance"],
            train_s=0.0,
            data_wait_s=0.0,
            wall_s=time.time() - t0,
            curve=[],
            metrics=None,
        )
        return row
