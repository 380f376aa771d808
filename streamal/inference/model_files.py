"""Finding a trained model: a run directory, a stage folder, or a ``best.pt``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.inference.errors import ModelFilesError
from streamal.train.checkpoint import MODEL_FILE

CHECKPOINT = "best.pt"


@dataclass(frozen=True)
class ModelFiles:
    """The files of one trained model.

    Attributes:
        checkpoint: Its ``best.pt``.
        description: ``model.json``'s content (for a training from before ``model.json``:
            what its ``spec.json`` says, without an input axis).
        stage: The training stage (``T3``), or ``""`` if unknown.
    """

    checkpoint: Path
    description: dict[str, Any]
    stage: str


def _stage_key(name: str) -> tuple[str, int, str]:
    """Natural order of stage names: ``T2`` before ``T10``."""
    m = re.match(r"(\D*)(\d*)(.*)", name)
    assert m is not None  # matches every string
    prefix, number, rest = m.groups()
    return prefix, int(number) if number else -1, rest


def _stages(run_dir: Path) -> list[str]:
    """Stages of a run with a ``best.pt``, in training order: ``metrics.json``'s order, then
    any others by name."""
    root = run_dir / "checkpoints"
    have = sorted((p.name for p in root.iterdir() if (p / CHECKPOINT).is_file()), key=_stage_key)
    logged = durable.read_json(run_dir / "metrics.json", default={})
    order = [
        str(p.get("phase"))
        for p in (logged.get("phases", []) if isinstance(logged, dict) else [])
        if isinstance(p, dict)
    ]
    listed = [s for s in order if s in have]
    return [s for s in have if s not in listed] + listed


def _description(folder: Path) -> dict[str, Any]:
    """``model.json`` of a stage folder, else one made from its ``spec.json``."""
    try:
        found = durable.read_json(folder / MODEL_FILE, default=None)
    except OSError as exc:
        raise ModelFilesError(f"{folder / MODEL_FILE}: cannot read ({exc})") from None
    if isinstance(found, dict):
        return found
    spec = durable.read_json(folder / "spec.json", default=None)
    if not isinstance(spec, dict):
        raise ModelFilesError(
            f"{folder}: no readable {MODEL_FILE} (nor spec.json) beside {CHECKPOINT}; it says "
            "which model, space and input grid the checkpoint is for"
        )
    try:
        return {
            "stage": spec.get("stage", ""),
            "model": {"name": spec["model"], "options": spec.get("model_options", {})},
            "space": spec["space"],
            "input": {"shape": list(spec["input_shape"]), "axis": None, "encoding": None},
            "output": {"sigma": None},
            "metrics": {"val": {}, "test": None},
            "from_spec": True,
        }
    except (KeyError, TypeError) as exc:
        raise ModelFilesError(
            f"{folder / 'spec.json'}: lacks {exc}; cannot describe the model"
        ) from None


def find_model(path: str | Path, stage: str | None = None) -> ModelFiles:
    """The model at ``path``: a run directory (its last trained stage, or ``stage``), a stage
    folder (``checkpoints/T3``) or a ``best.pt``.

    Raises:
        ModelFilesError: Nothing there, no trained stage, no such stage, or no description.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFilesError(f"{path}: no such run directory or checkpoint")
    if path.is_file():
        if stage:
            raise ModelFilesError(f"{path}: --stage applies to a run directory, not a checkpoint")
        folder, checkpoint = path.parent, path
    elif (path / CHECKPOINT).is_file():
        if stage and stage != path.name:
            raise ModelFilesError(f"{path}: a stage folder; --stage {stage} applies to a run")
        folder, checkpoint = path, path / CHECKPOINT
    elif (path / "checkpoints").is_dir():
        stages = _stages(path)
        if not stages:
            raise ModelFilesError(f"{path}: no trained model yet (no checkpoints/*/{CHECKPOINT})")
        if stage is not None and stage not in stages:
            raise ModelFilesError(
                f"{path}: no stage {stage!r} with a {CHECKPOINT}; trained: {', '.join(stages)}"
            )
        folder = path / "checkpoints" / (stage or stages[-1])
        checkpoint = folder / CHECKPOINT
    else:
        raise ModelFilesError(
            f"{path}: not a run directory (no checkpoints/), a stage folder or a {CHECKPOINT}"
        )
    description = _description(folder)
    return ModelFiles(checkpoint, description, str(description.get("stage") or folder.name))
