"""streamal: asynchronous simulate → train → choose campaigns on HPC nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamal.inference import Predictor, predict

__version__ = "0.1.0"
__all__ = ["Predictor", "__version__", "predict"]


def __getattr__(name: str) -> Any:
    """``streamal.Predictor`` and ``streamal.predict`` (:mod:`streamal.inference`), imported
    on first use so that ``import streamal`` stays light."""
    if name in ("Predictor", "predict"):
        from streamal import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'streamal' has no attribute {name!r}")
