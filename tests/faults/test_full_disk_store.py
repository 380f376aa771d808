"""The sample store on a full disk: one clear error, nothing partial committed, no zeros.

Each test mounts a 2 MiB tmpfs (it skips where mounting is not permitted) and fills it with a
ballast file, so the disk fills at a chosen point.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from streamal.data.store import SPACE_MARGIN, SampleStore
from streamal.errors import DiskFullError
from tests.store_writer import LAYOUT, batch

pytestmark = pytest.mark.faults


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, unmounted afterwards even when the test fails."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or not sys.platform.startswith("linux"):
        pytest.skip("no mount(8) here")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def _fill(disk, leave: int) -> None:
    """Take all free space of ``disk`` but ``leave`` bytes with a ballast file."""
    free = shutil.disk_usage(disk).free
    with open(disk / "ballast", "wb") as fh:
        if free > leave:
            os.posix_fallocate(fh.fileno(), 0, free - leave)


def _assert_intact(store: SampleStore) -> None:
    """Every committed batch reads back exactly as it was written."""
    assert store.verify() == {}
    view = store.select()
    for b in store.batches():
        rows = np.arange(b.start, b.start + b.count)
        want = batch(int(b.key[1:]), b.count)
        np.testing.assert_array_equal(view._read("inputs", rows), want["inputs"])
        np.testing.assert_array_equal(view._read("params", rows), want["params"])
        np.testing.assert_array_equal(view._read("classes", rows), want["classes"])
    assert len(store) == sum(b.count for b in store.batches())


def test_a_batch_that_does_not_fit_is_refused_before_anything_is_written(small_disk):
    path = small_disk / "store.h5"
    store = SampleStore(path, **LAYOUT)
    _fill(small_disk, 1 << 20)
    i = 0
    with pytest.raises(DiskFullError) as caught:
        while i < 10_000:
            size, n = path.stat().st_size, len(store)
            store.append(**batch(i))
            i += 1
    err = caught.value
    assert i >= 3, "the disk filled before anything was stored"
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"disk full: cannot store batch 'b{i}' ({len(batch(i)['classes'])} ")
    assert f"in {path}: needs " in message and f"free of 2.0 MiB on {small_disk}" in message
    assert err.path == path and err.mount == small_disk
    assert err.free < err.needed and err.needed > SPACE_MARGIN
    # Nothing of the refused batch was written; what is committed stays as it was.
    assert path.stat().st_size == size and len(store) == n and not store.has_batch(f"b{i}")
    store.close()

    store = SampleStore(path, **LAYOUT)  # reopen, the disk still full
    assert store.recovered == []
    assert [b.key for b in store.batches()] == [f"b{k}" for k in range(i)]
    _assert_intact(store)
    (small_disk / "ballast").unlink()
    for k in range(i, i + 40):  # room again: appending goes on
        store.append(**batch(k))
    store.close()
    with SampleStore(path, mode="r") as store:
        assert [b.key for b in store.batches()] == [f"b{k}" for k in range(i + 40)]
        _assert_intact(store)


def test_no_space_inside_hdf5_fails_the_batch_cleanly(small_disk):
    """The free-space check is switched off, so HDF5 itself runs out of space."""
    path = small_disk / "store.h5"
    with SampleStore(path, **LAYOUT) as store:
        for k in range(10):
            store.append(**batch(k))
    _fill(small_disk, 64 << 10)
    # In a subprocess: a crash (HDF5 and h5py have segfaulted here) is a failure, not a hang.
    res = subprocess.run(
        [sys.executable, "-m", "tests.store_writer", str(path), "--unchecked", "10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"writer died ({res.returncode}): {res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr
    steps = [json.loads(line) for line in res.stdout.splitlines()]
    assert steps[0]["key"] == "b10" and steps[0]["error"] == "DiskFullError", steps
    assert steps[0]["message"].startswith("disk full: cannot store batch 'b10' (300 samples) in")
    assert "\n" not in steps[0]["message"] and "free of 2.0 MiB" in steps[0]["message"]
    # The store closed itself: the next batch is refused, not half-written.
    assert steps[1]["error"] == "StoreError" and "reopen it" in steps[1]["message"], steps
    assert steps[2] == {"closed": True}

    (small_disk / "ballast").unlink()
    store = SampleStore(path, **LAYOUT)
    assert [b.key for b in store.batches()] == [f"b{k}" for k in range(10)]
    assert not store.has_batch("b10")
    _assert_intact(store)
    for k in range(10, 20):
        store.append(**batch(k))
    store.close()
    with SampleStore(path, mode="r") as store:
        assert [b.key for b in store.batches()] == [f"b{k}" for k in range(20)]
        _assert_intact(store)
