"""Kill a NAS search mid-run (SIGKILL to the driver's process group), resume it, and check
that it ends with the candidates an uninterrupted run with the same seed gets, none trained
twice and no record repeated.

The config is ``configs/nas-ci.yaml`` (NSGA-II, PENGUIN, similarity skipping, weight
transfer) made smaller — 6 candidates in two generations of 3, at most 3 epochs, no
end-of-run figures — so that the three runs (killed, resumed, uninterrupted) take about a
minute on 2 cores.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.test_run import streamal_run

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 6


def _config(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "nas-ci.yaml").read_text())
    cfg["workflow"]["phases"] = [{"samples": BUDGET, "epochs": 3}]
    cfg["workflow"]["options"]["population"] = 3
    cfg["report"] = {"figures": False}  # the candidates are compared, not the figures
    path = tmp_path / "nas.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _timeline(run: Path) -> list[dict]:
    path = run / "timeline.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # a torn last line is skipped
    return [json.loads(line) for line in lines if line.strip()]


def _trained(records: list[dict]) -> list[str]:
    """Candidates whose training task finished, one entry per finished task."""
    return [
        r["info"]["candidate"] for r in records if r["stage"] == "train" and r["status"] == "done"
    ]


def _records(run: Path) -> list[dict]:
    path = run / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line.strip()]


def _kill_mid_search(run: Path, config: Path, done_before_kill: int = 3, timeout: float = 120):
    """Start the search; SIGKILL it once ``done_before_kill`` candidates are trained and
    another one is part way through its training."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", "run", str(config), "--run-dir", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            done = set(_trained(_timeline(run)))
            training = {r["candidate"] for r in _records(run)} - done
            if len(done) >= done_before_kill and training:
                break
            if proc.poll() is not None:
                raise AssertionError("the search finished before it could be killed")
            time.sleep(0.05)
        else:
            raise AssertionError(f"{done_before_kill} candidates not trained in {timeout} s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its interchanges die at once
        proc.communicate(timeout=30)
    return done, training


def _candidates(run: Path) -> list[tuple]:
    rows = json.loads((run / "candidates.json").read_text())
    return [
        (r["id"], r["genome"], r["status"], r["similar_to"], r["transfer_provider"], r["fitness"])
        for r in rows
    ]


def test_killed_search_resumes_to_the_candidates_of_an_uninterrupted_run(tmp_path):
    config = _config(tmp_path)
    run = tmp_path / "run"
    done_before, in_flight = _kill_mid_search(run, config)
    n_before = len(_timeline(run))

    res = streamal_run("--resume", str(run), timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming" in res.stderr

    # every (candidate, epoch) recorded once, each curve from 0.5 epoch, in order
    records = _records(run)
    pairs = Counter((r["candidate"], r["epoch"]) for r in records)
    assert max(pairs.values()) == 1, [k for k, v in pairs.items() if v > 1]
    for cid in {r["candidate"] for r in records}:
        epochs = [r["epoch"] for r in records if r["candidate"] == cid]
        assert epochs == [0.5 * (i + 1) for i in range(len(epochs))], (cid, epochs)

    # no candidate trained twice: those done before the kill are not trained again, the one
    # in flight is trained once, to completion
    timeline = _timeline(run)
    trained = Counter(_trained(timeline))
    assert max(trained.values()) == 1, trained
    assert not done_before & set(_trained(timeline[n_before:]))
    assert in_flight <= set(trained)

    # every candidate of the budget evaluated once; trained ones have their checkpoint
    rows = json.loads((run / "candidates.json").read_text())
    assert [r["id"] for r in rows] == [f"c{i:04d}" for i in range(1, BUDGET + 1)]
    assert len({r["genome"] for r in rows}) == BUDGET
    for r in rows:
        assert r["status"] in ("trained", "skipped")
        assert (r["status"] == "trained") == (r["id"] in trained), r["id"]
        if r["status"] == "trained":
            assert (run / "checkpoints" / f"{r['id']}.pt").stat().st_size > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["candidates"] == BUDGET
    assert summary["reused_candidates"] >= len(done_before)
    assert json.loads((run / "run.json").read_text())["status"] == "done"

    # the same candidates, statuses, similarity and transfer choices and fitness as a run
    # that was never interrupted
    reference = tmp_path / "reference"
    res = streamal_run(str(config), "--run-dir", str(reference), timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _candidates(run) == _candidates(reference)
