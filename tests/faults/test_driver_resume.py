"""Kill the driver and its group mid-phase, resume at once, and check no sample is simulated
twice or lost. (Ctrl-C and SIGTERM: ``test_stop_signals.py``.)"""

import json
import os
import signal
import time
from collections import Counter

import pytest

from streamal.data.store import SampleStore
from tests.faults import campaign
from tests.test_run import streamal_run
from tests.test_workflows import _config

pytestmark = pytest.mark.faults


def test_killed_driver_resumes_without_repeating_or_losing_samples(tmp_path):
    cfg = _config("serial")
    cfg["simulator"]["options"] = {"delay": 0.05}
    cfg["workflow"]["phases"] = cfg["workflow"]["phases"][:2]  # T0, then the AL phase killed
    run = tmp_path / "run"
    proc = campaign.start(tmp_path, cfg, "--run-dir", str(run))
    campaign.wait_for(run, "AL1")  # phase 1 under way: S1 chunks are being simulated
    time.sleep(0.6)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pools die at once
    proc.wait(timeout=30)
    before = [r for r in campaign.records(run) if r["pool"] == "sim" and r["status"] == "done"]
    assert not (run / "metrics.json").exists() or "T1" not in (run / "metrics.json").read_text()

    res = streamal_run("--resume", str(run))
    assert res.returncode == 0, res.stderr[-3000:]
    # the dead driver's pools were still running (until their heartbeat ran out): stopped
    assert "process(es) left by the previous driver" in res.stderr
    after = [r for r in campaign.records(run) if r["pool"] == "sim" and r["status"] == "done"]
    repeated = Counter(r["name"] for r in after)
    assert max(repeated.values()) == 1, (
        f"simulated twice: {[k for k, v in repeated.items() if v > 1]}"
    )
    assert len(after) > len(before) > 0
    with SampleStore(run / "store.h5", mode="r") as s:
        keys = [b.key for b in s.batches()]
        assert len(keys) == len(set(keys))
        # as many as an uninterrupted run: 2 classes x (train, val, test, study) + the AL batch
        assert len(s) == 2 * (24 + 12 + 12 + 16) + 30
    phases = [m["phase"] for m in json.loads((run / "metrics.json").read_text())["phases"]]
    assert phases == ["T0", "T1"]
    assert json.loads((run / "run.json").read_text())["status"] == "done"
