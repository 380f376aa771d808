"""The active-learning task's model side: uncertainty of the current model on the study set.

Runs in a pool worker. Torch is imported here for the first time in that worker only after
the OpenMP affinity variables HTEX exports are cleared, so its threads use all the worker's
cores (see docs/design.md, the pinning gotcha).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from streamal.train.ddp import AFFINITY_VARIABLES


def predict_uncertainty(
    store: str,
    rows: list[int],
    model: str,
    model_options: dict[str, Any],
    space: dict[str, Any],
    input_shape: tuple[int, ...],
    checkpoint: str,
    batch_size: int = 1024,
) -> dict[str, np.ndarray]:
    """``{"variance", "entropy"}`` per study row (in the order of ``rows``)."""
    for name in AFFINITY_VARIABLES:
        os.environ.pop(name, None)
    import torch

    from streamal import plugins
    from streamal.data.reader import StoreReader
    from streamal.data.space import ParameterSpace
    from streamal.train.checkpoint import load_checkpoint

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    plugin = plugins.load("models", model)(
        ParameterSpace.from_dict(space), input_shape, **model_options
    )
    net = plugin.build()
    net.load_state_dict(load_checkpoint(checkpoint)["model"])
    net.eval()
    parts: dict[str, list[np.ndarray]] = {}
    with StoreReader(store) as reader, torch.no_grad():
        for inputs in reader.input_blocks(rows, batch_size):
            x = plugin.encode_inputs(inputs)
            for k, v in plugin.uncertainty(net(torch.from_numpy(x))).items():
                parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}
