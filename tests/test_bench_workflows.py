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
