"""The active-learning workflows end to end on the small test simulator."""

import json

import numpy as np
import pytest

from streamal.data.store import SampleStore
from streamal.workflows.streaming import balanced_fraction
from tests.test_run import CONFIG, _run

PHASES = [{"samples": 24, "epochs": 3}, {"samples": 30, "epochs": 2}, {"samples": 30, "epochs": 2}]


def _config(workflow, **options):
    slow = {**CONFIG["simulator"], "options": {"delay": 0.04}}
    return {
        **CONFIG,
        "simulator": slow,
        "workflow": {"name": workflow, "phases": PHASES, "options": options},
        "policy": {"name": "uncertainty-mixture", "options": {"study_size": 16}},
    }


def _timeline(run):
    return json.loads((run / "timeline.json").read_text())


def _span(records, phase, start="started"):
    rs = [r for r in records if r["stage"] == phase and r["started"]]
    return min(r[start] for r in rs), max(r["ended"] for r in rs)


def _in_flight(records, phase):
    """From the first submission to the last end: what the workflow ran concurrently (a busy
    machine may start a queued task late, which says nothing about the workflow)."""
    return _span(records, phase, start="submitted")


def test_serial_runs_phases_one_after_another(tmp_path):
    res = _run(tmp_path, _config("serial"))
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())["phases"]
    assert [m["phase"] for m in metrics] == ["T0", "T1", "T2"]
    assert [m["n_train"] for m in metrics] == [48, 78, 108]
    with SampleStore(run / "store.h5", mode="r") as s:
        assert len(s.select(split="study")) == 32
        origins = {b.origin for b in s.batches() if b.phase > 0}
        assert origins == {"uncertainty-mixture"}
    t = _timeline(run)
    assert _span(t, "S1")[0] >= _span(t, "T0")[1] - 1e-3
    assert _span(t, "T1")[0] >= _span(t, "S1")[1] - 1e-3
    assert {r["stage"] for r in t} >= {"AL1", "AL2"}


def test_streaming_overlaps_simulation_with_training(tmp_path):
    res = _run(tmp_path, _config("streaming", split_fraction=0.5))
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())["phases"]
    # T1 trains on phase 0 + half of P1; T2 adds S'1 and all of P2
    assert [m["n_train"] for m in metrics] == [48, 63, 108]
    t = _timeline(run)
    s_study, t0 = _in_flight(t, "S'0"), _in_flight(t, "T0")
    assert s_study[0] < t0[1] and t0[0] < s_study[1], "S'0 did not overlap T0"
    s1p, t1 = _in_flight(t, "S'1"), _in_flight(t, "T1")
    assert s1p[0] < t1[1] and t1[0] < s1p[1], "S'1 did not overlap T1"


def test_continuous_keeps_simulating_while_training(tmp_path):
    res = _run(tmp_path, _config("continuous"))
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    with SampleStore(run / "store.h5", mode="r") as s:
        cont = [b for b in s.batches() if b.key.startswith("cont/")]
        assert sum(b.count for b in cont) == 60
    t = _timeline(run)
    trainings = [r for r in t if r["pool"] == "train" and r["stage"].startswith("T")]
    sims = [r for r in t if r["stage"].startswith("C")]
    overlapping = [
        s
        for s in sims
        for tr in trainings
        if s["started"] < tr["ended"] and tr["started"] < s["ended"]
    ]
    assert overlapping, "no simulation ran while the trainer trained"
    s_study, t0 = _in_flight(t, "S'0"), _in_flight(t, "T0")
    assert s_study[0] < t0[1] and t0[0] < s_study[1], "S'0 did not overlap T0"
    assert min(r["submitted"] for r in sims) >= s_study[1] - 1e-3, "fed chunks overtook S'0"
    metrics = json.loads((run / "metrics.json").read_text())["phases"]
    assert metrics[-1]["n_train"] == 48 + 60
    sizes = [m["n_train"] for m in metrics]
    assert np.all(np.diff(sizes) > 0), f"retrained on the same data: {sizes}"
    assert metrics[-1]["epochs"] == PHASES[-1]["epochs"]  # the schedule's epochs at 108 samples


def test_continuous_run_fails_when_its_feeder_fails(tmp_path):
    cfg = _config("continuous", chunks_in_flight=1)  # most chunks are drawn after T0
    cfg["simulator"] = {**cfg["simulator"], "chunk_size": 4, "options": {"delay": 0.1}}
    # ~60 s of chunks (0.4 s each, one at a time): the feeder still draws once the first
    # policy is fitted even on a loaded machine; the run fails at that draw, long before.
    cfg["workflow"]["phases"] = [
        PHASES[0],
        {"samples": 300, "epochs": 2},
        {"samples": 300, "epochs": 2},
    ]
    cfg["policy"] = {"name": "tests.helpers:ExplodingPolicy", "options": {"study_size": 16}}
    res = _run(tmp_path, cfg)
    assert res.returncode != 0
    assert "policy draw exploded" in res.stderr


@pytest.mark.parametrize(
    ("n", "n_train", "rate", "cost", "epochs"),
    [(100, 200, 50.0, 0.001, 10), (1000, 0, 10.0, 0.01, 5)],
)
def test_balanced_fraction_equalises_the_parallel_group(n, n_train, rate, cost, epochs):
    f = balanced_fraction(n, n_train, rate, cost, epochs, 0.0)
    sim_time = (1 - f) * n / rate
    train_time = cost * epochs * (n_train + f * n)
    assert np.isclose(sim_time, train_time)


def test_auto_split_measures_the_simulation_rate_of_its_stage_from_the_timeline():
    from streamal.runtime.timeline import TaskRecord
    from streamal.workflows.streaming import measured_rates

    def rec(stage, started, ended, samples):
        return TaskRecord(
            1,
            stage,
            "sim",
            stage,
            1,
            started,
            started,
            ended,
            ended,
            "done",
            info={"samples": samples},
        )

    records = [rec("S1", 0.0, 5.0, 30), rec("S1", 5.0, 10.0, 30), rec("T0", 0.0, 50.0, 0)]
    rate, cost = measured_rates(records, "S1", {"wall_s": 20.0, "n_train": 100, "epochs": 2})
    assert rate == 6.0 and cost == 0.1


@pytest.mark.slow  # ~70 s: the feeding must outlast T0's start-up on a busy machine
def test_continuous_stops_a_training_the_last_chunk_makes_obsolete(tmp_path):
    # an AL batch of 120 in chunks of 4 (30 chunks, ~36 s); the schedule gives a training in
    # between thousands of epochs (minutes) and the final one 3: the training running when
    # the last chunk lands is stopped after its epoch, and the final one starts at once
    cfg = _config("continuous")
    cfg["simulator"] = {**cfg["simulator"], "chunk_size": 4, "options": {"delay": 0.3}}
    cfg["workflow"]["phases"] = [
        {"samples": 8, "epochs": 3},
        {"samples": 60, "epochs": 30000},
        {"samples": 60, "epochs": 3},
    ]
    res = _run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    t = _timeline(run)
    last_chunk = max(r["ended"] for r in t if r["stage"].startswith("C"))
    metrics = json.loads((run / "metrics.json").read_text())["phases"]
    assert metrics[-1]["n_train"] == 16 + 120 and metrics[-1]["epochs"] == 3
    runs = {r["stage"]: r for r in t if r["pool"] == "train" and r["stage"].startswith("T")}
    stopped = [
        m
        for m in metrics[1:-1]
        if len(json.loads((run / "checkpoints" / m["phase"] / "history.json").read_text()))
        < m["epochs"]
    ]
    assert stopped, f"no training was stopped: {[(m['phase'], m['epochs']) for m in metrics]}"
    for m in stopped:  # stopped once the last chunk was in, not run for minutes
        assert runs[m["phase"]]["ended"] - last_chunk < 20
        assert not (run / "checkpoints" / m["phase"] / "STOP").exists()
    assert not [r for r in t if r["stage"].startswith("AL") and r["started"] > last_chunk], (
        "an AL task ran after the last chunk: nothing is drawn any more"
    )
