"""State files of a run directory are replaced whole or not at all, and a torn one (a crash
on a file system without atomic rename, a hand edit) falls back to the last good state."""

import json
import os

import numpy as np
import pytest

from streamal import durable
from streamal.runtime.timeline import TaskRecord, Timeline, load_records
from streamal.train.metrics import MetricsLog
from streamal.workflows.active import _load_batch
from tests.test_run import CONFIG, _run

pytestmark = pytest.mark.faults


def test_a_write_killed_midway_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    durable.write_json(path, {"status": "running"})

    def die(*args):
        raise KeyboardInterrupt  # the process is stopped between write and rename

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        durable.write_json(path, {"status": "done"})
    assert json.loads(path.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary left


def test_torn_metrics_split_and_batch_files_fall_back(tmp_path):
    (tmp_path / "metrics.json").write_text('{"phases": [{"pha')
    assert MetricsLog(tmp_path / "metrics.json").phases == []
    assert durable.read_json(tmp_path / "metrics.json", default=None) is None
    with pytest.raises(durable.TornFileError):
        durable.read_json(tmp_path / "metrics.json")
    (tmp_path / "phase-1.npz").write_bytes(b"PK\3\4 torn")
    assert _load_batch(tmp_path / "phase-1.npz") is None
    np.savez(tmp_path / "phase-2.npz", classes=np.arange(3))
    assert _load_batch(tmp_path / "phase-2.npz")["classes"].tolist() == [0, 1, 2]


def test_an_attempt_lost_with_the_driver_reads_back_as_lost(tmp_path):
    t = Timeline(tmp_path)
    rec = TaskRecord(1, "S0/chunk-0", "sim", "S0", 1, 1.0, None, None, 1.0, "running")
    t.submitted(rec)
    t.submitted(TaskRecord(2, "T0", "train", "T0", 1, 2.0, None, None, 2.0, "running"))
    t.add(TaskRecord(1, "S0/chunk-0", "sim", "S0", 1, 1.0, 1.5, 2.5, 3.0, "done"))
    records = {r.name: r.status for r in load_records(tmp_path / "timeline.jsonl")}
    assert records == {"S0/chunk-0": "done", "T0": "lost"}
    assert {r.status for r in Timeline(tmp_path).records} == {"done", "lost"}


def test_an_unexpected_error_is_recorded_in_run_json(tmp_path):
    cfg = {**CONFIG, "workflow": {**CONFIG["workflow"], "name": "tests.helpers:BrokenWorkflow"}}
    res = _run(tmp_path, cfg)
    assert res.returncode == 1, res.stderr[-2000:]
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["status"] == "failed"
    assert status["error"] == "RuntimeError: unexpected failure inside the workflow"
