"""A terminal's Ctrl-C, a batch system's SIGTERM and a SIGKILL, sent the way they really
arrive: to the driver's whole process group (or to the driver alone), while a DDP training
and the pools are busy. Each stop is bounded in time, leaves no process behind, says how to
resume, and the resumed run stores exactly what an uninterrupted one does."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.faults import campaign
from tests.test_run import streamal_run

pytestmark = pytest.mark.faults


def _config(**scheduler) -> dict:
    """A long T0 to stop, one AL phase after it; the simulations need not be slow."""
    return campaign.campaign_config(t0_epochs=400, delay=0.01, al_phases=1, **scheduler)


def _interrupt_during_training(tmp_path, sig):
    run = tmp_path / "run"
    proc = campaign.start(tmp_path, _config(), "--run-dir", str(run))
    try:
        campaign.wait_for(run, "T0", status="running")
        deadline = time.time() + 60
        while not (run / "checkpoints" / "T0" / "last.pt").exists() and time.time() < deadline:
            time.sleep(0.1)  # the ranks train and have saved an epoch
        procs = campaign.family(proc, run)
        sent = time.time()
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
        took = time.time() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return run, proc, err, took, procs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "wall-time"])
def test_a_signal_to_the_process_group_stops_in_order_and_the_run_resumes(tmp_path, sig):
    run, proc, err, took, procs = _interrupt_during_training(tmp_path, sig)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert took <= 10, f"stopping took {took:.1f} s"
    assert "Traceback" not in err, err[-3000:]
    hint = next(x for x in err.splitlines() if "-m streamal run --resume" in x).split()
    assert hint[1:] == ["-m", "streamal", "run", "--resume", str(run)]
    assert Path(hint[0]).resolve() == Path(sys.executable).resolve()  # not a bare `python`
    status = campaign.status(run)
    assert status["status"] == "interrupted" and status["signal"] == sig.name
    assert campaign.wait_gone(procs, 15) == []
    assert (run / "timeline.json").exists()

    if sig != signal.SIGINT:
        return  # the resume after a stop is the same whatever the signal: checked once

    # a resume with an edited config is refused and changes nothing
    saved = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(saved.replace("samples: 30", "samples: 40", 1))
    before = (run / "run.json").read_bytes()
    res = streamal_run("--resume", str(run))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "was changed after the run started" in res.stderr
    assert "workflow.phases[1].samples: 30 -> 40" in res.stderr
    assert (run / "run.json").read_bytes() == before
    (run / "config.yaml").write_text(saved)

    res = streamal_run("--resume", str(run))
    assert res.returncode == 0, res.stderr[-3000:]
    assert campaign.status(run)["status"] == "done"
    campaign.check_store(run, campaign.expected_samples(al_phases=1))
    rank0 = json.loads((run / "checkpoints" / "T0" / "rank-0.json").read_text())
    assert rank0.get("resumed_from_epoch", 0) > 0, "T0 started over instead of continuing"


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    run = tmp_path / "run"
    proc = campaign.start(tmp_path, _config(), "--run-dir", str(run))
    try:
        campaign.wait_for(run, "T0", status="running")
        time.sleep(1.0)
        procs = campaign.family(proc, run)
        sent = time.time()
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.time() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert took <= 5, f"forced stop took {took:.1f} s"
    assert "--resume" in err
    status = campaign.status(run)
    assert status["status"] == "interrupted"
    assert campaign.wait_gone(procs, 15) == []


def test_nothing_outlives_a_killed_driver_and_lost_attempts_are_recorded(tmp_path):
    run = tmp_path / "run"
    # the pools exit once they miss the interchange's heartbeat for 10 s (30 s by default)
    config = _config(heartbeat_threshold_s=10)
    proc = campaign.start(tmp_path, config, "--run-dir", str(run))
    try:
        campaign.wait_for(run, "T0", status="running")
        time.sleep(1.5)
        procs = campaign.family(proc, run)
        assert len(procs) >= 5, campaign.alive(procs)  # driver, 2 interchanges, 2 pools, ranks
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its pools are in other groups
        proc.wait(timeout=10)
        left = campaign.wait_gone(procs, 60)
    finally:
        campaign.kill_all(campaign.family(proc, run))
    assert left == [], f"still running 60 s after the driver died: {left}"

    (run / "run.json").write_text("")  # torn by the crash: the resume must not need it
    with open(run / "timeline.jsonl", "a") as fh:
        fh.write('{"id": 99, "name": "torn')
    res = streamal_run("--resume", str(run))
    assert res.returncode == 0, res.stderr[-3000:]
    campaign.check_store(run, campaign.expected_samples(al_phases=1))
    timeline = json.loads((run / "timeline.json").read_text())
    lost = [r for r in timeline if r["status"] == "lost"]
    assert any(r["stage"] == "T0" for r in lost), [(r["name"], r["status"]) for r in timeline]
