"""Module-level task functions the pool workers can import."""

from __future__ import annotations

import os
import time


def probe(seconds: float = 0.0) -> dict:
    """Sleep, then report what the worker saw from inside."""
    start = time.time()
    time.sleep(seconds)
    return {
        "cores": sorted(os.sched_getaffinity(0)),
        "pid": os.getpid(),
        "start": start,
        "end": time.time(),
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def probe_together(mine: str, other: str, limit: float = 60.0) -> dict:
    """:func:`probe` that runs until it has seen ``other``'s marker file, having written
    ``mine`` first: two of them overlap whenever their pools run them side by side, however
    late either pool's worker starts (after ``limit`` s alone it gives up)."""
    start = time.time()
    with open(mine, "w"):
        pass
    while not os.path.exists(other) and time.time() - start < limit:
        time.sleep(0.05)
    time.sleep(0.1)
    return {**probe(), "start": start}


def noop() -> None:
    return None


def flaky(marker: str, failures: int) -> str:
    """Fail the first ``failures`` calls (counted through files), then succeed."""
    n = len(
        [p for p in os.listdir(os.path.dirname(marker)) if p.startswith(os.path.basename(marker))]
    )
    if n < failures:
        open(f"{marker}.{n}", "w").close()
        raise RuntimeError(f"planned failure {n + 1}")
    return "ok"


def poll_until_cancelled(limit: float) -> str:
    from streamal.runtime.task import raise_if_cancelled

    deadline = time.time() + limit
    while time.time() < deadline:
        raise_if_cancelled()
        time.sleep(0.05)
    return "not cancelled"


class TinyModel:
    """A small model plugin (import path ``tests.helpers:TinyModel``) for trainer tests:
    class logits, one regression target (the first parameter) and its log-variance."""

    name = "tiny"
    uncertainties = frozenset({"variance", "entropy"})

    def __new__(cls, space, input_shape, **options):
        return _tiny_class()(space, input_shape, **options)


def _tiny_class():
    import numpy as np

    from streamal.train.model import ModelPlugin

    class _Tiny(ModelPlugin):
        name = "tiny"
        uncertainties = TinyModel.uncertainties

        def build(self):
            from torch import nn

            return nn.Sequential(
                nn.Flatten(),
                nn.Linear(int(self.input_shape[-1]), 16),
                nn.ReLU(),
                nn.Linear(16, len(self.space.classes) + 2),
            )

        def encode_targets(self, classes, params):
            return np.asarray(params[:, :1], dtype=np.float32)

        def _parts(self, output):
            k = len(self.space.classes)
            return output[:, :k], output[:, k : k + 1], output[:, k + 1]

        def loss(self, output, classes, targets):
            import torch.nn.functional as F

            logits, y, log_var = self._parts(output)
            ce = F.cross_entropy(logits, classes)
            sq = ((y - targets) ** 2).sum(dim=1)
            nll = (sq * (-log_var).exp() + log_var).mean()
            return ce + nll, {"class_loss": ce.item(), "mse": sq.mean().item()}

        def metrics(self, output, classes, targets):
            import torch.nn.functional as F

            logits, y, _ = self._parts(output)
            return {
                "class_loss": float(F.cross_entropy(logits, classes)),
                "mse": float(((y - targets) ** 2).sum(dim=1).mean()),
                "accuracy": float((logits.argmax(1) == classes).float().mean()),
            }

        def uncertainty(self, output):
            import torch

            logits, _, log_var = self._parts(output)
            p = torch.softmax(logits, dim=1)
            return {
                "variance": log_var.exp().numpy(),
                "entropy": (-(p * p.clamp_min(1e-12).log()).sum(dim=1)).numpy(),
            }

    return _Tiny


def peaks_space():
    from streamal.data.space import ClassSpace, ParameterSpace

    return ParameterSpace(
        ("centre", "width"),
        (
            ClassSpace("narrow", {"centre": (0.2, 0.8)}, {"width": 0.02}),
            ClassSpace("wide", {"centre": (0.2, 0.8), "width": (0.05, 0.1)}),
        ),
    )


def _peaks_simulator_class():
    import numpy as np

    from streamal.simulation.simulator import Simulator

    class PeaksSimulator(Simulator):
        """One Gaussian peak on 64 points; ``fail_above`` makes centres above it raise."""

        name = "peaks"

        def __init__(
            self,
            fail_above: float | None = None,
            nan_above: float | None = None,
            delay: float = 0.0,
            kill_once: str | None = None,
            require_mpi: bool = False,
        ):
            self._options = {
                "fail_above": fail_above,
                "nan_above": nan_above,
                "delay": delay,
                "kill_once": kill_once,
                "require_mpi": require_mpi,
            }
            self.space = peaks_space()
            self.output_shape = (64,)

        def _simulate(self, classes, params):
            time.sleep(self._options["delay"] * len(classes))
            if self._options["require_mpi"] and "PMI_RANK" not in os.environ:
                raise RuntimeError("not running under mpiexec")
            if self._options["kill_once"] and len(classes) > 1:
                die_once(self._options["kill_once"])  # SIGKILLs this worker the first time
            if (
                self._options["fail_above"] is not None
                and (params[:, 0] > self._options["fail_above"]).any()
            ):
                raise RuntimeError("centre above fail_above")
            x = np.linspace(0, 1, 64)
            out = np.exp(-0.5 * ((x - params[:, :1]) / params[:, 1:2]) ** 2).astype(np.float32)
            if self._options["nan_above"] is not None:
                out[params[:, 0] > self._options["nan_above"]] = np.nan
            return out

    return PeaksSimulator


PeaksSimulator = _peaks_simulator_class()


def die_once(marker: str) -> str:
    """SIGKILL this worker process the first time (a lost worker), succeed after."""
    import signal

    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def _exploding_policy_class():
    from streamal.policy.uncertainty import UncertaintyMixturePolicy

    class ExplodingPolicy(UncertaintyMixturePolicy):
        """Fits like Eqn (4), then fails on every draw (a broken policy plugin)."""

        name = "exploding"

        def sample_total(self, n, rng):  # noqa: ANN001, ANN201
            raise RuntimeError("policy draw exploded")

    return ExplodingPolicy


ExplodingPolicy = _exploding_policy_class()


def _broken_workflow_class():
    from streamal.workflows.baseline import BaselineWorkflow

    class BrokenWorkflow(BaselineWorkflow):
        """Fails with an unexpected (non-streamal) error once the pools are up."""

        name = "broken"

        async def run(self) -> None:
            raise RuntimeError("unexpected failure inside the workflow")

    return BrokenWorkflow


BrokenWorkflow = _broken_workflow_class()


def write_splits(store_path, sim, draws, key: str = "{split}") -> dict:
    """A store at ``store_path`` holding ``draws`` (``{split: (classes, params)}``) simulated by
    ``sim``, one batch per split (named ``key.format(split=...)``); the rows of each split."""
    from streamal.data.label import BatchLabel
    from streamal.data.store import SampleStore

    rows = {}
    with SampleStore(
        store_path,
        param_names=sim.space.param_names,
        class_names=sim.space.class_names,
        input_shape=sim.output_shape,
    ) as store:
        for split, (classes, params) in draws.items():
            start = len(store)
            store.append(
                key=key.format(split=split),
                classes=classes,
                params=params,
                inputs=sim.simulate(classes, params),
                label=BatchLabel(0, split, "uniform"),
            )
            rows[split] = list(range(start, len(store)))
    return rows


def train_splits(store_path, sim, rows, out_dir, model: str, model_options, epochs: int, **spec):
    """``model`` trained on one rank of core 0 as stage ``T0`` on the ``train``/``val``/``test``
    rows of :func:`write_splits` into ``out_dir`` (batches of 32, learning rate 0.01 unless
    ``spec`` says otherwise); ``out_dir``."""
    from streamal.cluster.plan import RankPlacement
    from streamal.train.ddp import train
    from streamal.train.spec import TrainSpec

    fields = {"batch_size": 32, "learning_rate": 1e-2, **spec}
    train(
        TrainSpec(
            store=str(store_path),
            train_rows=rows["train"],
            val_rows=rows["val"],
            test_rows=rows["test"],
            model=model,
            model_options=model_options,
            space=sim.space.to_dict(),
            input_shape=tuple(sim.output_shape),
            out_dir=str(out_dir),
            epochs=epochs,
            ranks=(RankPlacement(0, (0,), None),),
            stage="T0",
            **fields,
        )
    )
    return out_dir
