"""Kill the driver mid-phase, resume, and check no sample is simulated twice or lost."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from streamal.store import SampleStore
from tests.test_run import streamal_run
from tests.test_workflows import _config

pytestmark = pytest.mark.faults


def _start(tmp_path, config, *args):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a suite started in the background (`cmd &`) inherits SIGINT ignored; the driver
        # must see it as a user's Ctrl-C does
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _records(run):
    path = run / "timeline.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for(run, phase, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(r["phase"] == phase and r["status"] == "done" for r in _records(run)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{phase} never completed")


def test_killed_driver_resumes_without_repeating_or_losing_samples(tmp_path):
    cfg = _config("serial")
    cfg["simulator"]["options"] = {"delay": 0.05}
    run = tmp_path / "run"
    proc = _start(tmp_path, cfg, "--run-dir", str(run))
    _wait_for(run, "AL1")  # phase 1 under way: S1 chunks are being simulated
    time.sleep(0.6)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pools die at once
    proc.wait(timeout=30)
    before = [r for r in _records(run) if r["pool"] == "sim" and r["status"] == "done"]
    assert not (run / "metrics.json").exists() or "T2" not in (run / "metrics.json").read_text()

    res = streamal_run("--resume", str(run))
    assert res.returncode == 0, res.stderr[-3000:]
    # the dead driver's pools were still running (until their heartbeat ran out): stopped
    assert "process(es) left by the previous driver" in res.stderr
    after = [r for r in _records(run) if r["pool"] == "sim" and r["status"] == "done"]
    repeated = Counter(r["name"] for r in after)
    assert max(repeated.values()) == 1, (
        f"simulated twice: {[k for k, v in repeated.items() if v > 1]}"
    )
    assert len(after) > len(before) > 0
    with SampleStore(run / "store.h5", mode="r") as s:
        keys = [b.key for b in s.batches()]
        assert len(keys) == len(set(keys))
        # as many as an uninterrupted run: 2 classes x (train, val, test, study) + 2 AL batches
        assert len(s) == 2 * (24 + 12 + 12 + 16) + 30 + 30
    phases = [m["phase"] for m in json.loads((run / "metrics.json").read_text())["phases"]]
    assert phases == ["T0", "T1", "T2"]
    assert json.loads((run / "run.json").read_text())["status"] == "done"


def test_sigint_stops_gracefully_and_says_how_to_resume(tmp_path):
    cfg = _config("serial")
    cfg["simulator"]["options"] = {"delay": 0.05}
    run = tmp_path / "run"
    proc = _start(tmp_path, cfg, "--run-dir", str(run))
    _wait_for(run, "S0")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert f"--resume {run}" in err
    assert (run / "timeline.json").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    with SampleStore(run / "store.h5", mode="r") as s:  # flushed and readable
        stored = len(s)
    res = streamal_run("--resume", str(run))
    assert res.returncode == 0, res.stderr[-3000:]
    with SampleStore(run / "store.h5", mode="r") as s:
        assert len(s) == 2 * (24 + 12 + 12 + 16) + 30 + 30 >= stored
