"""What the active-learning workflows share: the phase-0 sets, the study set, the AL task.

Sizes: ``phases[0].samples`` uniform training samples per class; validation and test sets of
``val_fraction``/``test_fraction`` times that per class; the study set is the policy's own
(:meth:`~streamal.policy.base.Policy.study_set`; none for a model-free policy);
``phases[k].samples`` (k ≥ 1) is the size of phase k's active-learning batch over all classes
(the policy's ``sample_total`` decides the class of each sample).

The workflows know policies only through :class:`~streamal.policy.base.Policy`: after each
training, a policy that :attr:`~streamal.policy.base.Policy.needs` model uncertainties is
told the model's predictions on its stored study set (the AL task), then asked for a batch.

Each AL batch is saved under ``al/`` as soon as it is drawn, so a resumed run simulates the
very same parameters and never draws a batch twice.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from streamal import durable, plugins
from streamal.data.label import BatchLabel
from streamal.runtime.pools import TRAIN_POOL
from streamal.train.predict import predict_uncertainty
from streamal.workflows.base import SplitOptions, Workflow


def _load_batch(path: Path) -> dict[str, Any] | None:
    """A saved AL batch; None if there is none or it is unreadable (it is drawn again: an
    unreadable batch was never complete, so none of it was simulated)."""
    try:
        with np.load(path) as saved:
            return {key: saved[key] for key in saved.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):  # missing, or torn
        return None


class ActiveOptions(SplitOptions):
    """Options shared by the active-learning workflows."""


class ActiveLearningWorkflow(Workflow):
    """Base of serial, streaming and continuous: phase-0 data, study set, AL batches."""

    Options = ActiveOptions
    #: The policy of a config without a ``policy`` section (``validate`` checks it too).
    default_policy: ClassVar[str] = "uncertainty-mixture"

    def __init__(self, ctx) -> None:  # noqa: ANN001 - RunContext
        super().__init__(ctx)
        pcfg = ctx.config.policy
        policy_cls = plugins.load("policies", pcfg.name if pcfg else self.default_policy)
        self.policy = policy_cls(ctx.space, **(pcfg.options if pcfg else {}))
        self.al_dir = Path(ctx.run_dir) / "al"
        self.al_dir.mkdir(exist_ok=True)

    @property
    def phases(self):  # noqa: ANN201 - list[PhaseConfig]
        return self.ctx.config.workflow.phases

    def phase0_jobs(self, *, study: bool) -> list:
        """Coroutines simulating the phase-0 training, validation, test (and study) sets."""
        jobs = self.uniform_sets(self.phases[0].samples, self.options)
        if study:
            jobs.append(self.study_job("S0"))
        return jobs

    async def study_job(self, stage: str) -> None:
        """Simulate the policy's study set, if it has one."""
        study = self.policy.study_set(self.rng(0, 3))
        if study is None:
            return
        classes, params = study
        await self.simulate(
            "p0/study",
            classes,
            params,
            BatchLabel(0, "study", "sweep"),
            stage=stage,
        )

    async def fit_policy(self, k: int, checkpoint: str) -> None:
        """AL task ``AL{k}``: the model's uncertainty on the stored study set → ``policy.fit``."""
        cfg = self.ctx.config
        needs = self.policy.needs
        study = self.ctx.store.select(split="study")
        pred = await self.ctx.scheduler.submit(
            TRAIN_POOL,
            predict_uncertainty,
            str(self.ctx.store.path),
            study.indices.tolist(),
            cfg.model.name,
            cfg.model.options,
            self.ctx.space.to_dict(),
            self.ctx.input_shape,
            checkpoint,
            stage=f"AL{k}",
            name=f"AL{k}",
            info={"samples": len(study)},
        )
        predictions = {key: value for key, value in pred.items() if key in needs}
        self.policy.fit(study.classes(), study.params(), predictions, model=cfg.model.name)

    async def al_batch(self, k: int, n: int, checkpoint: str) -> dict[str, Any]:
        """Phase k's AL batch (``classes``, ``params``, shuffled), drawn once and saved.

        The file also holds, when the fitted policy exposes its study-set weights
        (``weights_``), ``study_rows`` (store rows of the study set) and ``study_weights``
        (one per row), for the report; an older file without them loads the same.
        """
        path = self.al_dir / f"phase-{k}.npz"
        saved = _load_batch(path)
        if saved is not None:
            return saved
        extra: dict[str, np.ndarray] = {}
        if self.policy.needs:
            await self.fit_policy(k, checkpoint)
            weights = getattr(self.policy, "weights_", None)
            rows = self.ctx.store.select(split="study").indices
            if weights is not None and len(weights) == len(rows):
                extra = {"study_rows": rows, "study_weights": np.asarray(weights, np.float64)}
        classes, params = self.policy.sample_total(n, self.rng(k, 7))
        order = self.rng(k, 8).permutation(len(classes))
        batch = {"classes": classes[order], "params": params[order]}
        buf = io.BytesIO()
        np.savez(buf, **batch, **extra)
        durable.write_bytes(path, buf.getvalue())
        return batch

    async def simulate_al(
        self, key: str, batch: dict[str, Any], rows: slice, *, phase: int, stage: str
    ):  # noqa: ANN201
        return await self.simulate(
            key,
            batch["classes"][rows],
            batch["params"][rows],
            BatchLabel(phase, "train", self.policy.name),
            stage=stage,
        )

    async def gather(self, jobs: list) -> None:
        await asyncio.gather(*jobs)
