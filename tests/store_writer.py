"""A writer process for the crash test: appends batches forever, printing each committed key."""

import sys

import numpy as np

from streamal.store import SampleStore

SHAPE = (512,)


def batch(i: int) -> dict:
    rng = np.random.default_rng(i)
    n = 1 + i % 7
    return {
        "key": f"b{i}",
        "classes": np.full(n, i % 3),
        "params": rng.normal(size=(n, 2)),
        "inputs": rng.normal(size=(n, *SHAPE)).astype(np.float32),
        "phase": i % 4,
        "split": ("train", "val", "test", "study")[i % 4],
        "origin": "uniform" if i % 2 else "uncertainty-mixture",
    }


if __name__ == "__main__":
    store = SampleStore(
        sys.argv[1], param_names=["x", "y"], class_names=["a", "b", "c"], input_shape=SHAPE
    )
    i = len(store.batches())
    while True:
        store.append(**batch(i))
        print(f"b{i}", flush=True)
        i += 1
