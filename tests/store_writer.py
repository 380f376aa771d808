"""A writer process for the store's crash tests.

``python -m tests.store_writer PATH`` appends batches forever, printing each committed key.
``... PATH --die-in-create`` is SIGKILLed by itself while it creates the store.
``... PATH --unchecked I --rows N`` appends batch ``I`` with ``N`` samples with the free-space
check switched off (so a full disk fails inside HDF5), then batch ``I + 1``, then closes; it
prints one JSON line per step.
"""

import argparse
import json
import os
import signal

import numpy as np

from streamal.data.label import BatchLabel
from streamal.data.store import SampleStore

SHAPE = (512,)
LAYOUT = {"param_names": ["x", "y"], "class_names": ["a", "b", "c"], "input_shape": SHAPE}


def batch(i: int, n: int | None = None) -> dict:
    rng = np.random.default_rng(i)
    n = 1 + i % 7 if n is None else n
    return {
        "key": f"b{i}",
        "classes": np.full(n, i % 3),
        "params": rng.normal(size=(n, 2)),
        "inputs": rng.normal(size=(n, *SHAPE)).astype(np.float32),
        "label": BatchLabel(
            i % 4,
            ("train", "val", "test", "study")[i % 4],
            "uniform" if i % 2 else "uncertainty-mixture",
        ),
    }


def _die_in_create() -> None:
    create = SampleStore._create

    def dying(self, *args, **kwargs):
        create(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    SampleStore._create = dying


def _unchecked(path: str, first: int, rows: int) -> None:
    SampleStore._ensure_space = lambda self, what, needed: None
    store = SampleStore(path, **LAYOUT)
    for i, n in ((first, rows), (first + 1, None)):
        try:
            store.append(**batch(i, n))
            print(json.dumps({"key": f"b{i}", "error": None}), flush=True)
        except Exception as exc:  # noqa: BLE001 - the test reads what was raised
            print(json.dumps({"key": f"b{i}", "error": type(exc).__name__, "message": str(exc)}))
    store.close()
    print(json.dumps({"closed": True}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--die-in-create", action="store_true")
    ap.add_argument("--unchecked", type=int, default=None)
    ap.add_argument("--rows", type=int, default=300)
    args = ap.parse_args()
    if args.unchecked is not None:
        _unchecked(args.path, args.unchecked, args.rows)
        raise SystemExit(0)
    if args.die_in_create:
        _die_in_create()
    store = SampleStore(args.path, **LAYOUT)
    i = len(store.batches())
    while True:
        store.append(**batch(i))
        print(f"b{i}", flush=True)
        i += 1
