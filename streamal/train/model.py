"""The model plugin contract: what the DDP trainer and the AL prediction task need of a model.

A model plugin (entry-point group ``streamal.models``, or an import path
``package.module:Class``) turns stored samples into tensors, builds the network, and defines
the loss, the metrics and the per-sample uncertainty an active-learning policy samples by.
``generic-mlp`` (:mod:`streamal.train.generic`) fits any simulator's float32 output with no
model code; write a plugin when the data deserves its own network.

How it is called (``streamal/train/rank.py``, ``streamal/train/predict.py``):

1. Every DDP rank and every prediction worker constructs ``Plugin(space, input_shape,
   **options)`` from the JSON form of the space (``ParameterSpace.from_dict``), then calls
   :meth:`ModelPlugin.build` once; the trainer loads state dicts saved by other processes
   into it, so equal arguments must build equal architectures.
2. Stored rows are encoded with :meth:`~ModelPlugin.encode_inputs` and
   :meth:`~ModelPlugin.encode_targets` (numpy in, float32 numpy out, one row per sample).
3. Training: ``loss(module(x), classes, targets)`` on one mini-batch of torch tensors on the
   rank's device, in train mode, then ``backward()`` through DistributedDataParallel (every
   parameter must get a gradient).
4. Evaluation: ``module(x)`` in eval mode without gradients, batch by batch and rank by rank,
   the outputs concatenated along dim 0 into one CPU tensor; ``metrics(output, classes,
   targets)`` on the whole split; :meth:`~ModelPlugin.selection_score` of those metrics picks
   ``best.pt`` (lower is better).
5. Reports (optional): after training, rank 0 evaluates ``best.pt`` on the test split and,
   if the plugin implements :meth:`~ModelPlugin.predict`, saves its predictions in physical
   units beside the checkpoint (``test_predictions.npz``, plotted by ``streamal report``).
6. Active learning: ``uncertainty(module(x))`` per batch of study rows (CPU, eval mode, no
   gradients) gives per-sample arrays; a policy reads the keys it needs, which the class
   declares in :attr:`ModelPlugin.uncertainties` so that ``validate`` can check the pairing
   before a run starts.

Standard uncertainty keys (:data:`STANDARD_UNCERTAINTIES`): ``variance``, the predictive
variance of the regression per sample (≥ 0); ``entropy``, the entropy of the class prediction
per sample in nats (0 ≤ H ≤ log K). Per-parameter metrics carry the parameter's unit from the
space (:func:`streamal.train.targets.metric_name`: ``mae_a_A``; ``mae_centre`` with no unit).

:func:`check_model` is the conformance check every model plugin should pass in its tests.
The module imports no torch at import time; plugins import it inside their methods.

A complete plugin to copy: ``examples/models/linear_model.py`` (one linear layer with class
logits, scaled parameters and a log-variance; it passes :func:`check_model`). The README's
"Plugging in → a model" shows it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from streamal.data.space import ParameterSpace
from streamal.plugins import PluginOptions

STANDARD_UNCERTAINTIES: Mapping[str, str] = {
    "variance": "predictive variance of the regression, per sample (>= 0)",
    "entropy": "entropy of the class prediction, per sample, in nats (0 <= H <= log K)",
}
"""The uncertainty keys policies know, and what each means."""


class ModelPlugin(ABC):
    """Network, encodings, loss, metrics and uncertainty for one kind of sample.

    Subclasses set :attr:`name`, optionally :attr:`Options` and :attr:`uncertainties`, and
    implement :meth:`build`, :meth:`encode_targets`, :meth:`loss` and :meth:`metrics`
    (:meth:`encode_inputs`, :meth:`selection_score`, :meth:`uncertainty` and :meth:`predict`
    have defaults).
    The constructor only derives what the methods need from its arguments; it is called
    in every training rank and prediction worker.

    Args:
        space: The run's parameter space (classes in play, their parameters and units).
        input_shape: Shape of one stored input (the simulator's ``output_shape``).
        **options: The config's ``model.options``, validated against :attr:`Options`.

    Attributes:
        name: Entry-point name.
        Options: Pydantic model of the options (a :class:`~streamal.plugins.PluginOptions`
            subclass: unknown keys are errors).
        uncertainties: The keys :meth:`uncertainty` returns (see
            :data:`STANDARD_UNCERTAINTIES`); empty for a model that reports none. Declared on
            the class so that ``validate`` can match it against a policy's needs without
            building the model.
        space: The ``space`` argument.
        input_shape: The ``input_shape`` argument, as a tuple.
        options: The validated options (an instance of :attr:`Options`).
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = PluginOptions
    uncertainties: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, space: ParameterSpace, input_shape: Sequence[int], **options: Any) -> None:
        self.space = space
        self.input_shape = tuple(int(d) for d in input_shape)
        self.options = self.Options.model_validate(options)

    @abstractmethod
    def build(self) -> Any:
        """A fresh network.

        Returns:
            A ``torch.nn.Module`` whose ``forward`` takes one float32 tensor ``(b, ...)`` (a
            batch of :meth:`encode_inputs` rows) and returns one float32 tensor ``(b, ...)``:
            the first dimension is the batch, because outputs are concatenated along it. In
            eval mode a row's output depends only on its own input. Every parameter must take
            part in :meth:`loss` (DDP runs with ``find_unused_parameters`` off).
        """

    def encode_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Stored inputs → network inputs. Identity (as float32) by default.

        Args:
            inputs: ``(n, *input_shape)`` simulator outputs as stored (float32).

        Returns:
            A float32 array ``(n, ...)``, each row computed from its own input only (the
            trainer encodes whole splits, the prediction task batches of study rows).
        """
        return np.asarray(inputs, dtype=np.float32)

    @abstractmethod
    def encode_targets(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Stored labels → targets for :meth:`loss` and :meth:`metrics`.

        Args:
            classes: ``(n,)`` int64 class indices into ``space.classes``.
            params: ``(n, len(space.param_names))`` float64 full parameter vectors (tied
                parameters included).

        Returns:
            A float32 array ``(n, T)``, ``T`` fixed by the space (may be 0).
        """

    @abstractmethod
    def loss(self, output: Any, classes: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        """The training loss of one mini-batch.

        Args:
            output: The network's output tensor ``(b, ...)`` in train mode, with gradients,
                on the rank's device.
            classes: ``(b,)`` int64 tensor of class indices.
            targets: ``(b, T)`` float32 tensor from :meth:`encode_targets`.

        Returns:
            ``(loss, parts)``: a scalar tensor with a gradient (the mean over the batch) and
            its parts ``{part: value}``, Python floats or detached scalar tensors (these
            spare the step a wait for the GPU), averaged over an epoch's batches
            into the history as ``train_<part>``.
        """

    @abstractmethod
    def metrics(self, output: Any, classes: Any, targets: Any) -> dict[str, float]:
        """Evaluation metrics of a whole split.

        Args:
            output: The eval-mode outputs of every batch of the split, concatenated along
                dim 0 into one CPU tensor without gradients.
            classes: ``(n,)`` int64 CPU tensor.
            targets: ``(n, T)`` float32 CPU tensor.

        Returns:
            Finite Python floats ``{name: value}`` (the history's ``val_<name>``, the test
            report). Per-parameter metrics are named with the parameter's unit from the space,
            :func:`streamal.train.targets.metric_name` (``mae_a_A``).
        """

    def selection_score(self, metrics: dict[str, float]) -> float:
        """The score that picks the best-validation checkpoint; lower is better.

        Args:
            metrics: What :meth:`metrics` returned on the validation split.

        Returns:
            A float; by default ``class_loss + mse`` (each 0 when absent).
        """
        return float(metrics.get("class_loss", 0.0) + metrics.get("mse", 0.0))

    def uncertainty(self, output: Any) -> dict[str, np.ndarray]:
        """Per-sample uncertainty measures, read by active-learning policies.

        Args:
            output: The eval-mode output tensor ``(n, ...)`` of a batch of study rows (CPU,
                no gradients).

        Returns:
            Exactly the keys declared in :attr:`uncertainties`, each a finite, non-negative
            ``(n,)`` array. Standard keys (:data:`STANDARD_UNCERTAINTIES`): ``variance``
            (regression predictive variance) and ``entropy`` (class-prediction entropy in
            nats).

        Raises:
            NotImplementedError: By default: the model reports no uncertainty (and declares
                none).
        """
        raise NotImplementedError(f"{self.name or type(self).__name__} reports no uncertainty")

    def predict(self, output: Any) -> dict[str, np.ndarray]:
        """Predictions in the parameters' own units, for the report's plots of the test set.

        The inverse of :meth:`encode_targets`: for the regression targets of
        :func:`streamal.train.targets.regression_scale` (``names`` in that order), the
        predicted value and its standard deviation in each parameter's unit.

        Args:
            output: The eval-mode output tensor ``(n, ...)`` of the test split (CPU, no
                gradients).

        Returns:
            ``class_probabilities`` ``(n, K)`` (rows sum to 1; may be left out for a one-class
            space), ``params`` ``(n, T)`` and ``params_sigma`` ``(n, T)`` (≥ 0), float
            arrays, ``T = len(regression_scale(space)[0])``.

        Raises:
            NotImplementedError: By default: the report then has no predicted-vs-true plots.
        """
        raise NotImplementedError(f"{self.name or type(self).__name__} does not implement predict")
