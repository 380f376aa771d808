"""The search's two objectives, both minimised: error and cost.

The error is ``100 - fitness`` for accuracy (%), the fitness itself for a loss-type fitness
(``class_loss``, ``mse``, ``score``; :func:`~.fitness.fitness_error`), read from the row's
``fitness_metric``.

Cost is the FLOPs of one forward pass (``objective: flops``) or the energy of training
(``objective: energy``; measured, else the FLOPs x epochs proxy of
:func:`~.energy.energy_objective`). The hypervolume of a search is taken against a fixed
reference (:func:`hypervolume_reference`), so runs of one config compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .datasets import DataSpec
from .energy import energy_objective
from .fitness import fitness_error
from .genome import MacroGenome, bits_per_phase
from .options import NasOptions

__all__ = ["candidate_cost", "hypervolume_reference", "model_cost", "objective_vector"]


def model_cost(
    genome: MacroGenome, options: NasOptions, data: DataSpec | None = None
) -> tuple[int, int]:
    """``(FLOPs per forward pass, parameters)`` of a candidate on ``data`` (default digits)."""
    from .learners import candidate_learner
    from .models import count_flops, count_parameters

    data = data if data is not None else DataSpec("digits")
    learner = candidate_learner(data, genome, options.channels, options.network)
    model = learner.build()
    return count_flops(model, learner.input_shape), count_parameters(model)


def candidate_cost(
    objective: str, flops: int, epochs: float, energy_j: float | None
) -> tuple[float, bool]:
    """The cost objective of a trained candidate and whether it is the energy proxy."""
    if objective == "flops":
        return float(flops), False
    return energy_objective(energy_j, flops, epochs)


def objective_vector(row: Mapping[str, Any]) -> list[float]:
    """``[error, cost]`` of a candidate row, as told to the strategy."""
    return [fitness_error(row["fitness"], row.get("fitness_metric", "accuracy")), row["cost"]]


def hypervolume_reference(
    options: NasOptions,
    rows: Sequence[Mapping[str, Any]],
    max_epochs: float,
    data: DataSpec | None = None,
) -> list[float]:
    """Hypervolume reference: the worst error and 1.1 x the space's largest cost.

    The worst error is 100 % for accuracy (fixed, so runs of one config compare); for a
    minimised fitness it is ``fitness_reference``, else 1.1 x the worst error seen.
    """
    o = options
    full = MacroGenome(o.phases, o.nodes, (1,) * (o.phases * bits_per_phase(o.nodes)))
    max_flops = float(model_cost(full, o, data)[0])
    if o.direction == "maximize":
        worst = 100.0
    else:
        seen = max((objective_vector(r)[0] for r in rows), default=0.0)
        worst = o.fitness_reference or (1.1 * seen if seen > 0 else 1.0)
    if o.objective == "flops":
        return [worst, 1.1 * max_flops]
    if any(not r["cost_is_proxy"] for r in rows):
        measured = [r["cost"] for r in rows if not r["cost_is_proxy"]]
        return [worst, o.energy_reference_j or 1.1 * max(measured)]
    return [worst, 1.1 * max_flops * max_epochs]
