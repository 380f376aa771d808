"""Plain ``x y [e]`` text files, as streamal's built-in text reader reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamal import durable


def write_xye(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    e: np.ndarray | None = None,
    *,
    unit: str = "tof",
    comment: str = "",
) -> Path:
    """Write columns ``x y [e]`` with a ``# x_unit: UNIT`` comment (atomically).

    Args:
        path: The file (``.xye``, ``.xy``, ``.txt``, ``.csv``: always blank separated).
        x: ``(n,)`` positions; ``y``: intensities; ``e``: errors (optional column).
        unit: The x unit's name (``tof`` in µs, ``d`` in Å).
        comment: An extra comment line.
    """
    cols = [np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)]
    if e is not None:
        cols.append(np.asarray(e, dtype=np.float64))
    head = [f"# x_unit: {unit}"] + ([f"# {comment}"] if comment else [])
    rows = [" ".join(f"{v:.17g}" for v in row) for row in zip(*cols, strict=True)]
    return durable.write_text(path, "\n".join(head + rows) + "\n")
