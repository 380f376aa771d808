"""Checkpoints: plain state dicts saved atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """Save ``state`` (tensors, numbers, strings, dicts) to ``path`` atomically."""
    import torch

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without executing pickled code (``weights_only=True``)."""
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)
