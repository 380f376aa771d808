"""A campaign whose disk fills up (or turns read-only) stops with one clear line, says so in
run.json, and resumes after space is freed with every sample intact — on a real small tmpfs
(skipped where one cannot be mounted)."""

import os
import shutil
import subprocess
import uuid

import pytest

from tests.faults import campaign
from tests.test_run import streamal_run

pytestmark = pytest.mark.faults


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(disk, leave: int):
    free = shutil.disk_usage(disk).free
    with open(disk / "ballast", "wb") as fh:
        fh.write(b"\1" * (free - leave))


def test_a_full_disk_stops_the_run_cleanly_and_the_resume_completes(tmp_path, small_disk):
    run = small_disk / "run"
    _fill(small_disk, 700 * 1024)  # room to start, not to finish
    cfg = campaign.campaign_config(al_phases=1)
    (tmp_path / "c.yaml").write_text(__import__("yaml").safe_dump(cfg))
    res = streamal_run(str(tmp_path / "c.yaml"), "--run-dir", str(run))
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    line = next(x for x in res.stderr.splitlines() if x.startswith("error: "))
    assert "disk full" in line and str(small_disk) in line and "free of" in line, line
    assert "--resume" in res.stderr
    status = campaign.status(run)
    assert status["status"] == "failed" and status["reason"] == "disk full"
    assert "disk full" in status["error"]

    # a read-only file system: refused with one line, nothing changes
    before = (run / "run.json").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        res = streamal_run("--resume", str(run))
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "Read-only file system" in res.stderr
    assert (run / "run.json").read_bytes() == before

    os.remove(small_disk / "ballast")
    res = streamal_run("--resume", str(run))
    assert res.returncode == 0, res.stderr[-3000:]
    assert campaign.status(run)["status"] == "done"
    campaign.check_store(run, campaign.expected_samples(al_phases=1))
