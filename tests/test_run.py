"""End to end: ``streamal run`` with the baseline workflow on a small test simulator."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import yaml

from streamal.data.store import SampleStore

CONFIG = {
    "name": "e2e",
    "seed": 1,
    "scheduler": {"retries": 1, "progress": False},
    "simulator": {"name": "tests.helpers:PeaksSimulator", "chunk_size": 16},
    "model": {"name": "tests.helpers:TinyModel"},
    "train": {"batch_size": 32, "learning_rate": 0.01},
    "workflow": {"name": "baseline", "phases": [{"samples": 40, "epochs": 3}]},
    # the end-of-run figures take ~3 s a campaign; the tests that check them turn them on
    "report": {"figures": False},
}


def streamal_run(*args, umask=None, timeout=300):
    """``python -m streamal run ARGS`` in its own session; on a timeout, dump the driver's
    stacks and kill the whole session (driver, interchange, workers): nothing is left behind."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"streamal run timed out after {timeout} s:\n{err[-8000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _run(tmp_path, config, *extra, umask=None):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return streamal_run(str(path), "--run-dir", str(tmp_path / "run"), *extra, umask=umask)


def test_baseline_run_writes_every_output(tmp_path):
    # with progress on: stderr is a pipe, as in a batch job, so progress comes as log lines
    config = {**CONFIG, "scheduler": {**CONFIG["scheduler"], "progress": True}}
    config["report"] = {"figures": True}  # a user's default
    config["workflow"] = {"name": "baseline", "phases": [{"samples": 40, "epochs": 400}]}
    # a careless umask must not make files writable
    res = _run(tmp_path, config, "--set", "scheduler.progress_interval_s=0.5", umask=0)
    assert res.returncode == 0, res.stderr[-3000:]
    log = res.stderr
    for said in (
        "sim   S0: started, 160 samples in 11 tasks",
        "sim   S0: ended, 160/160 samples in",
        "train T0: training started, 400 epochs",
        "train T0: epoch ",  # a status line while it trains
        " s/epoch, ETA ",
        "train T0: training ended after",
        "epoch 400/400, loss ",
        "Test metrics per phase",
        "Class accuracy (%)",
        f"latest model:   {tmp_path / 'run' / 'checkpoints' / 'T0' / 'best.pt'}",
    ):
        assert said in log, f"{said!r} not in the log:\n{log}"
    assert "\x1b[" not in log  # plain text in a log file
    run = tmp_path / "run"
    for name in (
        "store.h5",
        "timeline.json",
        "metrics.json",
        "run.json",
        "config.yaml",
        "checkpoints/T0/best.pt",
        "report/gantt.png",
        "report/utilisation.png",
    ):
        assert (run / name).exists(), name
    with SampleStore(run / "store.h5", mode="r") as s:
        assert len(s) == 2 * (40 + 20 + 20)
        assert len(s.select(split="train")) == 80
        assert np.bincount(s.select(split="test").classes()).tolist() == [20, 20]
    metrics = json.loads((run / "metrics.json").read_text())["phases"]
    assert metrics[0]["phase"] == "T0" and metrics[0]["n_train"] == 80
    assert set(metrics[0]["test"]) >= {"accuracy", "class_loss", "mse"}
    timeline = json.loads((run / "timeline.json").read_text())
    assert {r["pool"] for r in timeline} == {"sim", "train"}
    assert sum(r["info"].get("samples", 0) for r in timeline if r["pool"] == "sim") == 160
    assert json.loads((run / "run.json").read_text())["status"] == "done"
    writable = [p for p in run.rglob("*") if p.stat().st_mode & 0o002]
    assert not writable, f"world-writable: {writable}"


def test_resume_refuses_another_config(tmp_path):
    res = _run(tmp_path, CONFIG)
    assert res.returncode == 0
    # report.figures: false: the tables, no figure, and the summary says how to draw them
    report = tmp_path / "run" / "report"
    assert (report / "tasks.json").exists() and not list(report.glob("*.png"))
    assert "not drawn (report.figures: false)" in res.stderr
    other = {**CONFIG, "seed": 2}
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(other))
    res = subprocess.run(
        [sys.executable, "-m", "streamal", "run", str(path), "--resume", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "seed: 1 -> 2" in res.stderr
