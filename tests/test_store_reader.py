import subprocess
import sys

import h5py
import numpy as np
import pytest

from streamal.data.reader import StoreReader, read_samples
from streamal.data.store import SampleStore
from streamal.errors import StoreError
from tests.store_writer import LAYOUT, batch


def _filled(path, batches=6):
    store = SampleStore(path, **LAYOUT)
    for i in range(batches):
        store.append(**batch(i))
    return store


def _expected(rows, batches=6):
    parts = [batch(i) for i in range(batches)]
    inputs = np.concatenate([b["inputs"] for b in parts])
    classes = np.concatenate([b["classes"] for b in parts])
    params = np.concatenate([b["params"] for b in parts])
    return inputs[rows], classes[rows], params[rows]


def test_rows_come_back_in_the_callers_order(tmp_path):
    path = tmp_path / "s.h5"
    _filled(path).close()
    with StoreReader(path) as reader:
        n = len(reader)
        assert n == reader.committed == sum(len(batch(i)["classes"]) for i in range(6))
        assert reader.input_shape == LAYOUT["input_shape"] and reader.n_params == 2
        for rows in ([3, 0, 7, 7, 1], [n - 1, 0], [0, n - 1], list(range(n)), [], [5]):
            x, c, p = reader.read(rows)
            want = _expected(np.asarray(rows, dtype=np.int64))
            np.testing.assert_array_equal(x, want[0])
            np.testing.assert_array_equal(c, want[1])
            np.testing.assert_array_equal(p, want[2])
            assert x.dtype == np.float32 and c.dtype == np.int64 and p.dtype == np.float64
        rows = [9, 2, 15, 0, 4, n - 1, 3]
        blocks = list(reader.blocks(rows, 3))
        assert [len(b.inputs) for b in blocks] == [3, 3, 1]
        np.testing.assert_array_equal(
            np.concatenate([b.inputs for b in blocks]), _expected(rows)[0]
        )
        inputs = np.concatenate(list(reader.input_blocks(rows, 2)))
        np.testing.assert_array_equal(inputs, _expected(rows)[0])
    np.testing.assert_array_equal(read_samples(path, rows).classes, _expected(rows)[1])


def test_rows_outside_the_committed_samples_are_refused(tmp_path):
    path = tmp_path / "s.h5"
    _filled(path, batches=2).close()
    with h5py.File(path, "r+") as f:  # rows of an append cut off before its commit row
        for name in ("inputs", "classes", "params"):
            ds = f["samples"][name]
            ds.resize(ds.shape[0] + 4, axis=0)
    with StoreReader(path) as reader:
        committed = len(batch(0)["classes"]) + len(batch(1)["classes"])
        assert reader.committed == committed
        with pytest.raises(StoreError, match=rf"row\(s\) {committed} are not committed"):
            reader.read([0, committed])
        with pytest.raises(StoreError, match=r"row\(s\) -1"):
            list(reader.blocks([-1]))


def test_a_reader_in_another_process_reads_while_the_writer_holds_the_store(tmp_path):
    path = tmp_path / "s.h5"
    store = _filled(path)
    try:
        code = (
            "import sys; from streamal.data.reader import StoreReader\n"
            "with StoreReader(sys.argv[1]) as r:\n"
            "    print(len(r), r.read([4, 1]).classes.tolist())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split(maxsplit=1)
        assert int(out[0]) == len(store)
        assert out[1].strip() == str(_expected([4, 1])[1].tolist())
    finally:
        store.close()


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("samples/inputs", data=np.zeros((2, 3)))
    with pytest.raises(StoreError, match="not a complete sample store"):
        StoreReader(path)
