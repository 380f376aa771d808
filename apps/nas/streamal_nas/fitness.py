"""What a candidate's validation is worth: the search's fitness and its direction.

``accuracy`` (validation accuracy, %) rises as a candidate learns; ``class_loss``, ``mse``
and ``score`` (a weighted sum of validation metrics, by default ``class_loss + mse``, the
checkpoint score of every streamal model) fall. The search minimises the *error*: ``100 -
accuracy``, or the loss itself (:func:`fitness_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

__all__ = ["DIRECTIONS", "FitnessName", "fitness_error", "fitness_label", "fitness_value"]

FitnessName = Literal["accuracy", "class_loss", "mse", "score"]

DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "accuracy": "maximize",
    "class_loss": "minimize",
    "mse": "minimize",
    "score": "minimize",
}
"""Whether each fitness grows or shrinks as a candidate gets better."""


def fitness_value(
    metrics: Mapping[str, float], name: str, weights: Mapping[str, float] | None = None
) -> float:
    """The fitness ``name`` of one validation's metrics.

    Args:
        metrics: A model's validation metrics (``accuracy`` in [0, 1], ``class_loss``,
            ``mse``, ...).
        name: One of :data:`DIRECTIONS`.
        weights: ``score``'s weight of each metric (default ``class_loss`` and ``mse``, 1).

    Raises:
        KeyError: A metric the fitness needs is missing.
    """
    if name == "accuracy":
        return 100.0 * float(metrics["accuracy"])
    if name == "score":
        w = weights or {"class_loss": 1.0, "mse": 1.0}
        return float(sum(v * float(metrics.get(k, 0.0)) for k, v in w.items()))
    return float(metrics[name])


def fitness_error(fitness: float, name: str = "accuracy") -> float:
    """The error the search minimises: ``100 - fitness`` for accuracy, else the fitness."""
    return 100.0 - fitness if DIRECTIONS[name] == "maximize" else fitness


def fitness_label(name: str = "accuracy") -> str:
    """An axis label for fitness ``name``."""
    if name == "accuracy":
        return "fitness: validation accuracy (%)"
    return f"fitness: validation {name} (lower is better)"
