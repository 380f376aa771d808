"""The data a search trains its candidates on: bundled digits, or a simulator's samples.

Driver side, :func:`prepare_data` turns the ``dataset`` option into a :class:`DataSpec`, the
plain record every training task gets:

* ``digits``: scikit-learn's 8x8 digits (10 classes, no regression target).
* ``store``: a finished campaign's samples (its run directory, or its ``store.h5`` inside
  one), split as the campaign labelled them (train / val; test is left out). The space comes
  from the run (a training's ``spec.json``, else its config's simulator).
* ``simulate``: phase 0's uniform train, validation and test sets of the config's
  ``simulator`` section, simulated on the ``sim`` pool through the scheduler (as every
  active-learning workflow's phase 0, into the run's ``store.h5``) *before* the search
  starts; a resumed run keeps what was stored.

Worker side, :func:`encoded_splits` reads the rows and encodes them with the candidate's
model plugin (``nas-genome``: its ``encoder`` model's input encoding, the space's scaled
regression targets), once per worker and dataset. With ``counts`` (``store`` and
``simulate``), each pattern first gets Poisson noise at that peak count
(:func:`poisson_counts`, the analogue of an XFEL beam's intensity), the same for a row
whichever candidate or split reads it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from streamal.workflows.base import Workflow

    from .options import NasOptions

__all__ = [
    "DataSpec",
    "Splits",
    "encoded_splits",
    "poisson_counts",
    "prepare_data",
    "read_rows",
    "store_space",
]

WHERE = "workflow.options.dataset"


@dataclass(frozen=True)
class DataSpec:
    """What a training task needs to load a search's data (plain, picklable).

    Attributes:
        name: ``digits`` or ``store`` (a simulated dataset is a store by then).
        seed: The digits split's seed; the Poisson noise's seed.
        store: The ``.h5`` sample store (``store``).
        train_rows, val_rows: Store rows of each split.
        space: The space's :meth:`~streamal.data.space.ParameterSpace.to_dict`.
        input_shape: Shape of one stored input.
        encoder: ``nas-genome``'s ``encoder`` option (``{name, options}``).
        counts: Peak counts of the Poisson noise on every pattern (``None``: none).
    """

    name: str
    seed: int = 0
    store: str | None = None
    train_rows: tuple[int, ...] = ()
    val_rows: tuple[int, ...] = ()
    space: dict[str, Any] | None = None
    input_shape: tuple[int, ...] = (1, 8, 8)
    encoder: dict[str, Any] | None = None
    counts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (:meth:`from_dict` inverts it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        for key in ("train_rows", "val_rows", "input_shape"):
            d[key] = tuple(d.get(key, ()))
        return cls(**d)

    def key(self) -> str:
        """What decides the encoded tensors (the worker cache's key)."""
        return json.dumps(self.to_dict(), sort_keys=True)


class Splits(NamedTuple):
    """Encoded train and validation tensors: inputs, class indices, targets ``(n, T)``."""

    x_train: Any
    c_train: Any
    t_train: Any
    x_val: Any
    c_val: Any
    t_val: Any


async def prepare_data(options: NasOptions, workflow: Workflow) -> DataSpec:
    """The :class:`DataSpec` of ``options.dataset``, simulating it first if asked.

    Raises:
        ConfigError: ``simulate`` without the config's ``simulator`` section, a store that
            cannot be read, or one without validation samples (one line naming the key).
    """
    d = options.dataset
    ctx = workflow.ctx
    if d.name == "digits":
        return DataSpec("digits", seed=ctx.config.seed)
    encoder = d.encoder.model_dump()
    if d.name == "simulate":
        if ctx.store is None or ctx.space is None:
            raise ConfigError(
                f"{WHERE}.name: simulate needs the config's simulator section (what to simulate)"
            )
        from streamal.workflows.base import SplitOptions

        sizes = SplitOptions(val_fraction=d.val_fraction, test_fraction=d.test_fraction)
        await asyncio.gather(*workflow.uniform_sets(d.samples_per_class, sizes))
        rows = _split_rows(ctx.store, str(ctx.store.path))
        return DataSpec(
            "store",
            seed=ctx.config.seed,
            store=str(ctx.store.path),
            space=ctx.space.to_dict(),
            input_shape=tuple(ctx.input_shape),
            encoder=encoder,
            counts=d.counts,
            **rows,
        )
    store_path, space = store_space(Path(d.path))
    from streamal.data.store import SampleStore

    try:
        with SampleStore(store_path, mode="r") as store:
            if list(store.class_names) != list(space.class_names):
                raise ConfigError(
                    f"{WHERE}.path: {store_path} holds classes {store.class_names}, its run's "
                    f"space {list(space.class_names)}"
                )
            rows = _split_rows(store, str(store_path))
            shape = tuple(store.input_shape)
    except (OSError, StoreError) as exc:
        raise ConfigError(f"{WHERE}.path: cannot read {store_path}: {exc}") from None
    return DataSpec(
        "store",
        seed=ctx.config.seed,
        store=str(store_path),
        space=space.to_dict(),
        input_shape=shape,
        encoder=encoder,
        counts=d.counts,
        **rows,
    )


def _split_rows(store: Any, where: str) -> dict[str, tuple[int, ...]]:
    """Train and validation rows of a store (its samples' split labels)."""
    rows = {s: tuple(int(r) for r in store.select(split=s).indices) for s in ("train", "val")}
    for split, got in rows.items():
        if not got:
            raise ConfigError(f"{WHERE}: {where} has no {split} samples to train a candidate")
    return {"train_rows": rows["train"], "val_rows": rows["val"]}


def store_space(path: Path) -> tuple[Path, ParameterSpace]:
    """``(store file, parameter space)`` of a run directory or a store inside one.

    The space is a training's (``checkpoints/*/spec.json``), else the one the run's
    ``config.yaml`` simulator section builds.

    Raises:
        ConfigError: No store there, or no run files to take the space from.
    """
    store = path / "store.h5" if path.is_dir() else path
    if not store.is_file():
        raise ConfigError(f"{WHERE}.path: no sample store at {store}")
    run_dir = store.parent
    from streamal.report.metrics import run_space

    space = run_space(run_dir)
    if space is not None:
        return store, space
    config = run_dir / "config.yaml"
    if config.is_file():
        import yaml

        from streamal import plugins

        sim = (yaml.safe_load(config.read_text()) or {}).get("simulator")
        if isinstance(sim, dict) and sim.get("name"):
            simulator = plugins.load("simulators", sim["name"])(**(sim.get("options") or {}))
            return store, simulator.space
    raise ConfigError(
        f"{WHERE}.path: {store} is not in a run directory with a training's spec.json or a "
        "config.yaml simulator section (where its parameter space comes from)"
    )


def poisson_counts(
    inputs: np.ndarray, rows: Sequence[int], counts: float, seed: int = 0
) -> np.ndarray:
    """Patterns with Poisson noise: each scaled to ``counts`` at its peak, then resampled.

    Args:
        inputs: ``(n, ...)`` non-negative patterns (negative values count as 0).
        rows: Each pattern's store row; row ``r`` draws from ``default_rng((seed, r))``,
            so its noise does not depend on what else is read with it.
        counts: Expected counts at each pattern's peak (> 0).
        seed: The run's seed.

    Returns:
        ``float32`` counts of ``inputs``' shape; an all-zero pattern stays zero.
    """
    if counts <= 0:
        raise ValueError(f"counts must be > 0, got {counts}")
    x = np.clip(np.asarray(inputs, dtype=np.float64), 0.0, None)
    if len(rows) != len(x):
        raise ValueError(f"{len(rows)} rows for {len(x)} patterns")
    out = np.empty(x.shape, dtype=np.float32)
    for i, (row, pattern) in enumerate(zip(rows, x, strict=True)):
        peak = pattern.max(initial=0.0)
        lam = pattern * (counts / peak) if peak > 0 else pattern
        out[i] = np.random.default_rng((int(seed), int(row))).poisson(lam)
    return out


def read_rows(data: DataSpec, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs, classes, params)`` of store ``rows``, with ``data.counts``' noise."""
    from streamal.data.reader import read_samples

    x, c, p = read_samples(data.store, list(rows))
    if data.counts is not None:
        x = poisson_counts(x, rows, data.counts, data.seed)
    return x, c, p


_CACHE: dict[str, Splits] = {}


def encoded_splits(data: DataSpec, plugin: Any) -> Splits:
    """The train and validation tensors of ``data``, encoded by ``plugin`` (a model plugin);
    kept for the worker's next candidates (the encoding depends on ``data`` alone)."""
    key = data.key()
    if key not in _CACHE:
        import torch

        parts = []
        for rows in (data.train_rows, data.val_rows):
            x, c, p = read_rows(data, rows)
            parts += [
                torch.as_tensor(plugin.encode_inputs(x)),
                torch.as_tensor(c, dtype=torch.int64),
                torch.as_tensor(plugin.encode_targets(c, p)),
            ]
        _CACHE.clear()
        _CACHE[key] = Splits(*parts)
    return _CACHE[key]
