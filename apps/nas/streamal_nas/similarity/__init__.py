"""Similarity (A4NN.2): skip or warm-start candidates structurally close to trained ones.

* :mod:`.graphs`: a genome as a labelled DAG.
* :mod:`.distance`: bounded graph edit distance between genomes.
* :mod:`.engine`: :class:`SimilarityEngine`, the threshold rule over the trained candidates.
* :mod:`.task`: :func:`similarity_decision`, the rule as a ``sim``-pool task.

Example::

    engine = SimilarityEngine(threshold=2, mode="skip")
    engine.add_trained("c0001", trained_genome, fitness=91.0)
    engine.decide(new_genome).action  # "skip" when within 2 edits of c0001
"""

from .distance import EditDistance, edit_distance, genome_distance, graph_lower_bound
from .engine import SimilarityDecision, SimilarityEngine
from .graphs import genome_graph, phase_graph
from .task import similarity_decision

__all__ = [
    "EditDistance",
    "SimilarityDecision",
    "SimilarityEngine",
    "edit_distance",
    "genome_distance",
    "genome_graph",
    "graph_lower_bound",
    "phase_graph",
    "similarity_decision",
]
