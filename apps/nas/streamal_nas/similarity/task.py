"""The similarity check as a ``sim``-pool task: A4NN.2's skip/transfer rule for one candidate.

A module-level function, so that pool workers can import it; it takes and returns plain
values (:func:`~streamal_nas.genome.genome_to_dict` genomes, a dict decision).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..genome import genome_from_dict
from .engine import SimilarityEngine

__all__ = ["similarity_decision"]


def similarity_decision(
    genome: Mapping[str, Any],
    trained: Sequence[tuple[str, Mapping[str, Any], float]],
    threshold: float = 2.0,
    mode: str = "skip",
    timeout_s: float = 0.2,
    find_provider: bool = False,
) -> dict[str, Any]:
    """A4NN.2's rule for one new candidate against the trained ones.

    Args:
        genome: The new candidate (:func:`~streamal_nas.genome.genome_to_dict`).
        trained: ``(candidate_id, genome dict, fitness)`` of every trained candidate.
        threshold: Largest graph edit distance that counts as similar.
        mode: ``"skip"`` (inherit the provider's fitness) or ``"transfer"``.
        timeout_s: Time bound of each GED search.
        find_provider: When the rule says "train", also return the nearest trained
            candidate at any distance (a weight-transfer provider).

    Returns:
        ``action`` (``train``/``skip``/``transfer``), ``provider_id``, ``distance``,
        ``inherited_fitness``, ``compared`` and ``seconds``.
    """
    t0 = time.perf_counter()
    engine = SimilarityEngine(threshold=threshold, timeout_s=timeout_s, mode=mode)
    for cid, g, fitness in trained:
        engine.add_trained(cid, genome_from_dict(g), fitness)
    new = genome_from_dict(genome)
    decision = engine.decide(new) if len(engine) else None
    out: dict[str, Any] = {
        "action": decision.action if decision is not None else "train",
        "provider_id": decision.provider_id if decision is not None else None,
        "distance": decision.distance if decision is not None else None,
        "inherited_fitness": decision.inherited_fitness if decision is not None else None,
    }
    if out["action"] == "train" and find_provider and len(engine):
        hit = engine.most_similar(new)
        if hit is not None:
            out["provider_id"], out["distance"] = hit
    out["compared"] = len(engine)
    out["seconds"] = time.perf_counter() - t0
    return out
