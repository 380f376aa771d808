"""The ``nas`` workflow: architecture search on the overlap scheduler.

Candidates train on the ``train`` pool (one worker per trainer rank, as many candidates in
flight as workers plus one queued); the PENGUIN prediction engine and the A4NN.2 similarity
checks run as tasks on the ``sim`` pool, decoupled from the search: trainers append records
and poll decision files, the engine reads the records and writes the decisions.

With a single ``sim`` worker (a small node) the long-running engine task is paused —
cancelled cooperatively and restarted, which costs one re-read of the records — while a
similarity check holds the worker.

The search is deterministic given the seed and the window W (trainer ranks + 1, fixed when
the run starts): results are told to the strategy in the order the candidates were asked,
candidate k is asked right after candidate k - W is told, and its similarity check and
weight-transfer provider see exactly the candidates told before it was asked, whatever
finished first. With the trainer's timing-independent results (see
:func:`.evaluate.train_candidate`) the same seed gives the same candidates, statuses and
fitness on a CPU with the flops objective. Not covered: measured energy (the ``energy``
objective), non-deterministic GPU kernels, and a similarity check whose edit-distance
search hits its time bound.

Resume (``streamal run --resume``): each completed evaluation is saved atomically in
``nas/state.json`` (:mod:`.search_state`). A resumed run removes what the killed session
left half done (records, decisions and checkpoints of candidates in flight), replays the
strategy over the saved evaluations without training them again, evaluates the candidates
that were in flight from epoch 0, and continues; it ends with the same candidates as an
uninterrupted run with the same seed.

Outputs: see :mod:`.outputs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamal.cluster.parsl_config import sim_core_groups
from streamal.runtime.pools import SIM_POOL, TRAIN_POOL
from streamal.runtime.scheduler import Scheduler, TaskCancelledError
from streamal.workflows.base import Workflow

from .energy import energy_objective
from .evaluate import (
    genome_to_dict,
    model_cost,
    prediction_config,
    read_all_decisions,
    run_prediction_engine,
    similarity_decision,
    train_candidate,
)
from .genome import MacroGenome, bits_per_phase
from .outputs import plot_pareto, summarize, write_candidate_table, write_summary
from .search_state import SearchState, SearchStateError
from .strategies import Candidate, SearchStrategy, hypervolume, make_strategy

__all__ = ["NasOptions", "NasWorkflow"]

log = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictionOptions(_Strict):
    """PENGUIN engine settings (Table 4 of the paper); ``e_pred`` defaults to max epochs."""

    enabled: bool = True
    n_predictions: int = Field(3, ge=1, description="N: predictions that must agree")
    tolerance: float = Field(0.5, ge=0, description="t: spread around their mean, in %")
    e_pred: float | None = Field(None, gt=0, description="epoch predicted for; <= max epochs")
    curves: list[str] | None = Field(None, description="curve names; default a - b^(c-x)")
    never_learning_floor: float | None = Field(
        None, description="stop curves that stay at or below this accuracy (%)"
    )
    poll_s: float = Field(0.2, gt=0, description="engine sleep between passes")


class SimilarityOptions(_Strict):
    """A4NN.2 similarity settings."""

    enabled: bool = False
    threshold: float = Field(2.0, ge=0, description="largest graph edit distance = similar")
    mode: Literal["skip", "transfer"] = "skip"
    timeout_s: float = Field(0.2, gt=0, description="time bound of one GED search")


class TransferOptions(_Strict):
    """Selective weight transfer: provider = parent (regularized evolution), else nearest."""

    enabled: bool = False
    method: Literal["lcs", "lp"] = "lcs"


class NasOptions(_Strict):
    """Options of the ``nas`` workflow (``workflow.options``).

    The core schema's ``workflow.phases`` maps onto the search as one phase:
    ``samples`` = candidate budget (architectures proposed) and ``epochs`` = E, the most
    epochs any candidate trains. The seed is the top-level ``seed``.
    """

    strategy: Literal["nsga2", "regularized-evolution"] = "nsga2"
    population: int = Field(8, ge=2, description="NSGA-II population / RE population N")
    sample_size: int = Field(3, ge=1, description="RE tournament size S")
    phases: int = Field(3, ge=1, description="search space: phases per genome")
    nodes: int = Field(4, ge=2, description="search space: nodes per phase")
    channels: int = Field(8, ge=1, description="channels of the first phase (doubling)")
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    epochs_per_iteration: float = Field(
        0.5, gt=0, le=1, description="validation (and record) interval, in epochs"
    )
    objective: Literal["flops", "energy"] = "flops"
    energy_reference_j: float | None = Field(
        None, gt=0, description="hypervolume reference for measured energy"
    )
    prediction: PredictionOptions = PredictionOptions()
    similarity: SimilarityOptions = SimilarityOptions()
    transfer: TransferOptions = TransferOptions()

    @model_validator(mode="after")
    def _sample_fits(self) -> NasOptions:
        if self.strategy == "regularized-evolution" and self.sample_size > self.population:
            raise ValueError(
                f"sample_size ({self.sample_size}) must be <= population ({self.population})"
            )
        return self


class EngineSupervisor:
    """Keeps the prediction-engine task running; pauses it when sim-pool slots are scarce.

    Args:
        scheduler: The run's scheduler.
        args: Positional arguments of :func:`run_prediction_engine`.
        exclusive: Pause the engine while a :meth:`sim_slot` is held (one sim worker).
    """

    def __init__(self, scheduler: Scheduler, args: tuple, exclusive: bool) -> None:
        self.scheduler = scheduler
        self.args = args
        self.exclusive = exclusive
        self.runs_: list[dict[str, Any]] = []
        self._handle = None
        self._users = 0
        self._closed = False

    def start(self) -> None:
        """Start the engine unless it runs, a slot is held, or the supervisor is closed."""
        if self._handle is None and self._users == 0 and not self._closed:
            k = len(self.runs_) + 1
            self._handle = self.scheduler.start(
                SIM_POOL,
                run_prediction_engine,
                *self.args,
                stage="predict",
                name=f"predict-engine-{k}",
                info={"engine_run": k},
            )

    async def _stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        handle.cancel()
        with contextlib.suppress(TaskCancelledError):
            result = await handle
            self.runs_.append({k: v for k, v in result.items() if k != "decisions"})

    @contextlib.asynccontextmanager
    async def sim_slot(self) -> AsyncIterator[None]:
        """Hold a sim-pool slot; with ``exclusive`` the engine pauses meanwhile."""
        if not self.exclusive:
            yield
            return
        self._users += 1
        try:
            await self._stop()
            yield
        finally:
            self._users -= 1
            self.start()

    async def close(self) -> None:
        """Stop the engine for good."""
        self._closed = True
        await self._stop()


class NasWorkflow(Workflow):
    """Architecture search (NSGA-II or regularized evolution) with PENGUIN and A4NN.2."""

    name = "nas"
    Options = NasOptions
    needs_model = False
    needs_simulator = False
    train_worker_per_rank = True

    async def run(self) -> None:
        t0 = time.time()
        o: NasOptions = self.options
        cfg = self.ctx.config
        phase = cfg.workflow.phases[0]
        self.budget, self.max_epochs = phase.samples, phase.epochs
        run_dir = self.ctx.run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.records_path = run_dir / "records.jsonl"
        self.decisions_dir = run_dir / "decisions"
        self.decisions_dir.mkdir(exist_ok=True)
        self.records_path.touch()
        self.state = SearchState.open(
            run_dir, cfg.fingerprint(), window=len(self.ctx.plan.trainer_ranks) + 1
        )
        self.state.prune(self.records_path, self.decisions_dir, self.ckpt_dir)
        for note in self.state.notes:
            log.warning("nas: %s", note)
        self.reused = 0
        self.trained: dict[str, dict[str, Any]] = {}  # told so far, in tell order
        self.rows: list[dict[str, Any]] = []
        self.use_gpu = bool(self.ctx.plan.gpus)
        strategy = make_strategy(
            o.strategy,
            population=o.population,
            sample=o.sample_size,
            phases=o.phases,
            nodes=o.nodes,
            seed=cfg.seed,
        )
        self.engine: EngineSupervisor | None = None
        self.prediction = None
        if o.prediction.enabled:
            self.prediction = self._prediction_kwargs()
            prediction_config(self.prediction)  # fail early on bad settings
            self.engine = EngineSupervisor(
                self.ctx.scheduler,
                (
                    str(self.records_path),
                    str(self.decisions_dir),
                    self.prediction,
                    o.prediction.poll_s,
                    None,
                    self.state.fence(),
                ),
                exclusive=len(sim_core_groups(self.ctx.plan)) < 2,
            )
            if len(self.state.completed) < self.budget:
                self.engine.start()
        try:
            await self._search(strategy)
        finally:
            if self.engine is not None:
                await self.engine.close()
        self.state.prune(self.records_path, self.decisions_dir, self.ckpt_dir)
        self._write_outputs(strategy, time.time() - t0)

    async def _search(self, strategy: SearchStrategy) -> None:
        """Ask, evaluate and tell until the budget is spent, in a timing-independent order.

        Candidate k is asked once candidates 1 .. k - W are told (W = the state's window)
        and results are told in ask order, so the strategy sees the same sequence of asks and
        tells whatever finishes first; a candidate's similarity check and transfer provider
        see the candidates told before it was asked. Evaluations saved by an earlier session
        are taken from the state instead of run again.
        """
        window = self.state.window
        asked: list[Candidate] = []
        done: dict[str, dict[str, Any]] = {}  # completed rows, told or not
        in_flight: dict[asyncio.Task, Candidate] = {}
        told = 0

        def advance() -> None:
            """Ask what the window allows and tell the completed prefix, alternately."""
            nonlocal told
            while True:
                while strategy.n_asked < min(self.budget, told + window):
                    batch = strategy.ask(1)
                    if not batch:
                        break  # NSGA-II: the generation is not all told yet
                    c = batch[0]
                    asked.append(c)
                    saved = self._saved_row(c)
                    if saved is not None:
                        done[c.id] = saved
                        self.reused += 1
                    else:
                        task = asyncio.ensure_future(self._evaluate(c, dict(self.trained)))
                        in_flight[task] = c
                if told == len(asked) or asked[told].id not in done:
                    return
                self._tell(strategy, asked[told], done[asked[told].id])
                told += 1

        try:
            advance()
            while in_flight:
                finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(finished, key=lambda t: in_flight[t].id):
                    c = in_flight.pop(task)
                    self.state.add(task.result())
                    done[c.id] = self.state.completed[c.id]
                advance()
        finally:
            for task in in_flight:
                task.cancel()

    def _saved_row(self, c: Candidate) -> dict[str, Any] | None:
        """The row an earlier session saved for ``c``, checked against the genome asked now."""
        row = self.state.completed.get(c.id)
        if row is None:
            return None
        if row["genome"] != c.genome.key():
            raise SearchStateError(
                f"{self.state.path}: {c.id} was {row['genome']} but the search now asks "
                f"{c.genome.key()}: the saved state is not this search's (another version?); "
                "start a new run directory"
            )
        return row

    def _tell(self, strategy: SearchStrategy, c: Candidate, row: dict[str, Any]) -> None:
        self.rows.append(row)
        strategy.tell([c], [[100.0 - row["fitness"], row["cost"]]])
        if row["status"] == "trained":
            self.trained[c.id] = {
                "genome": c.genome,
                "fitness": row["fitness"],
                "checkpoint": str(self.ckpt_dir / f"{c.id}.pt"),
                "cost": row["cost"],
                "energy_j": row["energy_j"],
            }

    # -- one candidate ---------------------------------------------------------------------
    async def _evaluate(self, c: Candidate, trained: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Similarity check, then training; ``trained``: the candidates told before ``c``."""
        o: NasOptions = self.options
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
        spec = {
            "candidate": c.id,
            "genome": genome_to_dict(c.genome),
            "max_epochs": self.max_epochs,
            "epochs_per_iteration": o.epochs_per_iteration,
            "batch_size": o.batch_size,
            "learning_rate": o.learning_rate,
            "channels": o.channels,
            "seed": self.ctx.config.seed * 100_003 + int(c.id[1:]),
            "data_seed": self.ctx.config.seed,
            "records_path": str(self.records_path),
            "decisions_dir": str(self.decisions_dir) if self.engine is not None else None,
            "prediction": self.prediction,
            "checkpoint": str(self.ckpt_dir / f"{c.id}.pt"),
            "provider": provider,
            "provider_checkpoint": trained[provider]["checkpoint"] if provider else None,
            "transfer_method": o.transfer.method,
            "gpu": self.use_gpu,
            "fence": self.state.fence(),
        }
        result = await self.ctx.scheduler.submit(
            TRAIN_POOL,
            train_candidate,
            spec,
            stage="train",
            name=f"train/{c.id}",
            info={"candidate": c.id, "epochs": self.max_epochs, "transfer_from": provider},
        )
        energy = result["energy"] or {}
        cost, proxy = self._cost(result["flops"], result["epochs"], energy.get("energy_j"))
        transfer = result["transfer"] or {}
        row.update(
            status="trained",
            epochs=result["epochs"],
            stop_reason=result["stop_reason"],
            stop_epoch=result["stop_epoch"],
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
            wall_s=time.time() - t0,
            curve=result["curve"],
        )
        return row

    async def _similarity(
        self, c: Candidate, trained: dict[str, dict[str, Any]], find_provider: bool
    ) -> dict[str, Any]:
        s = self.options.similarity
        compared = [(k, genome_to_dict(v["genome"]), v["fitness"]) for k, v in trained.items()]
        threshold, mode = (s.threshold, s.mode) if s.enabled else (0.0, "transfer")
        slot = self.engine.sim_slot() if self.engine is not None else contextlib.nullcontext()
        async with slot:
            return await self.ctx.scheduler.submit(
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
        trained: dict[str, dict[str, Any]],
        decision: dict[str, Any],
        t0: float,
    ) -> dict[str, Any]:
        provider = trained[decision["provider_id"]]
        flops, params = model_cost(c.genome, self.options.channels)
        if self.options.objective == "energy":
            cost, proxy = provider["cost"], provider["energy_j"] is None
        else:
            cost, proxy = float(flops), False
        row.update(
            status="skipped",
            epochs=0.0,
            stop_reason="similar",
            stop_epoch=None,
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
            wall_s=time.time() - t0,
            curve=[],
        )
        return row

    # -- objectives and outputs ------------------------------------------------------------
    def _cost(self, flops: int, epochs: float, energy_j: float | None) -> tuple[float, bool]:
        if self.options.objective == "flops":
            return float(flops), False
        return energy_objective(energy_j, flops, epochs)

    def _prediction_kwargs(self) -> dict[str, Any]:
        p = self.options.prediction
        kw: dict[str, Any] = {
            "n_predictions": p.n_predictions,
            "tolerance": p.tolerance,
            "epochs_per_iteration": self.options.epochs_per_iteration,
            "e_pred": float(p.e_pred if p.e_pred is not None else self.max_epochs),
        }
        if p.curves:
            kw["curves"] = list(p.curves)
        if p.never_learning_floor is not None:
            kw["never_learning"] = {"floor": p.never_learning_floor}
        return kw

    def _reference(self) -> list[float]:
        """Fixed hypervolume reference: 100 % error and 1.1 x the space's largest cost."""
        o: NasOptions = self.options
        full = MacroGenome(o.phases, o.nodes, (1,) * (o.phases * bits_per_phase(o.nodes)))
        max_flops = float(model_cost(full, o.channels)[0])
        if o.objective == "flops":
            return [100.0, 1.1 * max_flops]
        if any(not r["cost_is_proxy"] for r in self.rows):
            measured = [r["cost"] for r in self.rows if not r["cost_is_proxy"]]
            return [100.0, o.energy_reference_j or 1.1 * max(measured)]
        return [100.0, 1.1 * max_flops * self.max_epochs]

    def _write_outputs(self, strategy: Any, wall_s: float) -> None:
        o: NasOptions = self.options
        rows = sorted(self.rows, key=lambda r: r["id"])
        ref = self._reference()
        f = np.array([[100.0 - r["fitness"], r["cost"]] for r in rows], dtype=float)
        hv = hypervolume(f / ref, [1.0, 1.0]) if rows else 0.0
        run_dir = self.ctx.run_dir
        write_candidate_table(rows, run_dir)
        cost_label = "FLOPs per forward pass" if o.objective == "flops" else "energy (J)"
        if o.objective == "energy" and any(r["cost_is_proxy"] for r in rows):
            cost_label = "energy proxy: FLOPs x epochs (energy unavailable)"
        plot_pareto(rows, run_dir / "report" / "pareto.png", cost_label)
        summary = summarize(
            rows,
            hypervolume=hv,
            hypervolume_reference=ref,
            objective=o.objective,
            max_epochs=self.max_epochs,
            wall_s=wall_s,
            strategy=o.strategy,
            prediction=o.prediction.enabled,
            similarity=o.similarity.enabled,
            transfer=o.transfer.enabled,
            energy_sources=sorted({r["energy_source"] for r in rows}),
            engine_runs=self.engine.runs_ if self.engine is not None else [],
            engine_decisions=len(read_all_decisions(self.decisions_dir)),
            strategy_ask_s=strategy.ask_s_,
            strategy_tell_s=strategy.tell_s_,
            window=self.state.window,
            reused_candidates=self.reused,
        )
        write_summary(summary, run_dir)
        Path(run_dir / "report").mkdir(exist_ok=True)
