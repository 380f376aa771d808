"""Shared figure setup: the non-interactive backend, and saving a figure within bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: No figure is larger than this (pixels), whatever the run's size.
MAX_PX = (2000, 1600)
DPI = 120


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> Path:
    """Save ``fig`` to ``path`` at :data:`DPI`, shrunk to fit :data:`MAX_PX`; close it."""
    plt = pyplot()
    w, h = fig.get_size_inches()
    scale = min(1.0, MAX_PX[0] / (w * DPI), MAX_PX[1] / (h * DPI))
    if scale < 1.0:
        fig.set_size_inches(w * scale, h * scale)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
