"""The search's two objectives, both minimised: error (100 - fitness %) and cost.

Cost is the FLOPs of one forward pass (``objective: flops``) or the energy of training
(``objective: energy``; measured, else the FLOPs x epochs proxy of
:func:`~.energy.energy_objective`). The hypervolume of a search is taken against a fixed
reference (:func:`hypervolume_reference`), so runs of one config compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .energy import energy_objective
from .genome import MacroGenome, bits_per_phase
from .options import NasOptions

__all__ = ["candidate_cost", "hypervolume_reference", "model_cost", "objective_vector"]


def model_cost(genome: MacroGenome, channels: int) -> tuple[int, int]:
    """``(FLOPs per forward pass, parameters)`` of a candidate on 8x8 digits."""
    from .models import build_model, count_flops, count_parameters

    model = build_model(genome, 1, 10, dims=2, channels=channels)
    return count_flops(model, (1, 8, 8)), count_parameters(model)


def candidate_cost(
    objective: str, flops: int, epochs: float, energy_j: float | None
) -> tuple[float, bool]:
    """The cost objective of a trained candidate and whether it is the energy proxy."""
    if objective == "flops":
        return float(flops), False
    return energy_objective(energy_j, flops, epochs)


def objective_vector(row: Mapping[str, Any]) -> list[float]:
    """``[error %, cost]`` of a candidate row, as told to the strategy."""
    return [100.0 - row["fitness"], row["cost"]]


def hypervolume_reference(
    options: NasOptions, rows: Sequence[Mapping[str, Any]], max_epochs: float
) -> list[float]:
    """Fixed hypervolume reference: 100 % error and 1.1 x the space's largest cost."""
    o = options
    full = MacroGenome(o.phases, o.nodes, (1,) * (o.phases * bits_per_phase(o.nodes)))
    max_flops = float(model_cost(full, o.channels)[0])
    if o.objective == "flops":
        return [100.0, 1.1 * max_flops]
    if any(not r["cost_is_proxy"] for r in rows):
        measured = [r["cost"] for r in rows if not r["cost_is_proxy"]]
        return [100.0, o.energy_reference_j or 1.1 * max(measured)]
    return [100.0, 1.1 * max_flops * max_epochs]
