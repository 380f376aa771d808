"""The data a search trains its candidates on: bundled digits, or a simulator's samples.

Driver side, :func:`prepare_data` turns the ``dataset`` option into a :class:`DataSpec`, the
plain record every training task gets:

* ``digits``: scikit-learn's 8x8 digits (10 classes, no regression target).
* ``store``: a finished campaign's samples (its run directory, or its ``store.h5`` inside
  one), split as the campaign labelled them (train / val; test is left out). The space comes
  from the run (a training's ``spec.json``, else its config's simulator).
* ``simulate``: phase 0's uniform train, validation and test sets of the config's
  ``simulator`` section, simulated on the ``sim`` pool through the scheduler (as every
  active-learning workflow's phase 0, into the run's ``store.h5``); a resumed run keeps what
  was stored. With ``policy_run`` the training set is drawn instead by a finished
  active-learning campaign's policy, fitted on its final model
  (:mod:`streamal.policy.campaign`). The search starts once the sets are stored, or with
  ``overlap_epochs`` once the validation set is: the first candidates then train while the
  training set is still being simulated (:mod:`.data_feed`).

Worker side, :func:`encoded_splits` reads the rows and encodes them with the candidate's
model plugin (``nas-genome``: its ``encoder`` model's input encoding, the space's scaled
regression targets), once per worker and dataset. With ``counts`` (``store`` and
``simulate``), each pattern first gets Poisson noise at that peak count
(:func:`poisson_counts`, the analogue of an XFEL beam's intensity), the same for a row
whichever candidate or split reads it.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from streamal.workflows.base import Workflow

    from .data_feed import GrowingTrainSet
    from .options import NasOptions

__all__ = [
    "DataSpec",
    "Splits",
    "encoded_rows",
    "encoded_splits",
    "growing_train_set",
    "poisson_counts",
    "prepare_data",
    "read_rows",
    "store_space",
]

WHERE = "workflow.options.dataset"
TRAIN_DRAWS = "nas/train-draws.npz"
"""Training draws of a ``policy_run`` (relative to the run directory)."""


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
        feed: Training rows still being simulated (``train_rows`` is then empty):
            ``ready_file``, ``total`` draws, ``overlap_epochs`` (:mod:`.data_feed`).
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
    feed: dict[str, Any] | None = None

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


async def prepare_data(
    options: NasOptions, workflow: Workflow
) -> tuple[DataSpec, asyncio.Task | None]:
    """The :class:`DataSpec` of ``options.dataset``, simulating it first if asked.

    Returns:
        ``(spec, feed)``: ``feed`` is ``None``, or with ``simulate``'s ``overlap_epochs`` the
        task still simulating the training and test sets (:meth:`.data_feed.TrainFeed.run`;
        await it, its errors raise).

    Raises:
        ConfigError: ``simulate`` without the config's ``simulator`` section, a store that
            cannot be read, or one without validation samples (one line naming the key).
    """
    d = options.dataset
    ctx = workflow.ctx
    if d.name == "digits":
        return DataSpec("digits", seed=ctx.config.seed), None
    encoder = d.encoder.model_dump()
    if d.name == "simulate":
        return await _simulate(d, workflow, encoder)
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
    ), None


async def _simulate(
    d: Any, workflow: Workflow, encoder: dict[str, Any]
) -> tuple[DataSpec, asyncio.Task | None]:
    """``prepare_data`` of the ``simulate`` dataset ``d``."""
    from streamal.workflows.base import SplitOptions

    from .data_feed import READY_FILE, TrainFeed

    ctx = workflow.ctx
    store, space = ctx.store, ctx.space
    if store is None or space is None:
        raise ConfigError(
            f"{WHERE}.name: simulate needs the config's simulator section (what to simulate)"
        )
    sizes = SplitOptions(val_fraction=d.val_fraction, test_fraction=d.test_fraction)
    spec = DataSpec(
        "store",
        seed=ctx.config.seed,
        store=str(store.path),
        space=space.to_dict(),
        input_shape=tuple(ctx.input_shape),
        encoder=encoder,
        counts=d.counts,
    )
    total = d.samples_per_class * len(space.class_names)
    interleave = bool(d.overlap_epochs)
    train, val, test = workflow.uniform_sets(d.samples_per_class, sizes, interleave=interleave)
    if d.policy_run is not None:
        train.close()  # never started: the campaign's policy draws the training set instead
        train = await _campaign_train_set(d.policy_run, workflow, total)
    if not d.overlap_epochs:
        await asyncio.gather(train, val, test)
        return replace(spec, **_split_rows(store, str(store.path))), None
    val_task = asyncio.ensure_future(val)  # first in the sim pool's queue
    jobs = [val_task, asyncio.ensure_future(train), asyncio.ensure_future(test)]
    chunk = ctx.config.simulator.chunk_size
    feed_file = ctx.run_dir / READY_FILE
    feed = asyncio.ensure_future(TrainFeed(store, feed_file, total, chunk).run(jobs))
    await asyncio.wait([val_task, feed], return_when=asyncio.FIRST_COMPLETED)
    if feed.done() and feed.exception() is not None:
        feed.result()  # raises what stopped the simulations
    val_rows = tuple(int(r) for r in store.select(split="val").indices)
    if not val_rows:
        feed.cancel()
        raise ConfigError(f"{WHERE}: every validation sample failed to simulate")
    ready = {"ready_file": str(feed_file), "total": total, "overlap_epochs": d.overlap_epochs}
    return replace(spec, val_rows=val_rows, feed=ready), feed


async def _campaign_train_set(run: str, workflow: Workflow, total: int) -> Any:
    """The coroutine simulating ``total`` training draws of the campaign in ``run``'s policy,
    fitted on its final model (:mod:`streamal.policy.campaign`; drawn once, saved in
    ``nas/train-draws.npz`` for a resumed run), in random order."""
    from streamal import durable
    from streamal.data.label import BatchLabel
    from streamal.policy.campaign import campaign_policy

    ctx = workflow.ctx
    path = ctx.run_dir / TRAIN_DRAWS
    try:
        with np.load(path) as saved:
            classes, params, name = saved["classes"], saved["params"], str(saved["policy"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):  # none, or torn
        try:
            source = campaign_policy(run, ctx.space)
        except ConfigError as exc:
            raise ConfigError(f"{WHERE}.policy_run: {exc}") from None
        policy = await source.fitted(ctx.space, ctx.scheduler, stage="AL0")
        classes, params = policy.sample_total(total, workflow.rng(0, 9))
        order = workflow.rng(0, 10).permutation(len(classes))
        classes, params, name = classes[order], params[order], policy.name
        buf = io.BytesIO()
        np.savez(buf, classes=classes, params=params, policy=name, run=str(run))
        path.parent.mkdir(parents=True, exist_ok=True)
        durable.write_bytes(path, buf.getvalue())
    label = BatchLabel(0, "train", name)
    return workflow.simulate("p0/train", classes, params, label, stage="S0")


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


def encoded_rows(data: DataSpec, plugin: Any, rows: Sequence[int]) -> tuple[Any, Any, Any]:
    """``(inputs, classes, targets)`` tensors of store ``rows``, encoded by ``plugin``."""
    import torch

    x, c, p = read_rows(data, rows)
    return (
        torch.as_tensor(plugin.encode_inputs(x)),
        torch.as_tensor(c, dtype=torch.int64),
        torch.as_tensor(plugin.encode_targets(c, p)),
    )


_CACHE: dict[str, Splits] = {}
_GROWING: dict[str, GrowingTrainSet] = {}


def encoded_splits(data: DataSpec, plugin: Any) -> Splits:
    """The train and validation tensors of ``data``, encoded by ``plugin`` (a model plugin);
    kept for the worker's next candidates (the encoding depends on ``data`` alone). With a
    ``feed`` the training tensors are empty: :func:`growing_train_set` has them."""
    key = data.key()
    if key not in _CACHE:
        val = encoded_rows(data, plugin, data.val_rows)
        train = encoded_rows(data, plugin, data.train_rows) if not data.feed else None
        _CACHE.clear()
        _CACHE[key] = Splits(*(train or tuple(t[:0] for t in val)), *val)
    return _CACHE[key]


def growing_train_set(data: DataSpec, plugin: Any) -> GrowingTrainSet:
    """The worker's :class:`~.data_feed.GrowingTrainSet` of ``data`` (which has a ``feed``),
    kept for its next candidates."""
    from .data_feed import GrowingTrainSet

    key = data.key()
    if key not in _GROWING:
        _GROWING.clear()
        _GROWING[key] = GrowingTrainSet(
            data.feed or {}, lambda rows: encoded_rows(data, plugin, rows)
        )
    return _GROWING[key]
