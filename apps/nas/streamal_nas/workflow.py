"""The ``nas`` workflow: architecture search on the overlap scheduler.

Candidates train on the ``train`` pool (one worker per trainer rank, as many candidates in
flight as workers plus one queued); the PENGUIN prediction engine and the A4NN.2 similarity
checks run as tasks on the ``sim`` pool, decoupled from the search: trainers append records
and poll decision files, the engine reads the records and writes the decisions
(:mod:`.prediction.task`, kept running by :class:`~.prediction.supervisor.EngineSupervisor`).
One candidate's evaluation — similarity check, training, its row — is
:class:`~.candidates.CandidateEvaluator`'s.

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

Data (:mod:`.datasets`, option ``dataset``): digits, a finished campaign's store, or samples
of the config's simulator, simulated on the ``sim`` pool before the search starts, or with
``overlap_epochs`` while the first candidates train (:mod:`.data_feed`; the search needs
the whole validation set to compare candidates; a resumed run keeps what was stored). The
fitness (option ``fitness``, :mod:`.fitness`) is validation accuracy or a loss; a loss is
minimised, by the search and by the prediction engine (``direction: minimize``).

Outputs: see :mod:`.outputs`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamal.cluster.parsl_config import sim_core_groups
from streamal.workflows.base import Workflow, split_sizes

from .candidates import CandidateEvaluator, Trained
from .datasets import DataSpec, prepare_data
from .objectives import hypervolume_reference, objective_vector
from .options import NasOptions
from .outputs import (
    cost_label,
    plot_pareto,
    summarize,
    write_candidate_table,
    write_report,
    write_summary,
)
from .prediction import prediction_config, read_all_decisions
from .prediction.supervisor import EngineSupervisor
from .search_state import SearchState
from .strategies import Candidate, SearchStrategy, hypervolume, make_strategy

__all__ = ["NasWorkflow"]

log = logging.getLogger(__name__)


class NasWorkflow(Workflow):
    """Architecture search (NSGA-II or regularized evolution) with PENGUIN and A4NN.2."""

    name = "nas"
    Options = NasOptions
    needs_model = False
    needs_simulator = False
    train_worker_per_rank = True
    ddp_trainings = False
    feed: asyncio.Task | None = None  # the training set still being simulated (data_feed)

    @classmethod
    def model_per_rank(cls, options: dict[str, Any]) -> bool:
        """One candidate per rank of every node unless ``candidate_span: node``."""
        return NasOptions.model_validate(options).candidate_span == "rank"

    @classmethod
    def stored_samples(cls, options: dict[str, Any], n_classes: int) -> tuple[int, int, int]:
        """What the ``simulate`` dataset stores (other datasets store nothing)."""
        d = NasOptions.model_validate(options).dataset
        if d.name != "simulate":
            return 0, 0, 0
        sizes = split_sizes(d.samples_per_class, d.val_fraction, d.test_fraction)
        return sizes["train"] * n_classes, (sizes["val"] + sizes["test"]) * n_classes, 0

    @classmethod
    def report(cls, run_dir: Path, out: Path) -> list[Path]:
        """The Pareto plot (``out/pareto.png``), from the run directory alone."""
        return write_report(run_dir, out)

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
        self.data: DataSpec
        self.data, self.feed = await prepare_data(o, self)
        self.state = SearchState.open(run_dir, cfg.fingerprint(), window=self._train_workers() + 1)
        self.state.prune(self.records_path, self.decisions_dir, self.ckpt_dir)
        for note in self.state.notes:
            log.warning("nas: %s", note)
        self.reused = 0
        self.trained: Trained = {}  # told so far, in tell order
        self.rows: list[dict[str, Any]] = []
        strategy = make_strategy(
            o.strategy,
            population=o.population,
            sample=o.sample_size,
            phases=o.phases,
            nodes=o.nodes,
            seed=cfg.seed,
        )
        self.engine: EngineSupervisor | None = None
        prediction = None
        if o.prediction.enabled:
            prediction = o.prediction.engine_config(
                o.epochs_per_iteration, self.max_epochs, direction=o.direction
            )
            prediction_config(prediction)  # fail early on bad settings
            self.engine = EngineSupervisor(
                self.ctx.scheduler,
                (
                    str(self.records_path),
                    str(self.decisions_dir),
                    prediction,
                    o.prediction.poll_s,
                    None,
                    self.state.fence(),
                ),
                exclusive=len(sim_core_groups(self.ctx.plan)) < 2,
            )
            if self.feed is not None:  # its chunks must not queue behind the engine
                self.engine.hold_until(self.feed)
            if len(self.state.completed) < self.budget:
                self.engine.start()
        self.evaluator = CandidateEvaluator(
            o,
            self.ctx.scheduler,
            seed=cfg.seed,
            max_epochs=self.max_epochs,
            records_path=self.records_path,
            decisions_dir=self.decisions_dir if self.engine is not None else None,
            prediction=prediction,
            ckpt_dir=self.ckpt_dir,
            engine=self.engine,
            use_gpu=bool(self.ctx.plan.gpus),
            fence=self.state.fence(),
            data=self.data,
        )
        try:
            await self._search(strategy)
            if self.feed is not None:
                await self.feed  # the test set, if the search ended first
        finally:
            if self.feed is not None and not self.feed.done():
                self.feed.cancel()
            if self.engine is not None:
                await self.engine.close()
        self.state.prune(self.records_path, self.decisions_dir, self.ckpt_dir)
        self._write_outputs(strategy, time.time() - t0)

    def _train_workers(self) -> int:
        """Candidates trained at once: one per train worker, on every node."""
        plan = self.ctx.plan
        per_node = len(plan.trainer_ranks) if self.options.candidate_span == "rank" else 1
        return per_node * plan.nodes

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
                    saved = self.state.saved_row(c.id, c.genome.key())
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
                watched = set(in_flight)
                if self.feed is not None and not self.feed.done():
                    watched.add(self.feed)  # a failed simulation ends the search
                finished, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if self.feed in finished:
                    finished.discard(self.feed)
                    self.feed.result()
                for task in sorted(finished, key=lambda t: in_flight[t].id):
                    c = in_flight.pop(task)
                    self.state.add(task.result())
                    done[c.id] = self.state.completed[c.id]
                advance()
        finally:
            for task in in_flight:
                task.cancel()

    async def _evaluate(self, c: Candidate, trained: Trained) -> dict[str, Any]:
        """The row of ``c``; ``trained``: the candidates told before ``c`` was asked."""
        return await self.evaluator.evaluate(c, trained)

    def _tell(self, strategy: SearchStrategy, c: Candidate, row: dict[str, Any]) -> None:
        self.rows.append(row)
        strategy.tell([c], [objective_vector(row)])
        if row["status"] == "trained":
            self.trained[c.id] = {
                "genome": c.genome,
                "fitness": row["fitness"],
                "checkpoint": str(self.ckpt_dir / f"{c.id}.pt"),
                "cost": row["cost"],
                "energy_j": row["energy_j"],
            }

    def _write_outputs(self, strategy: SearchStrategy, wall_s: float) -> None:
        o: NasOptions = self.options
        rows = sorted(self.rows, key=lambda r: r["id"])
        ref = hypervolume_reference(o, self.rows, self.max_epochs, self.data)
        f = np.array([objective_vector(r) for r in rows], dtype=float)
        hv = hypervolume(f / ref, [1.0, 1.0]) if rows else 0.0
        run_dir = self.ctx.run_dir
        write_candidate_table(rows, run_dir)
        plot_pareto(rows, run_dir / "report" / "pareto.png", cost_label(o.objective, rows))
        summary = summarize(
            rows,
            hypervolume=hv,
            hypervolume_reference=ref,
            objective=o.objective,
            fitness=o.fitness,
            dataset=o.dataset.name,
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
