"""Shared fixtures: the fast simulator, and a tiny diffraction-cnn trained as a run's T0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamal.cluster.plan import RankPlacement
from streamal.config import load_config
from streamal.data.label import BatchLabel
from streamal.data.store import SampleStore
from streamal.policy.uniform import UniformPolicy
from streamal.train.ddp import train
from streamal.train.service import TrainingService
from streamal.train.spec import TrainSpec
from streamal_diffraction import TofDiffractionSimulator

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "diffraction-ci.yaml"
#: A network small enough to train in seconds.
TINY = {"channels": [4, 8], "hidden": 32}
#: Patterns per class of each split of the tiny run's store.
PER_CLASS = {"train": 30, "val": 10, "test": 10}


@pytest.fixture(scope="session")
def sim() -> TofDiffractionSimulator:
    return TofDiffractionSimulator()


def _tiny_spec(run: Path, sim: TofDiffractionSimulator, **overrides: Any) -> TrainSpec:
    service = TrainingService(load_config(CONFIG), None, None, sim.space, (), None, None, run)
    n = {split: 3 * k for split, k in PER_CLASS.items()}
    fields: dict[str, Any] = dict(
        store=str(run / "store.h5"),
        train_rows=list(range(n["train"])),
        val_rows=list(range(n["train"], n["train"] + n["val"])),
        test_rows=list(range(n["train"] + n["val"], sum(n.values()))),
        model="diffraction-cnn",
        model_options=TINY,
        space=sim.space.to_dict(),
        input_shape=sim.output_shape,
        out_dir=str(run / "checkpoints" / "T0"),
        epochs=10,
        ranks=(RankPlacement(0, (0,), None),),
        batch_size=15,
        learning_rate=5e-3,
        stage="T0",
        metadata=service.metadata(),
    )
    return TrainSpec(**{**fields, **overrides})


@pytest.fixture(scope="session")
def tiny_spec(sim) -> Callable[..., TrainSpec]:
    """``tiny_spec(run, **spec)``: the spec the training service would build for T0 on the
    tiny run's store (:data:`TINY` network, one rank, 10 epochs)."""
    return lambda run, **overrides: _tiny_spec(run, sim, **overrides)


@pytest.fixture(scope="session")
def train_tiny_run(sim) -> Callable[..., Path]:
    """``train_tiny_run(run, seed, **spec)``: a uniform store (30/10/10 patterns per class for
    train/val/test) under ``run`` and diffraction-cnn trained on it as ``checkpoints/T0``."""

    def make(run: Path, seed: int, **overrides: Any) -> Path:
        rng = np.random.default_rng(seed)
        policy = UniformPolicy(sim.space)
        with SampleStore(
            run / "store.h5",
            param_names=sim.space.param_names,
            class_names=sim.space.class_names,
            input_shape=sim.output_shape,
        ) as store:
            for split, per_class in PER_CLASS.items():
                classes, params = policy.sample(per_class, rng)
                store.append(
                    key=split,
                    classes=classes,
                    params=params,
                    inputs=sim.simulate(classes, params),
                    label=BatchLabel(0, split, "uniform"),
                )
        train(_tiny_spec(run, sim, **overrides))
        return run

    return make
