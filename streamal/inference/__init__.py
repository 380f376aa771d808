"""Predict from measured patterns with a trained model: ``streamal predict`` and its Python API.

A training writes ``checkpoints/<stage>/best.pt`` and ``model.json`` beside it (the space, the
input grid and its axis, the normalisation, the model plugin and options, the simulator, the
test metrics: :mod:`streamal.train.checkpoint`). :class:`Predictor` loads both, reads pattern
files (:mod:`streamal.inference.readers`; apps add formats through the ``streamal.readers``
entry points), puts each pattern on the model's grid (unit conversion and count-conserving
rebinning, :mod:`streamal.inference.grid`) and returns class probabilities and parameters
± σ in physical units.

Example::

    from streamal.inference import Predictor

    predictor = Predictor("runs/diffraction-quickstart-20250101-120000")  # last stage
    result = predictor.predict("sample.gsa")
    print(result.describe())          # classes by probability, free parameters ± σ
    print(result.to_dict())           # the same as plain JSON
    for fit in predictor.refine(result):  # least squares with the training simulator
        print(fit.describe())         # diffraction: cell ± esd, zero shift, R_wp, GoF

Names are imported lazily: importing this package loads neither torch nor the readers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamal.inference.errors import InferenceError, ModelFilesError, PatternError
    from streamal.inference.grid import InputGrid, place_on_grid, rebin
    from streamal.inference.measurement import Measurement
    from streamal.inference.predictor import (
        ParameterEstimate,
        Prediction,
        Predictor,
        RefinementResult,
        predict,
    )
    from streamal.inference.readers import PatternReader, read_patterns

_WHERE = {
    "InferenceError": "errors",
    "ModelFilesError": "errors",
    "PatternError": "errors",
    "InputGrid": "grid",
    "place_on_grid": "grid",
    "rebin": "grid",
    "Measurement": "measurement",
    "ParameterEstimate": "predictor",
    "Prediction": "predictor",
    "Predictor": "predictor",
    "predict": "predictor",
    "RefinementResult": "predictor",
    "PatternReader": "readers",
    "read_patterns": "readers",
}

__all__ = [
    "InferenceError",
    "InputGrid",
    "Measurement",
    "ModelFilesError",
    "ParameterEstimate",
    "PatternError",
    "PatternReader",
    "Prediction",
    "Predictor",
    "RefinementResult",
    "place_on_grid",
    "predict",
    "read_patterns",
    "rebin",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"streamal.inference.{_WHERE[name]}"), name)
