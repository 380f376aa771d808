"""Continuous workflow (paper Fig. 2, which the paper did not build): nothing waits.

* Phase 0's uniform training, validation and test sets are simulated first (S0); the policy's
  study set, if it has one, is simulated while T0 trains (S'0, as in the streaming workflow),
  since only the first policy refresh, after T0, needs it.
* The simulator pool never idles: as soon as the study set is in, a feeder keeps every
  simulator worker busy with chunks drawn from the latest policy (uniform until the first
  model exists and the policy is ``ready``: fitted, or needing no model).
* The trainer retrains, warm-started, on every training sample that has arrived whenever it
  is free and at least ``min_new_samples`` (default: one chunk) have arrived since its last
  training — it never retrains on the data it has just seen; after each training the AL task
  refreshes the policy on the study set.
* It stops when ``sum(phases[*].samples)``-worth of AL samples (beyond phase 0's uniform set)
  have been stored, or after ``time_budget_s``; a final training then uses everything. Once
  the last chunks are in flight the trainer waits for them rather than start a training
  that they would make obsolete; a training already running when the last chunk lands is
  obsolete too, and is stopped through its stop file after its current epoch (its best
  checkpoint warm-starts the final training, which then starts at once, with no AL task:
  nothing is drawn any more).

Epochs follow the configured schedule: a training on N samples gets the epochs the phases
give at that size (phase k trains on N₀ + the first k AL batches), interpolated between
phases and held at the ends, at least ``min_epochs`` — the same training per sample count as
the serial and streaming workflows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import numpy as np
from pydantic import Field

from streamal.data.label import BatchLabel
from streamal.policy.uniform import UniformPolicy
from streamal.train.spec import scheduled_epochs
from streamal.workflows.active import ActiveLearningWorkflow, ActiveOptions


class ContinuousOptions(ActiveOptions):
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="seconds from the workflow's start after which no new chunk is drawn; a "
        "final training then uses every stored sample",
    )
    min_epochs: int = Field(1, gt=0, description="fewest epochs of any retraining")
    min_new_samples: int | None = Field(
        None, gt=0, description="new samples a retraining waits for (default: one chunk)"
    )
    chunks_in_flight: int | None = Field(
        None, gt=0, description="chunks queued per simulator worker pool (default: 2 per worker)"
    )


class ContinuousWorkflow(ActiveLearningWorkflow):
    name = "continuous"
    Options = ContinuousOptions

    async def run(self) -> None:
        await self.gather(self.phase0_jobs(study=False))
        study = asyncio.ensure_future(self.study_job("S'0"))
        n0 = len(self.trainer.rows("train", 0))
        sizes = np.cumsum([n0] + [p.samples for p in self.phases[1:]])
        schedule = [p.epochs for p in self.phases]
        min_new = self.options.min_new_samples or self.ctx.config.simulator.chunk_size
        budget = sum(p.samples for p in self.phases[1:]) or self.phases[0].samples
        self._stop_at = (
            time.time() + self.options.time_budget_s if self.options.time_budget_s else None
        )
        self._generation = 0
        self._all_submitted = asyncio.Event()
        self._feeder_done = asyncio.Event()
        self._arrived = asyncio.Event()
        feeder = asyncio.ensure_future(self._feed(budget, after=study))
        try:
            result = await self.trainer.train("T0", epochs=self.phases[0].epochs, max_phase=0)
            await study
            r, trained_on = 0, result["n_train"]
            while True:
                r += 1
                if self.ctx.metrics.get(f"T{r}") is None:  # (a resumed run has it already)
                    await self._wait_for_data(trained_on + min_new)
                    if self._everything_trained(trained_on):
                        break
                if not self._feeder_done.is_set():  # no chunk is drawn after the feeder ends
                    await self._refresh_policy(r, result["best_checkpoint"])
                    if self._everything_trained(trained_on):
                        break  # the feeder finished during the refresh; nothing new to train on
                # read together, with no await between: no sample can land in between
                finished = self._feeder_done.is_set()
                n_train = len(self.trainer.rows("train"))
                epochs = scheduled_epochs(n_train, sizes, schedule, self.options.min_epochs)
                training = self.trainer.train(
                    f"T{r}",
                    epochs=epochs,
                    max_phase=None,
                    warm_start=result["best_checkpoint"],
                    info={"generation": self._generation},
                )
                if finished:
                    result = await training
                else:  # the last chunk landing makes it obsolete: stop it then
                    result = await self._until_obsolete(f"T{r}", training)
                trained_on = result["n_train"]
                if finished:
                    break
        finally:
            feeder.cancel()
            study.cancel()
            outcomes = await asyncio.gather(feeder, study, return_exceptions=True)
        for outcome in outcomes:  # a feeder that failed must not end the run as if it finished
            if isinstance(outcome, Exception):
                raise outcome

    async def _until_obsolete(self, stage: str, training: Awaitable[dict]) -> dict:
        """Await ``training``; if the feeder ends first (every chunk stored), ask its ranks to
        stop after their current epoch: the final training on everything replaces it.

        The stop file is touched again every second until the training returns, since the
        training task removes a stale one when it starts (a stop asked before that is kept).
        """
        task = asyncio.ensure_future(training)
        stop_file = self.trainer.stop_file(stage)

        async def stop_when_all_stored() -> None:
            await self._feeder_done.wait()
            while True:
                stop_file.parent.mkdir(parents=True, exist_ok=True)
                stop_file.touch()
                await asyncio.sleep(1.0)

        watcher = asyncio.ensure_future(stop_when_all_stored())
        try:
            return await task
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            task.cancel()  # (only when this await was itself cancelled)
            stop_file.unlink(missing_ok=True)

    def _everything_trained(self, trained_on: int) -> bool:
        """The feeder is done and the last training already saw every stored sample."""
        return self._feeder_done.is_set() and len(self.trainer.rows("train")) <= trained_on

    async def _wait_for_data(self, n_train: int) -> None:
        """Until ``n_train`` training samples are stored, or the feeder is done. Once the last
        chunks are in flight, until they are in: a training now would be superseded."""
        while not self._feeder_done.is_set():
            if not self._all_submitted.is_set() and len(self.trainer.rows("train")) >= n_train:
                return
            self._arrived.clear()
            await self._arrived.wait()

    async def _refresh_policy(self, r: int, checkpoint: str) -> None:
        """AL task on the study set with the newest model; later chunks draw from it."""
        if self.policy.needs:
            await self.fit_policy(r, checkpoint)
        self._generation = r

    def _draw(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Chunk ``i`` of ``n`` samples: uniform until the first model (the warm-up)."""
        rng = self.rng(1000 + i)
        policy = self.policy
        if self._generation == 0 or not policy.ready:
            policy = UniformPolicy(self.ctx.space)
        c, p = policy.sample_total(n, rng)
        return c, p, policy.name

    async def _feed(self, budget: int, after: asyncio.Future) -> None:
        """Keep the sim pool full until ``budget`` AL samples are stored or time runs out.

        Starts once ``after`` (the study set) is stored, so its chunks never queue behind ours.
        """
        chunk = self.ctx.config.simulator.chunk_size
        workers = len(self.ctx.plan.sim_cores)
        in_flight_max = self.options.chunks_in_flight or 2 * workers
        pending: set[asyncio.Task] = set()
        try:
            await asyncio.shield(after)
            fed = [b for b in self.ctx.store.batches() if b.key.startswith("cont/")]
            stored = sum(b.count for b in fed)
            i = len({b.key.split("/")[1] for b in fed})
            while stored + chunk * len(pending) < budget:
                if self._stop_at is not None and time.time() > self._stop_at:
                    break
                while len(pending) < in_flight_max and stored + chunk * len(pending) < budget:
                    n = min(chunk, budget - stored - chunk * len(pending))
                    classes, params, origin = self._draw(i, n)
                    pending.add(
                        asyncio.ensure_future(
                            self.simulate(
                                f"cont/{i}",
                                classes,
                                params,
                                BatchLabel(self._generation + 1, "train", origin),
                                stage=f"C{self._generation}",
                            )
                        )
                    )
                    i += 1
                if stored + chunk * len(pending) >= budget:
                    self._all_submitted.set()
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                stored += sum(t.result().stored for t in done)
                self._arrived.set()
            self._all_submitted.set()
            if pending:
                await asyncio.gather(*pending)
        finally:
            self._feeder_done.set()
            self._arrived.set()
