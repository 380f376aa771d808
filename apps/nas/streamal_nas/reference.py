"""The reference ALBAND CNN (``diffraction-cnn``) as one genome of the 1-D search space.

``diffraction-cnn`` is a plain stack ``[Conv1d(k, stride) → LeakyReLU → MaxPool(2)] × depth
→ Linear(hidden) → LeakyReLU → class / value + log σ² heads``. In the search space each conv
is a phase whose genome bits connect no node, kept as its opening conv
(``empty_phases: conv``) without batch norm, valid padding and the same kernels, strides,
pooling and head: the ``nas-genome`` model with :func:`alband_options` builds a network of
the same layers, parameter shapes and count, and output layout as ``diffraction-cnn`` with
its matching options (checked in ``apps/nas/tests/test_genome_model.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .genome import MacroGenome, bits_per_phase, genome_to_dict

__all__ = ["alband_genome", "alband_options"]


def alband_genome(depth: int = 2, nodes: int = 4) -> MacroGenome:
    """``depth`` phases whose bits connect nothing: each is its opening conv alone."""
    return MacroGenome(depth, nodes, (0,) * (depth * bits_per_phase(nodes)))


def alband_options(
    channels: Sequence[int] = (16, 32),
    kernels: Sequence[int] = (3, 4),
    hidden: int = 256,
    negative_slope: float = 0.1,
    nodes: int = 4,
) -> dict[str, Any]:
    """``nas-genome`` model options equal to ``diffraction-cnn``'s network.

    Args:
        channels, kernels, hidden, negative_slope: ``diffraction-cnn``'s options of the same
            names (its defaults); as there, the first conv has stride 1, the later ones 2.
        nodes: Nodes per phase of the genome (any: none is connected).

    Returns:
        ``{genome, channels, network, encoder}``; the encoder is ``diffraction-cnn``'s
        (background removal, min-max scaling).
    """
    depth = len(channels)
    return {
        "genome": genome_to_dict(alband_genome(depth, nodes)),
        "channels": list(channels),
        "network": {
            "stem_kernels": list(kernels),
            "strides": [1, 2],
            "pool": 2,
            "pool_last": True,
            "empty_phases": "conv",
            "batch_norm": False,
            "activation": "leaky_relu",
            "negative_slope": negative_slope,
            "padding": "valid",
            "head": "flatten",
            "hidden": hidden,
            "variance": "shared",
        },
        "encoder": {"name": "diffraction-cnn", "options": {}},
    }
