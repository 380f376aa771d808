"""Checkpoints: plain state dicts saved atomically (fsynced), loaded with ``weights_only=True``;
and ``model.json``, the description beside ``best.pt`` that makes it usable on its own.

``best.pt`` holds ``model`` (the state dict), ``epoch``, ``metrics`` (validation),
``model_name``, ``model_options`` and ``stage``: tensors and plain Python values only, so it
loads with ``torch.load(path, weights_only=True)`` (no pickled code runs).
:func:`save_checkpoint` refuses anything else.

``model.json`` (:data:`MODEL_FILE`, written by rank 0 each time ``best.pt`` is, and again with
the test metrics) says what the network expects and what it predicts; ``streamal predict``
(:mod:`streamal.inference`) needs nothing else. Its keys (:func:`model_description`):

``format`` (``"streamal-model"``), ``format_version`` (1), ``streamal_version``,
``checkpoint`` (``"best.pt"``), ``stage``, ``epoch`` (of ``best.pt``),
``model`` (``name``, ``options``), ``space`` (:meth:`ParameterSpace.to_dict
<streamal.data.space.ParameterSpace.to_dict>`: classes, free parameters, ranges, units),
``targets`` (the regression targets in output order: ``names``, ``low``, ``high``, ``units``),
``input`` (``shape``; ``axis``: the simulator's x axis or ``None``; ``encoding``: how
``encode_inputs`` normalises a pattern), ``output`` (``sigma``: how the σ of
``predict`` are made, or ``None``), ``simulator`` (``name``, ``options``, or ``None``),
``run`` (``name``, ``fingerprint``), ``training`` (``n_train``, ``epochs``, ``seed``,
``batch_size``, ``learning_rate``), ``metrics`` (``val`` of ``best.pt``, ``test`` once known).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamal import durable

if TYPE_CHECKING:
    from streamal.train.model import ModelPlugin
    from streamal.train.spec import TrainSpec

MODEL_FILE = "model.json"
"""The description written beside ``best.pt``."""
MODEL_FORMAT = "streamal-model"
MODEL_FORMAT_VERSION = 1


def _plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars and arrays made plain (Python numbers, tensors).

    Raises:
        TypeError: Something ``torch.load(weights_only=True)`` could not read back.
    """
    import numpy as np
    import torch

    if isinstance(value, (torch.Tensor, torch.dtype, torch.device, str, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        plain = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return plain if isinstance(value, list) else tuple(plain)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (int, float)):
        return value
    raise TypeError(
        f"checkpoint value {where} is a {type(value).__name__}: only tensors, numbers, strings, "
        "lists and dicts load with weights_only=True"
    )


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """Save ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically: a reader
    or a crash sees the previous checkpoint or this one, never a torn file.

    Raises:
        TypeError: A value would need pickled code to load (an arbitrary object); numpy
            scalars and arrays are converted to Python numbers and tensors instead.
    """
    return durable.save_torch(path, {k: _plain(v, k) for k, v in state.items()})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without executing pickled code (``weights_only=True``).

    Raises:
        OSError: ``path`` does not exist or cannot be read.
        durable.TornFileError: ``path`` exists but is not a readable checkpoint.
    """
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # missing, unreadable: not a question of the file's content
        raise
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise durable.TornFileError(f"{path}: not a readable checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise durable.TornFileError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def _streamal_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("streamal")
    except metadata.PackageNotFoundError:
        import streamal

        return str(getattr(streamal, "__version__", "unknown"))


def input_encoding(plugin: ModelPlugin) -> str:
    """How ``plugin.encode_inputs`` normalises a pattern, in words: the plugin's
    ``input_encoding`` attribute if it has one, else the first paragraph of the method's
    docstring."""
    described = getattr(plugin, "input_encoding", None)
    if isinstance(described, str) and described:
        return described
    doc = inspect.getdoc(type(plugin).encode_inputs) or ""
    return " ".join(doc.split("\n\n")[0].split()) or "not described"


def resolved_options(plugin: ModelPlugin, given: Mapping[str, Any]) -> dict[str, Any]:
    """The plugin's options with its defaults filled in (so a later change of a default
    does not change how a saved model is read), else the options given."""
    options = getattr(plugin, "options", None)
    if hasattr(options, "model_dump"):
        return dict(options.model_dump(mode="json"))
    return dict(given)


def model_description(
    spec: TrainSpec,
    plugin: ModelPlugin,
    *,
    epoch: int,
    val: Mapping[str, float] | None,
    test: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The content of ``model.json`` for the ``best.pt`` of ``spec``'s training.

    Args:
        spec: The training (its ``metadata`` gives the simulator and the input axis).
        plugin: The model plugin built from ``spec``.
        epoch: The epoch ``best.pt`` was saved at.
        val: Its validation metrics (empty without a validation split).
        test: The test metrics, once known.

    Returns:
        Plain JSON (the keys are listed in the module docstring).
    """
    from streamal.train.targets import regression_scale

    names, low, high = regression_scale(plugin.space)
    meta = dict(spec.metadata or {})
    note = getattr(plugin, "uncertainty_note", None)
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "streamal_version": _streamal_version(),
        "checkpoint": "best.pt",
        "stage": spec.stage,
        "epoch": int(epoch),
        "model": {"name": spec.model, "options": resolved_options(plugin, spec.model_options)},
        "space": dict(spec.space),
        "targets": {
            "names": list(names),
            "low": [float(v) for v in low],
            "high": [float(v) for v in high],
            "units": [plugin.space.unit(p) for p in names],
        },
        "input": {
            "shape": [int(d) for d in spec.input_shape],
            "axis": meta.get("input_axis"),
            "encoding": input_encoding(plugin),
        },
        "output": {"sigma": note if isinstance(note, str) else None},
        "simulator": meta.get("simulator"),
        "run": meta.get("run"),
        "training": {
            "n_train": len(spec.train_rows),
            "epochs": spec.epochs,
            "seed": spec.seed,
            "batch_size": spec.batch_size,
            "learning_rate": spec.learning_rate,
        },
        "metrics": {
            "val": {k: float(v) for k, v in (val or {}).items()},
            "test": None if test is None else {k: float(v) for k, v in test.items()},
        },
    }


def write_model_description(out_dir: str | Path, description: Mapping[str, Any]) -> Path:
    """Write ``model.json`` into ``out_dir`` atomically."""
    return durable.write_json(Path(out_dir) / MODEL_FILE, dict(description))
