"""The workflows benchmark's configs and its epoch calibration (no campaign is run)."""

import pytest

from streamal.config import parse_config
from tests.bench_modules import bench_module


@pytest.fixture(scope="module")
def wf():
    with bench_module("workflows") as module:
        yield module


@pytest.mark.parametrize(
    ("quick", "accuracy", "pace"),
    [(True, False, 0.0), (False, False, 0.0), (False, True, 0.05), (True, False, 0.6)],
)
def test_every_mode_gives_a_valid_config_for_every_workflow(wf, quick, accuracy, pace):
    for name in wf.WORKFLOWS:
        cfg = wf.config_for(
            name, 0, quick, "diffraction-cryspy", accuracy=accuracy, split=0.3, pace_s=pace
        )
        parsed = parse_config(cfg, check_node=False)
        assert parsed.workflow.name == name
        phases = cfg["workflow"]["phases"]
        if not quick:  # the paper's regime and the accuracy runs: >= 50 patterns per phase
            assert 3 * phases[0]["samples"] >= 50 and all(p["samples"] >= 50 for p in phases[1:])
        if accuracy:  # one test set of >= 1,500 patterns, the same draw for every arm
            test = round(phases[0]["samples"] * cfg["workflow"]["options"]["test_fraction"])
            assert 3 * test >= 1500
        if pace:  # every pattern paced, but phase 0's sets in the accuracy runs
            opts = cfg["simulator"]["options"]
            assert opts["seconds_per_pattern"] == pace
            assert (opts["unpaced_patterns"] >= 1500) == accuracy
        if name == "streaming":
            assert cfg["workflow"]["options"]["split_fraction"] == 0.3


def test_calibrated_epochs_balance_simulation_and_training(wf):
    costs = {
        "sim_sample_s": 1.3,
        "policy_sample_factor": 1.2,
        "train_start_s": 6.0,
        "train_epoch_s": 0.02,
        "train_sample_epoch_s": 0.003,
    }
    n0, batch, study = 17, 51, 8
    epochs = wf.calibrated_epochs(costs, n0, batch, study)
    for k in (1, 2):
        s_k = batch * 1.3 * 1.2
        t_k = 6.0 + epochs[k] * (0.02 + (3 * n0 + k * batch) * 0.003)
        assert t_k == pytest.approx(s_k, rel=0.01)
    assert epochs[0] > epochs[1] > epochs[2]  # like the paper's 400/300/250/200


def test_a_finished_run_of_the_same_config_is_read_not_run_again(tmp_path):
    import json

    import yaml

    with bench_module("_runs") as runs:
        cfg = {"name": "x", "seed": 1}
        run = tmp_path / "serial-1"
        run.mkdir()
        (tmp_path / "serial-1.yaml").write_text(yaml.safe_dump(cfg))
        assert not runs.finished_run(cfg, run)  # no run.json: never started
        (run / "run.json").write_text(json.dumps({"status": "running"}))
        assert not runs.finished_run(cfg, run)  # killed half-way
        (run / "run.json").write_text(json.dumps({"status": "done"}))
        assert runs.finished_run(cfg, run)
        assert not runs.finished_run({**cfg, "seed": 2}, run)


def test_the_regime_map_replays_the_paper_sizes_and_reads_the_balance():
    from streamal.replay.workload import Phase, Workload

    with bench_module("workflow_regimes") as regimes:
        quick = Workload("streaming", (Phase(9, 200), Phase(9, 150)), 6, 6, 9, chunk_size=2)
        paper = regimes.paper_workload(quick)
        assert [p.samples for p in paper.phases] == [51, 51, 51]
        assert [p.epochs for p in paper.phases] == regimes.workflows.PAPER_REGIME["epochs"]
        assert (paper.val, paper.study, paper.chunk_size) == (24, 24, 3)  # round(8.5) = 8
        spans = {
            "S0": (0, 9),
            "T0": (9, 10),
            "S1": (10, 12),
            "T1": (12, 13),
            "S2": (13, 19),
            "T2": (19, 21),
        }
        assert regimes.al_balance(spans) == pytest.approx((2 / 1 + 6 / 2) / 2)  # S0 left out


def test_a_run_whose_phase_0_took_longer_than_its_seeds_other_arms_is_flagged(wf):
    def work(s0, t0):
        return {"S0_task_s": s0, "T0_s": t0}

    per_seed = {  # seed 0 alike; seed 1: streaming's sets twice as long
        "serial": [work(200, 60), work(220, 61)],
        "streaming": [work(205, 62), work(400, 122)],
        "continuous": [work(198, 79), work(200, 60)],  # T0 is not compared
    }
    flags = wf.machine_speed_flags(per_seed)
    assert flags == [{"run": "streaming-1", "work": "S0_task_s", "s": 400, "off": 0.818}]
    tight = wf.machine_speed_flags(per_seed, tolerance=0.05)  # 200 is 9 % under 220
    assert [f["run"] for f in tight] == ["streaming-1", "continuous-1"]
    assert wf.machine_speed_flags(per_seed, min_seconds=300) == []  # start-up, not work


def test_the_phase_figure_draws_every_training_of_every_workflow(wf, tmp_path):
    def training(phase, n, acc):
        return {"phase": phase, "n_train": n, "accuracy": acc, "class_loss": 1 - acc, "mse": 0.1}

    phases = {
        "serial": [[training("T0", 360, 0.78), training("T1", 720, 0.86)]],
        "streaming": [[training("T0", 360, 0.78), training("T1", 479, 0.83)]],
        "continuous": [
            [training("T0", 360, 0.78), training("T1", 552, 0.85), training("T2", 720, 0.9)]
        ],
    }
    path = tmp_path / "phases.png"
    wf.plot_phases({"seeds": 1, "test_patterns": 1500, "accuracy_by_phase": phases}, path)
    assert path.stat().st_size > 10_000
