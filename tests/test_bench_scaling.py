"""The scaling benchmark: its campaign configs, and the keys of its ``--quick`` JSON."""

import json
import subprocess
import sys

import pytest

from tests.bench_modules import BENCH, bench_module


@pytest.fixture(scope="module")
def scaling():
    with bench_module("scaling") as module:
        yield module


def test_the_replay_campaigns_are_the_ci_config_as_each_workflow(scaling):
    full = scaling.ci_config(False, "streaming")
    assert full["workflow"]["name"] == "streaming" and len(full["workflow"]["phases"]) == 3
    quick = scaling.ci_config(True, "serial")
    assert quick["workflow"] == {"name": "serial", "phases": full["workflow"]["phases"][:2]}
    assert quick["simulator"] == full["simulator"] and quick["model"] == full["model"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_reports_every_measurement(tmp_path):
    res = subprocess.run(
        [sys.executable, str(BENCH / "scaling.py"), "--quick", "--json"]
        + ["--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=590,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert json.loads((tmp_path / "scaling.json").read_text())["quick"] is True
    assert (tmp_path / "scaling.png").stat().st_size > 0
    for key in (
        "sim_speedup_2_cores_cryspy",
        "sim_speedup_2_cores_tof",
        "train_epoch_s_1rank",
        "train_epoch_s_2ranks_1node",
        "train_speedup_2ranks_1node",
        "replay_predicted_makespan_s",
        "replay_measured_makespan_s",
        "replay_error",
    ):
        assert isinstance(out[key], float) and out[key] > -1, key
    for name, sim in out["simulation"].items():
        assert len(sim["by_cores"]["2"]["worker_cores_used"]) == 2, name  # both cores worked
        assert 0 < sim["by_cores"]["2"]["worker_busy_share"] <= 1.05, name
    assert out["training"]["layouts"]["1rank"]["ranks"][0]["cores"] == [0]
    assert out["replay"]["predictions"][0]["case"] == "streaming, fitted on itself"
    assert out["replay_cross_errors"] == {}  # --quick runs one campaign
