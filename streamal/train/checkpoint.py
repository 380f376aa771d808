"""Checkpoints: plain state dicts saved atomically (fsynced), loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamal import durable


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """Save ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically: a reader
    or a crash sees the previous checkpoint or this one, never a torn file."""
    return durable.save_torch(path, state)


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
