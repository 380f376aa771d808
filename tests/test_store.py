import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from streamal.errors import StoreError
from streamal.store import SampleStore
from tests.store_writer import batch


def _new(path, **kw):
    return SampleStore(
        path, param_names=["x", "y"], class_names=["a", "b", "c"], input_shape=(512,), **kw
    )


def test_append_reopen_and_views(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path, metadata={"seed": 3}) as store:
        for i in range(6):
            store.append(**batch(i))
        n = len(store)
    with _new(path) as store:  # reopen and keep appending
        assert len(store) == n and store.metadata == {"seed": 3}
        store.append(**batch(6))
        train = store.select(split="train")
        expected = np.concatenate([batch(i)["inputs"] for i in (0, 4)])
        np.testing.assert_array_equal(train.inputs(), expected)
        np.testing.assert_array_equal(train.classes(), [0] * len(batch(0)["classes"]) + [1] * 5)
        blocks = list(train.iter_blocks(block=2))
        np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), expected)
        assert len(store.select(max_phase=1)) == sum(len(batch(i)["classes"]) for i in (0, 1, 4, 5))
        assert len(store.select(split=["val", "test"], classes=[1])) == len(batch(1)["classes"])
        assert [b.key for b in store.batches()] == [f"b{i}" for i in range(7)]
        assert store.batches()[1].origin == "uniform"


def test_duplicate_batch_and_bad_shapes_are_refused(tmp_path):
    with _new(tmp_path / "s.h5") as store:
        store.append(**batch(0))
        with pytest.raises(StoreError, match="already stored"):
            store.append(**batch(0))
        bad = batch(1) | {"inputs": np.zeros((1, 3), np.float32)}
        with pytest.raises(StoreError, match="expected params"):
            store.append(**bad)
        with pytest.raises(StoreError, match="unknown split"):
            store.select(split="training")


def test_reopen_with_other_layout_is_refused(tmp_path):
    _new(tmp_path / "s.h5").close()
    with pytest.raises(StoreError, match="input_shape"):
        SampleStore(
            tmp_path / "s.h5",
            param_names=["x", "y"],
            class_names=["a", "b", "c"],
            input_shape=(10,),
        )


def test_failures_are_recorded_with_their_error(tmp_path):
    with _new(tmp_path / "s.h5") as store:
        store.record_failed(
            key="b9",
            classes=np.array([1, 2]),
            params=np.ones((2, 2)),
            phase=1,
            split="train",
            origin="uniform",
            error="ParameterError: bad cell",
        )
    with _new(tmp_path / "s.h5", mode="r") as store:
        fails = store.failures()
        assert [f["class"] for f in fails] == [1, 2]
        assert fails[0]["error"] == "ParameterError: bad cell" and len(store) == 0


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.1])
def test_store_survives_a_killed_writer(tmp_path, delay):
    path = tmp_path / "crash.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store_writer", str(path)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    committed = out.split()
    assert len(committed) >= 3, "the writer did not get going"
    store = _new(path)  # reopen for appending: torn rows are dropped
    keys = [b.key for b in store.batches()]
    # Every batch the writer reported as flushed is there, plus at most the one in flight.
    assert keys[: len(committed)] == committed and len(keys) - len(committed) in (0, 1)
    for b in store.batches():
        want = batch(int(b.key[1:]))
        rows = np.arange(b.start, b.start + b.count)
        view = store.select()
        np.testing.assert_array_equal(view._read("inputs", rows), want["inputs"])
        np.testing.assert_array_equal(view._read("params", rows), want["params"])
    assert len(store) == sum(b.count for b in store.batches())
    store.append(**batch(len(keys)))  # and keeps appending
    store.close()


def test_a_torn_last_batch_is_dropped_and_reported(tmp_path):
    import h5py

    path = tmp_path / "torn.h5"
    with _new(path) as store:
        for i in range(3):
            store.append(**batch(i))
        committed = len(store)
    with h5py.File(path, "a") as f:  # a crash after the sample rows, before the batch row
        for ds in f["samples"].values():
            ds.resize(committed + 5, axis=0)
    store = _new(path)
    assert store.recovered and "dropped 5 sample row(s)" in store.recovered[0]
    assert len(store) == committed and [b.key for b in store.batches()] == ["b0", "b1", "b2"]
    store.append(**batch(3))
    assert len(store) == committed + len(batch(3)["classes"])
    store.close()
