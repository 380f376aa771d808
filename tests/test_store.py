import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from streamal.data.label import BatchLabel
from streamal.data.store import SPACE_MARGIN, SampleStore
from streamal.errors import DiskFullError, StoreError
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
    with _new(tmp_path / "s.h5") as store:  # a store with data (an empty one is recreated)
        store.append(**batch(0))
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
            label=BatchLabel(1, "train", "uniform"),
            error="ParameterError: bad cell",
        )
    with _new(tmp_path / "s.h5", mode="r") as store:
        fails = store.failures()
        assert [f["class"] for f in fails] == [1, 2]
        assert fails[0]["error"] == "ParameterError: bad cell" and len(store) == 0


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.7])
def test_store_survives_a_killed_writer(tmp_path, delay):
    path = tmp_path / "crash.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store_writer", str(path)], stdout=subprocess.PIPE, text=True
    )
    committed = [proc.stdout.readline().strip() for _ in range(3)]  # the writer got going
    assert all(committed), "the writer did not get going"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    committed += out.split()
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


# -- a full disk (item 1 of issue 11) ---------------------------------------------------------
HDF5_ENOSPC = (
    "Unable to synchronously flush file (file write failed: time = Wed Dec  2 05:44:15 2026\n"
    ", filename = 's.h5', file descriptor = 3, errno = 28, error message = 'No space left on "
    "device', buf = 0x55, total write size = 11520, bytes this sub-write = 11520, offset = 0)"
)


def _fail_flush(monkeypatch, on_call: int) -> None:
    """The ``on_call``-th HDF5 flush from now on fails as it does on a full disk."""
    real, calls = h5py.File.flush, []

    def flush(self):
        calls.append(1)
        if len(calls) == on_call:
            raise RuntimeError(HDF5_ENOSPC)
        return real(self)

    monkeypatch.setattr(h5py.File, "flush", flush)


def _rows(n: int) -> int:
    return sum(len(batch(i)["classes"]) for i in range(n))


@pytest.mark.parametrize("failing", [1, 2], ids=["data-flush", "commit-flush"])
def test_a_failed_flush_commits_nothing_and_closes_the_store(tmp_path, monkeypatch, failing):
    path = tmp_path / "s.h5"
    store = _new(path)
    for i in range(3):
        store.append(**batch(i))
    _fail_flush(monkeypatch, failing)
    with pytest.raises(DiskFullError) as caught:
        store.append(**batch(3))
    monkeypatch.undo()
    assert str(caught.value).startswith(f"disk full: cannot store batch 'b3' (4 samples) in {path}")
    assert "\n" not in str(caught.value) and caught.value.path == path
    with pytest.raises(StoreError, match="closed after a failed write .*No space left"):
        store.append(**batch(4))
    store.close()  # closed already: nothing more is written, nothing raised
    store = _new(path)
    assert [b.key for b in store.batches()] == ["b0", "b1", "b2"] and len(store) == _rows(3)
    assert store.verify() == {}
    store.append(**batch(3))
    store.close()


def test_a_failed_flush_of_failure_records_commits_none(tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    store = _new(path)
    store.append(**batch(0))
    fail = {
        "classes": np.array([1]),
        "params": np.ones((1, 2)),
        "label": BatchLabel(0, "train", "uniform"),
    }
    store.record_failed(key="f0", **fail, error="ParameterError: bad")
    _fail_flush(monkeypatch, 2)
    with pytest.raises(DiskFullError, match="cannot store the failure records of 'f1'"):
        store.record_failed(key="f1", **fail, error="ParameterError: bad")
    monkeypatch.undo()
    store.close()
    with _new(path) as store:
        assert [f["key"] for f in store.failures()] == ["f0"] and len(store.batches()) == 1


def test_a_batch_that_does_not_fit_is_refused_before_writing(tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    store = _new(path)
    store.append(**batch(0))
    size = path.stat().st_size
    real = shutil.disk_usage
    usage = real(tmp_path)._replace(free=SPACE_MARGIN + (100 << 10))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage)
    big = batch(1, 300)  # needs a new 512 KiB chunk of inputs
    with pytest.raises(DiskFullError) as caught:
        store.append(**big)
    err = caught.value
    assert err.free == usage.free and err.needed > 512 << 10 and err.total == usage.total
    assert f"needs {err.needed >> 10} KiB, 356 KiB free of " in str(err)
    assert path.stat().st_size == size and not store.has_batch("b1")  # nothing written
    store.append(**batch(2))  # a batch that fits in the chunks already there: stored
    monkeypatch.setattr(shutil, "disk_usage", real)
    store.append(**big)  # the store stayed open and usable
    assert [b.key for b in store.batches()] == ["b0", "b2", "b1"]
    store.close()


def test_a_reservation_the_disk_cannot_give_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    store = _new(path)
    store.append(**batch(0))
    size = path.stat().st_size

    def no_room(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room, raising=False)
    with pytest.raises(DiskFullError, match="^disk full: cannot store batch 'b1'"):
        store.append(**batch(1))
    monkeypatch.undo()
    assert path.stat().st_size == size and len(store.batches()) == 1
    store.append(**batch(1))
    store.close()


def test_the_space_estimate_covers_what_an_append_allocates(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # only the file's growth matters here
    store = _new(tmp_path / "s.h5")
    for i in range(260):  # past chunk ends of every column and of /batches (256 rows a chunk)
        b = batch(i, 1000 if i % 60 == 7 else None)
        before = store._file.id.get_filesize()
        need = store._append_bytes(len(store), len(b["classes"]), len(store.batches()), b["key"])
        store.append(**b)
        grew = store._file.id.get_filesize() - before
        assert grew <= need, f"batch {i}: grew {grew} bytes, estimated {need}"
    store.close()


def test_disk_full_error_says_what_where_and_how_much(tmp_path):
    err = DiskFullError.at(tmp_path / "store.h5", "batch 'p0/val' (32 samples)", needed=616 << 10)
    usage = shutil.disk_usage(tmp_path)
    assert str(err).startswith(
        f"disk full: cannot store batch 'p0/val' (32 samples) in {tmp_path / 'store.h5'}: "
        "needs 616 KiB, "
    )
    assert " free of " in str(err) and str(err).endswith(f" on {err.mount}")
    assert "\n" not in str(err) and err.needed == 616 << 10 and err.total == usage.total
    assert err.mount is not None and tmp_path.is_relative_to(err.mount)
    assert DiskFullError("plain").path is None  # a message alone is enough


# -- checksums: never hand out data that was not written ---------------------------------------
def _zero_rows(path, start: int, count: int) -> None:
    """Make rows read back as zeros, as rows whose chunks never reached the disk do."""
    with h5py.File(path, "r+") as f:
        f["samples/inputs"][start : start + count] = 0


def test_a_last_batch_whose_data_was_not_written_is_dropped(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path) as store:
        for i in range(3):
            store.append(**batch(i))
        last = store.batches()[-1]
    _zero_rows(path, last.start, last.count)
    store = _new(path)
    assert store.recovered[0].startswith("dropped the last batch 'b2' (3 samples): its data")
    assert "checksum" in store.recovered[0]
    assert [b.key for b in store.batches()] == ["b0", "b1"] and len(store) == last.start
    store.append(**batch(2))  # simulated again, stored again
    assert store.verify() == {}
    store.close()


def test_a_damaged_earlier_batch_stops_the_reopen(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path) as store:
        for i in range(3):
            store.append(**batch(i))
        b1 = store.batches()[1]
    _zero_rows(path, b1.start, b1.count)
    with pytest.raises(StoreError, match=r"1 committed batch\(es\) are damaged \('b1': its data"):
        _new(path)
    with _new(path, mode="r") as store:  # nothing was changed or dropped
        assert len(store.batches()) == 3


def test_reopen_checks_the_last_session_and_verify_checks_every_batch(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path) as store:
        store.append(**batch(0))
        store.append(**batch(1))
    with _new(path) as store:  # checks b0, b1
        store.append(**batch(2))
        b0, _, b2 = store.batches()
    _zero_rows(path, b0.start, b0.count)
    _zero_rows(path, b2.start, b2.count)
    store = _new(path)  # checks b2 only, the last session's batch
    assert store.recovered[0].startswith("dropped the last batch 'b2'")
    assert store.verify() == {"b0": "its data does not match its checksum"}
    store.close()


_V1_BATCH = np.dtype(
    [
        ("key", h5py.string_dtype()),
        ("start", "i8"),
        ("count", "i8"),
        ("phase", "i2"),
        ("split", "i1"),
        ("origin", "i2"),
        ("time", "f8"),
    ]
)


def _as_version_1(path) -> None:
    """Rewrite a store as streamal wrote it before checksums (format version 1)."""
    with h5py.File(path, "r+") as f:
        rows = f["batches"][:]
        old = np.zeros(len(rows), _V1_BATCH)
        for name in _V1_BATCH.names:
            old[name] = rows[name]
        del f["batches"]
        f.create_dataset("batches", data=old, maxshape=(None,), chunks=(256,))
        f.attrs["format_version"] = 1
        del f.attrs["verified_batches"]


def test_a_version_1_store_is_read_appended_to_and_checked(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path) as store:
        for i in range(3):
            store.append(**batch(i))
    _as_version_1(path)
    with _new(path) as store:
        assert store.recovered == []
        store.append(**batch(3))
    with _new(path, mode="r") as store:
        assert [b.key for b in store.batches()] == ["b0", "b1", "b2", "b3"]
        np.testing.assert_array_equal(store.select(split="test").inputs(), batch(2)["inputs"])
        b3 = store.batches()[3]
        assert store._file.attrs["format_version"] == 1
    _zero_rows(path, b3.start, b3.count)  # version 1 has no checksum: zeros give it away
    with _new(path) as store:
        assert store.recovered[0].startswith("dropped the last batch 'b3' (4 samples): its inputs")
        assert len(store.batches()) == 3


def test_readers_see_committed_samples_only(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path) as store:
        store.append(**batch(0))
        store.append(**batch(1))
    with h5py.File(path, "r+") as f:  # a writer between its data flush and its commit
        for ds in f["samples"].values():
            ds.resize(_rows(2) + 5, axis=0)
    with _new(path, mode="r") as store:
        assert len(store) == _rows(2) and len(store.select()) == _rows(2)
    with h5py.File(path, "r+") as f:  # a writer killed while its commit row was written
        f["batches"].resize(3, axis=0)
    with _new(path, mode="r") as store:
        assert [b.key for b in store.batches()] == ["b0", "b1"] and len(store) == _rows(2)


# -- store creation (item 5 of issue 11) -------------------------------------------------------
@pytest.mark.parametrize("size", [0, 96])
def test_a_store_torn_while_it_was_created_is_recreated(tmp_path, size):
    path = tmp_path / "s.h5"
    _new(path).close()
    os.truncate(path, size)  # what a kill during creation left (older versions)
    store = _new(path, metadata={"seed": 1})
    assert store.recovered and store.recovered[0].startswith("recreated the store")
    assert len(store) == 0 and store.metadata == {"seed": 1}
    store.append(**batch(0))
    store.close()
    with _new(path, mode="r") as store:
        assert [b.key for b in store.batches()] == ["b0"]


def test_a_store_without_committed_batch_is_recreated(tmp_path):
    path = tmp_path / "s.h5"
    store = _new(path)
    assert store.recovered == []  # a new store is created once, not recreated at once
    store.close()
    with h5py.File(path, "r+") as f:  # killed during its first append
        for ds in f["samples"].values():
            ds.resize(5, axis=0)
    store = SampleStore(path, param_names=["x", "y"], class_names=["a", "b", "c"], input_shape=(8,))
    assert store.recovered == [
        "recreated the store: it had no committed batch, 5 torn sample row(s)"
    ]
    assert store.input_shape == (8,) and len(store) == 0
    store.close()
    with h5py.File(path, "w") as f:  # an older version killed while writing the layout
        f.attrs["format_version"] = 1
        f.create_group("samples")
    with _new(path) as store:
        assert "incomplete layout" in store.recovered[0] and store.input_shape == (512,)
        store.append(**batch(0))


def test_a_store_with_failure_records_only_is_kept(tmp_path):
    path = tmp_path / "s.h5"
    with _new(path) as store:
        fail = {"classes": np.array([1]), "params": np.ones((1, 2))}
        store.record_failed(key="f0", **fail, label=BatchLabel(0, "val", "uniform"), error="boom")
    with _new(path) as store:
        assert store.recovered == [] and [f["key"] for f in store.failures()] == ["f0"]


def test_an_unreadable_file_that_may_hold_data_is_left_alone(tmp_path):
    path = tmp_path / "s.h5"
    junk = b"not an HDF5 file " * 60_000
    path.write_bytes(junk)
    with pytest.raises(StoreError, match=r"not a readable sample store \(1020000 bytes; .*move it"):
        _new(path)
    assert path.read_bytes() == junk


def test_a_kill_during_creation_leaves_no_store_under_its_name(tmp_path):
    path = tmp_path / "s.h5"
    res = subprocess.run(
        [sys.executable, "-m", "tests.store_writer", str(path), "--die-in-create"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    assert not path.exists()
    with _new(path) as store:  # the next run creates it; the leftover is removed
        assert not (tmp_path / ".s.h5.creating").exists()
        store.append(**batch(0))
    with _new(path, mode="r") as store:
        assert [b.key for b in store.batches()] == ["b0"]
