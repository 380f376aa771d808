"""A candidate's network, loss and metrics for the search's data: :func:`candidate_learner`.

Both kinds answer what the training task asks of a model plugin (``build``, ``loss``,
``metrics``, ``input_shape``), so :func:`~.evaluate.train_candidate` trains either the same
way:

* digits: :class:`DigitsLearner`, a 2-D :class:`~.models.MacroNet` with cross-entropy.
* a simulator's samples: the ``nas-genome`` model plugin (:mod:`.genome_model`), the very
  model a campaign then runs with the exported winner.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from streamal.data.space import ParameterSpace

from .datasets import DataSpec, Splits, encoded_splits
from .genome import MacroGenome, genome_to_dict
from .network import NetworkOptions

__all__ = ["DigitsLearner", "candidate_learner", "learner_splits"]


class DigitsLearner:
    """Classification of 8x8 digits by a 2-D MacroNet (the original search's task)."""

    input_shape = (1, 8, 8)
    num_classes = 10

    def __init__(
        self, genome: MacroGenome, channels: int | list[int], network: NetworkOptions
    ) -> None:
        self.genome, self.channels, self.network = genome, channels, network

    def build(self) -> Any:
        """A fresh :class:`~.models.MacroNet`."""
        from .models import MacroNet

        return MacroNet(
            self.genome, 1, self.num_classes, self.channels, dims=2, network=self.network
        )

    def loss(self, output: Any, classes: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        """Cross-entropy of one mini-batch."""
        import torch.nn.functional as F

        ce = F.cross_entropy(output, classes)
        return ce, {"class_loss": ce.detach()}

    def metrics(self, output: Any, classes: Any, targets: Any) -> dict[str, float]:
        """``accuracy`` (fraction) and ``class_loss`` of a split."""
        import torch.nn.functional as F

        return {
            "accuracy": (output.argmax(1) == classes).float().mean().item(),
            "class_loss": float(F.cross_entropy(output, classes)),
        }


def candidate_learner(
    data: DataSpec,
    genome: MacroGenome,
    channels: int | list[int],
    network: NetworkOptions | Mapping[str, Any],
) -> Any:
    """The learner of ``genome`` on ``data``: :class:`DigitsLearner` or ``nas-genome``."""
    net = NetworkOptions.model_validate(network)
    if data.name == "digits":
        return DigitsLearner(genome, channels, net)
    from .genome_model import NasGenomeModel

    return NasGenomeModel(
        ParameterSpace.from_dict(data.space or {}),
        data.input_shape,
        genome=genome_to_dict(genome),
        channels=channels,
        network=net.model_dump(),
        encoder=data.encoder or {},
    )


def learner_splits(data: DataSpec, learner: Any) -> Splits:
    """The encoded train and validation tensors of ``data`` (no regression target: ``(n, 0)``)."""
    if data.name != "digits":
        return encoded_splits(data, learner)
    import torch

    d = _digits(data.seed)
    y_train, y_val = d.y_train, d.y_val
    return Splits(
        d.x_train, y_train, torch.zeros(len(y_train), 0), d.x_val, y_val, torch.zeros(len(y_val), 0)
    )


@functools.lru_cache(maxsize=2)
def _digits(seed: int) -> Any:
    from .data import load_digits_splits

    return load_digits_splits(seed=seed)
