"""End to end: ``streamal run`` with a compiled C program as the simulator and no Python code.

The space has two good classes and two fault classes whose centre is tied to a value where
the program crashes (exit status 3) or hangs, so every chunk (one sample per class) holds one
crashing and one hanging sample. The run must finish, keep the good samples, record the bad
ones with their error and work directory, and stop the hung program at the sim walltime.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import psutil

from streamal.data.store import SampleStore
from tests.executable_program import POINTS, compile_peak, reference
from tests.test_run import _run

WALLTIME_S = 1.5
SPACE = {
    "classes": [
        {"name": "narrow", "bounds": {"centre": [0.3, 0.7]}, "tied": {"width": 0.02}},
        {"name": "wide", "bounds": {"centre": [0.3, 0.7], "width": [0.05, 0.1]}},
        {"name": "crashes", "bounds": {"width": [0.05, 0.1]}, "tied": {"centre": 0.1}},
        {"name": "hangs", "bounds": {"width": [0.05, 0.1]}, "tied": {"centre": 0.9}},
    ]
}


def _config(peak: Path) -> dict:
    return {
        "name": "exe",
        "seed": 3,
        "scheduler": {"retries": 1, "progress": False, "walltime_s": {"sim": WALLTIME_S}},
        "simulator": {
            "name": "executable",
            "chunk_size": 4,
            "options": {
                "command": f"{peak} {{input}} {{output}}",
                "output_shape": [POINTS],
                "space": SPACE,
                "timeout_s": 600,  # the scheduler's walltime stops the hang first
                "env": {"PEAK_FAULTS": "1"},
            },
        },
        "model": {"name": "generic-mlp", "options": {"hidden": [16]}},
        "train": {"batch_size": 8, "learning_rate": 0.01},
        "workflow": {"name": "baseline", "phases": [{"samples": 1, "epochs": 2}]},
        "report": {"figures": False},  # the tables (tasks.json) are what this test reads
    }


def _workdir(error: str) -> Path:
    match = re.search(r"workdir (\S+)", error)
    assert match, f"the failure names no work directory: {error}"
    return Path(match.group(1).rstrip(","))


def test_a_campaign_with_a_hanging_and_a_crashing_sample_per_chunk(tmp_path):
    peak = compile_peak(tmp_path)
    t0 = time.monotonic()
    res = _run(tmp_path, _config(peak))
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"

    with SampleStore(run / "store.h5", mode="r") as store:
        view = store.select()
        classes, params = view.classes(), view.params()
        assert len(store) == 6 and set(classes.tolist()) == {0, 1}  # 2 good per split
        np.testing.assert_array_equal(view.inputs(), reference(classes, params))
        failures = store.failures()
    by_class = {k: [f for f in failures if f["class"] == k] for k in (2, 3)}
    assert len(failures) == 6 and [len(v) for v in by_class.values()] == [3, 3]
    for f in by_class[2]:
        assert "exited with status 3" in f["error"]
        assert "cannot handle centre 0.1" in f["error"]
        assert (_workdir(f["error"]) / "input.txt").exists()
    for f in by_class[3]:
        assert f"timed out after {WALLTIME_S:g} s" in f["error"]
        workdir = _workdir(f["error"])
        assert (workdir / "stderr.txt").read_text().startswith("hanging on centre 0.9")

    timeline = json.loads((run / "timeline.json").read_text())
    timeouts = [r for r in timeline if r["status"] == "timeout"]
    assert len(timeouts) == 3 and all(r["pool"] == "sim" for r in timeouts)
    assert all(r["ended"] - r["started"] < WALLTIME_S + 2 for r in timeouts)
    assert any(r["status"] == "failed" and "status 3" in r["error"] for r in timeline)
    tasks = json.loads((run / "report" / "tasks.json").read_text())
    assert sum(row["timeout"] for row in tasks) == 3

    left = [p.pid for p in psutil.process_iter(["exe"]) if p.info["exe"] == str(peak)]
    assert not left, f"hung programs left running: {left}"
    assert took < 150, f"the run took {took:.0f} s: a hang was not stopped at its walltime"
