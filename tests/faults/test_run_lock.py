"""Two drivers on one run directory: the second is refused with who holds it, and changes
nothing — also where HDF5's own file locking is switched off (common on Lustre)."""

import errno
import json
import os
import signal
import socket

import pytest

from streamal.lock import RunDirBusy, RunDirLock
from tests.faults import campaign
from tests.test_run import streamal_run

pytestmark = pytest.mark.faults
NO_HDF5_LOCKS = {"HDF5_USE_FILE_LOCKING": "FALSE"}


def test_a_second_driver_is_refused_and_changes_nothing(tmp_path):
    run = tmp_path / "run"
    cfg = campaign.campaign_config(t0_epochs=60, al_phases=1)
    first = campaign.start(tmp_path, cfg, "--run-dir", str(run), env=NO_HDF5_LOCKS)
    try:
        campaign.wait_for(run, "S0")
        before = (run / "run.json").read_bytes()
        for args in (["--resume", str(run)], [str(tmp_path / "c.yaml"), "--run-dir", str(run)]):
            os.environ.update(NO_HDF5_LOCKS)
            try:
                res = streamal_run(*args)
            finally:
                os.environ.pop("HDF5_USE_FILE_LOCKING")
            assert res.returncode == 2, res.stderr[-2000:]
            assert "Traceback" not in res.stderr
            if args[0] == "--resume":
                assert f"in use by pid {first.pid} on {socket.gethostname()}" in res.stderr
            else:
                assert "already holds a run" in res.stderr
            assert (run / "run.json").read_bytes() == before
        out, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, err[-3000:]
    assert json.loads((run / "run.json").read_text())["status"] == "done"
    campaign.check_store(run, campaign.expected_samples(al_phases=1))


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    with RunDirLock(tmp_path), pytest.raises(RunDirBusy, match=f"pid {os.getpid()}"):
        RunDirLock(tmp_path).acquire()
    RunDirLock(tmp_path).acquire().release()


def test_without_flock_a_stale_lock_of_a_dead_driver_is_taken_over(tmp_path, monkeypatch):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("streamal.lock.fcntl.flock", no_flock)
    held = RunDirLock(tmp_path).acquire()
    with pytest.raises(RunDirBusy, match=f"pid {os.getpid()}"):
        RunDirLock(tmp_path).acquire()
    held.release()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    stale = {"host": socket.gethostname(), "pid": dead, "since": 0}
    (tmp_path / ".lock.held").write_text(json.dumps(stale))
    RunDirLock(tmp_path).acquire().release()  # its holder is gone: taken over
    other = {"host": "another-node", "pid": dead, "since": 0}
    (tmp_path / ".lock.held").write_text(json.dumps(other))
    with pytest.raises(RunDirBusy, match="on another-node"):
        RunDirLock(tmp_path).acquire()  # another host: cannot tell, so refuse
