"""The model plugin interface: what the generic DDP trainer needs to know about a model.

A model plugin (entry-point group ``streamal.models``) turns stored samples into tensors,
builds the network, and defines the loss and the metrics::

    class MyModel(ModelPlugin):
        name = "my-model"
        Options = MyOptions            # pydantic model of the config's ``model.options``

        def build(self): ...           # -> torch.nn.Module
        def encode_inputs(self, x): ...
        def encode_targets(self, classes, params): ...
        def loss(self, output, classes, targets): ...   # -> (loss, {"part": float})
        def metrics(self, output, classes, targets): ... # -> {"name": float}

The module imports no torch at import time; plugins import it inside their methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from streamal.data.space import ParameterSpace
from streamal.plugins import PluginOptions


class ModelPlugin(ABC):
    """Network, encodings, loss and metrics for one kind of sample.

    Args:
        space: The run's parameter space (classes in play and their parameters).
        input_shape: Shape of one stored input.
        **options: Validated against :attr:`Options`.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = PluginOptions

    def __init__(self, space: ParameterSpace, input_shape: Sequence[int], **options: Any) -> None:
        self.space = space
        self.input_shape = tuple(input_shape)
        self.options = self.Options.model_validate(options)

    @abstractmethod
    def build(self) -> Any:
        """A fresh ``torch.nn.Module``."""

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Stored inputs → network inputs (float32). Identity by default."""
        return np.asarray(inputs, dtype=np.float32)

    @abstractmethod
    def encode_targets(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Stored labels → regression targets ``(n, T)`` float32."""

    @abstractmethod
    def loss(self, output: Any, classes: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        """Scalar loss tensor (mean over the batch) and its parts as floats."""

    @abstractmethod
    def metrics(self, output: Any, classes: Any, targets: Any) -> dict[str, float]:
        """Evaluation metrics over a whole split (output concatenated over batches)."""

    def selection_score(self, metrics: dict[str, float]) -> float:
        """Lower is better: picks the best-validation checkpoint (class loss + MSE)."""
        return metrics.get("class_loss", 0.0) + metrics.get("mse", 0.0)

    def uncertainty(self, output: Any) -> dict[str, np.ndarray]:
        """Per-sample uncertainty measures used by active-learning policies."""
        raise NotImplementedError(f"{self.name} reports no uncertainty")
