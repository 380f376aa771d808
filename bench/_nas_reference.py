"""Test-set comparison of searched genomes with the reference ALBAND CNN (``bench/nas.py``).

A nas run on a simulated dataset leaves its ``store.h5`` with train, validation and test
splits. :func:`held_out_metrics` trains one architecture (a searched genome, or the ALBAND CNN
as :func:`streamal_nas.reference.alband_options`' genome) on that run's training split for
the search's full budget (its max epochs, batch, learning rate, seed; no early stop) and
returns its metrics on the test split, which the search never saw, with the same Poisson
noise (``counts``) the search trained on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAE_PREFIX", "beats", "held_out_metrics"]

MAE_PREFIX = "mae_"
"""Prefix of the per-parameter mean-absolute-error metrics (``mae_a_A``, ``mae_alpha_deg``)."""


def _data(run_dir: Path, config: Mapping[str, Any]) -> tuple[Any, tuple[int, ...]]:
    """The run's :class:`~streamal_nas.datasets.DataSpec` and its test rows."""
    from streamal import plugins
    from streamal.data.store import SampleStore
    from streamal_nas.datasets import DataSpec

    sim = config["simulator"]
    space = plugins.load("simulators", sim["name"])(**(sim.get("options") or {})).space
    dataset = config["workflow"]["options"]["dataset"]
    store = run_dir / "store.h5"
    with SampleStore(store, mode="r") as s:
        rows = {
            split: tuple(int(r) for r in s.select(split=split).indices)
            for split in ("train", "val", "test")
        }
        shape = tuple(s.input_shape)
    data = DataSpec(
        "store",
        seed=int(config.get("seed", 0)),
        store=str(store),
        train_rows=rows["train"],
        val_rows=rows["val"],
        space=space.to_dict(),
        input_shape=shape,
        encoder=dataset.get("encoder") or {},
        counts=dataset.get("counts"),
    )
    return data, rows["test"]


def held_out_metrics(
    run_dir: Path,
    config: Mapping[str, Any],
    genome: Mapping[str, Any],
    channels: int | list[int],
    network: Mapping[str, Any],
) -> dict[str, Any]:
    """Train ``genome`` on ``run_dir``'s training split for the search's budget; test it.

    Args:
        run_dir: A finished nas run on a ``simulate`` (or ``store``) dataset.
        config: The run's config (its ``workflow.options``, ``phases[0].epochs``, ``seed``).
        genome: :func:`~streamal_nas.genome.genome_to_dict` of the architecture.
        channels, network: Its ``nas-genome`` options.

    Returns:
        The test split's metrics (``accuracy``, ``class_loss``, ``mse``, ``mae_*``) plus
        ``flops`` (one forward pass), ``params``, ``epochs`` and ``val_accuracy``.
    """
    import torch

    from streamal.train.checkpoint import load_checkpoint
    from streamal_nas.datasets import read_rows
    from streamal_nas.evaluate import train_candidate
    from streamal_nas.genome import genome_from_dict
    from streamal_nas.learners import candidate_learner

    opts = config["workflow"]["options"]
    data, test_rows = _data(run_dir, config)
    with tempfile.TemporaryDirectory(prefix="nas-test-") as tmp:
        spec = {
            "candidate": "test",
            "genome": dict(genome),
            "max_epochs": float(config["workflow"]["phases"][0]["epochs"]),
            "epochs_per_iteration": 1.0,
            "batch_size": opts["batch_size"],
            "learning_rate": opts["learning_rate"],
            "channels": channels,
            "network": dict(network),
            "data": data.to_dict(),
            "fitness": opts.get("fitness", "score"),
            "seed": int(config.get("seed", 0)),
            "records_path": str(Path(tmp) / "records.jsonl"),
            "decisions_dir": None,
            "prediction": None,
            "checkpoint": str(Path(tmp) / "model.pt"),
            "provider_checkpoint": None,
            "gpu": False,
            "fence": None,
        }
        out = train_candidate(spec)
        state = load_checkpoint(spec["checkpoint"])["model"]
    learner = candidate_learner(data, genome_from_dict(dict(genome)), channels, network)
    model = learner.build()
    model.load_state_dict(state)
    model.eval()
    x, c, p = read_rows(data, test_rows)
    with torch.no_grad():
        metrics = learner.metrics(
            model(torch.as_tensor(learner.encode_inputs(x))),
            torch.as_tensor(c, dtype=torch.int64),
            torch.as_tensor(learner.encode_targets(c, p)),
        )
    return {
        **metrics,
        "flops": out["flops"],
        "params": out["params"],
        "epochs": out["epochs"],
        "val_accuracy": (out["metrics"] or {}).get("accuracy"),
    }


def beats(found: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
    """Whether ``found`` has fewer FLOPs, at least the reference's test accuracy and at most
    its test MSE (of the scaled lattice parameters)."""
    return (
        found["flops"] < reference["flops"]
        and found["accuracy"] >= reference["accuracy"]
        and found["mse"] <= reference["mse"]
    )
