"""The AL-efficiency benchmark's arithmetic and configs: matching sizes, baseline training
budgets, the modes' sizes, ratios per seed, time to accuracy; a slow test runs the GPU mode
shrunk on CPU."""

import json
import math
import subprocess
import sys

import pytest

from streamal.config import parse_config
from streamal.runtime.timeline import TaskRecord
from tests.bench_modules import BENCH, bench_module


@pytest.fixture(scope="module")
def al():
    with bench_module("al_efficiency") as module:
        yield module


def test_samples_to_match_interpolates_in_log_n(al):
    sizes = [1000, 2000, 4000]
    assert al.samples_to_match(sizes, [0.8, 0.9, 0.95], 0.9, "higher") == pytest.approx(2000)
    mid = al.samples_to_match(sizes, [0.8, 0.9, 0.95], 0.925, "higher")
    assert mid == pytest.approx(math.sqrt(2000 * 4000))
    assert al.samples_to_match(sizes, [0.8, 0.9, 0.95], 0.96, "higher") is None
    assert al.samples_to_match(sizes, [0.8, 0.9, 0.95], 0.5, "higher") == 1000
    assert al.samples_to_match(sizes, [0.04, 0.02, 0.01], 0.015, "lower") == pytest.approx(
        math.sqrt(2000 * 4000)
    )


def test_baselines_train_at_least_the_al_campaign(al):
    sizes = al.sizes_for("quick")
    campaign = al.campaign_sample_epochs(sizes)
    assert campaign == 360 * 48 + 600 * 36 + 840 * 30 + 1080 * 24
    for n in (1080, 2160, 4320, 6480):
        epochs = al.baseline_epochs(n, sizes)
        assert n * epochs >= campaign and epochs >= sizes["epochs"][0]
    cfg = al.baseline_config(360, 0, sizes)
    assert cfg["workflow"]["name"] == "baseline" and "policy" not in cfg
    assert round(360 * cfg["workflow"]["options"]["test_fraction"]) == sizes["test"]


def _per_class(cfg, key):
    return round(cfg["workflow"]["phases"][0]["samples"] * cfg["workflow"]["options"][key])


def test_gpu_mode_runs_the_papers_e1_on_one_trainer_rank(al):
    sizes = al.sizes_for("gpu")
    cfg = al.al_config(sizes, 0)
    parse_config(cfg, check_node=False)
    assert cfg["workflow"]["phases"] == [
        {"samples": 4500, "epochs": 400},
        {"samples": 13500, "epochs": 300},
        {"samples": 13500, "epochs": 250},
        {"samples": 13500, "epochs": 200},
    ]
    assert _per_class(cfg, "val_fraction") == _per_class(cfg, "test_fraction") == 2250
    assert cfg["policy"]["options"]["study_size"] == 4500  # 13,500 study points
    assert cfg["site"] == {"trainer_ranks": 1}
    assert cfg["simulator"]["chunk_size"] == 256 and cfg["train"]["batch_size"] == 512
    assert al.al_train_size(sizes) == 54000
    assert al.campaign_sample_epochs(sizes) == 13500 * 400 + 27000 * 300 + 40500 * 250 + 54000 * 200
    # one seed: the AL campaign and baselines of 54,000 (638 epochs), 108,000 and 216,000 (400)
    planned = al.planned_sample_epochs(sizes, ["al"], [1, 2, 4])
    assert planned == 34_425_000 + 54000 * 638 + 108000 * 400 + 216000 * 400
    assert al.planned_sample_epochs(sizes, ["al"] * 3, []) == 3 * 34_425_000
    assert al.DEFAULT_ARMS["gpu"] == ("al",)


@pytest.mark.parametrize("mode", ["quick", "full", "gpu"])
def test_shrunk_modes_keep_the_config_with_fewer_samples_and_epochs(al, mode):
    full, smoke = al.sizes_for(mode), al.sizes_for(mode, smoke=True)
    assert smoke.keys() == full.keys()
    for key in ("n0", "batch", "val", "test", "study", "chunk"):
        assert 1 <= smoke[key] < full[key]
    assert len(smoke["epochs"]) == len(full["epochs"])
    assert all(1 <= s < f for s, f in zip(smoke["epochs"], full["epochs"], strict=True))
    assert smoke["train_batch"] == full["train_batch"]
    assert smoke.get("trainer_ranks") == full.get("trainer_ranks")
    big, small = al.al_config(full, 3), al.al_config(smoke, 3)
    parse_config(small, check_node=False)
    assert small.keys() == big.keys() and small["policy"]["name"] == big["policy"]["name"]
    if mode == "gpu":
        assert smoke["n0"] == 30 and smoke["epochs"] == [4, 3, 2, 2]
    with pytest.raises(ValueError, match="mode"):
        al.sizes_for("tiny")


def test_a_larger_campaign_scales_its_sets_but_keeps_test_set_and_epochs(al):
    sizes = al.sizes_for("quick")
    big = al.scaled(sizes, 4)
    assert (big["n0"], big["batch"], big["val"], big["study"]) == (480, 960, 240, 800)
    assert big["test"] == sizes["test"] and big["epochs"] == sizes["epochs"]
    assert al.al_train_size(big) == 4 * al.al_train_size(sizes) == 4320
    assert al.scaled(sizes, 1) == sizes
    for cfg in (al.al_config(big, 0), al.al_config(sizes, 0)):  # the same test set size
        assert _per_class(cfg, "test_fraction") == sizes["test"]
        assert _per_class(cfg, "val_fraction") == cfg["workflow"]["phases"][0]["samples"] // 2
    with pytest.raises(ValueError, match="> 0"):
        al.scaled(sizes, 0)


def test_every_arm_is_the_same_serial_campaign_with_its_policy(al):
    sizes = al.sizes_for("quick")
    ref = al.al_config(sizes, 1)
    for arm, (policy, options, model) in al.ARMS.items():
        cfg = al.al_config(sizes, 1, arm)
        parse_config(cfg, check_node=False)
        assert cfg["policy"]["name"] == policy
        assert cfg["model"] == (model or ref["model"])
        assert {k: v for k, v in cfg.items() if k not in ("policy", "model")} == {
            k: v for k, v in ref.items() if k not in ("policy", "model")
        }
        if options is None:
            assert "options" not in cfg["policy"]
        else:
            assert cfg["policy"]["options"]["study_size"] == sizes["study"]
    mixture = al.al_config(sizes, 1)["policy"]["options"]
    assert al.al_config(sizes, 1, "topk")["policy"]["options"] == mixture
    assert al.al_config(sizes, 1, "diverse")["policy"]["options"] == {
        **mixture,
        "diversity_power": 1.0,
    }
    assert al.DEFAULT_ARMS["quick"] == ("al", "al_paper_weights", "uniform_phased")
    ensemble = al.al_config(sizes, 1, "ensemble")  # al's policy, told the members' disagreement
    assert ensemble["policy"] == al.al_config(sizes, 1)["policy"]
    assert ensemble["model"]["options"] == {"base": "diffraction-cnn", "members": 3}


def test_the_ensemble_arm_is_planned_as_members_trainings(al):
    sizes = al.sizes_for("quick")
    one = al.planned_sample_epochs(sizes, ["al"], [])
    assert al.planned_sample_epochs(sizes, ["al", "ensemble"], []) == (1 + 3) * one


def _runs(al, arm_acc, base_acc):
    """SizeRuns with accuracy only varying (class loss and MSE: 1 − accuracy)."""

    def metrics(acc):
        return {"accuracy": acc, "class_loss": 1 - acc, "mse": 1 - acc}

    arms = {
        arm: {m: [metrics(a)[m] for a in accs] for m in al.METRICS} for arm, accs in arm_acc.items()
    }
    baselines = [{s: metrics(v) for s, v in seed.items()} for seed in base_acc]
    return al.SizeRuns(arms=arms, baselines=baselines, n_al=[1000] * len(base_acc))


def test_ratios_per_seed_use_each_seeds_own_baselines(al):
    runs = _runs(
        al,
        {"al": [0.9, 0.95, 0.7], "topk": [0.99, 0.99, 0.99]},
        [
            {1000: 0.8, 2000: 0.9, 4000: 0.95},
            {1000: 0.85, 2000: 0.95, 4000: 0.97},
            {1000: 0.8, 2000: 0.9, 4000: 0.95},
        ],
    )
    acc = al.metric_summary(runs, "accuracy")
    assert acc["baseline"] == [0.8, 0.9, 0.95]
    assert acc["al"]["median"] == 0.9 and acc["al"]["ratio"] == 2.0
    assert acc["al"]["per_seed_ratio"] == [2.0, 2.0, None]  # seed 1: its own curve
    assert acc["al"]["per_seed_ratio_text"] == ["2.0", "2.0", "<= 1.0"]
    assert acc["topk"]["ratio"] is None and acc["topk"]["ratio_at_least"] == 4.0
    assert acc["topk"]["per_seed_ratio_text"] == [">= 4.0"] * 3
    loss = al.metric_summary(runs, "class_loss")  # lower is better: the same sizes
    assert loss["al"]["per_seed_ratio"] == [2.0, 2.0, None]


def test_the_json_keeps_the_first_size_on_top_and_adds_every_size(al):
    sizes = al.sizes_for("quick")
    one = _runs(al, {"al": [0.9], "diverse": [0.95]}, [{1000: 0.8, 2000: 0.9, 4000: 0.95}])
    four = _runs(al, {"al": [0.7], "diverse": [0.95]}, [{1000: 0.8, 2000: 0.9, 4000: 0.95}])
    four.n_al = [4000]
    by_size = {"1": al.size_result(one, sizes), "4": al.size_result(four, al.scaled(sizes, 4))}
    out = al.efficiency_result(by_size)
    assert out["al_samples"] == 1000 and out["ratio"] == 2.0
    assert out["baseline_samples_to_match"] == 2000
    assert out["ratio_by_policy"] == {"al": 2.0, "diverse": 4.0}
    assert out["ratios"]["accuracy"] == {"al": "2.0", "diverse": "4.0"}
    assert out["ratio_by_size"] == {1000: 2.0, 4000: None}  # 4,000 baseline: at most 1×
    assert out["by_size"]["4"]["ratios"]["accuracy"]["al"] == "<= 0.25"
    single = al.efficiency_result({"1": by_size["1"]})
    assert "by_size" not in single and single["ratio_by_size"] == {1000: 2.0}


def test_time_to_target_is_the_first_training_that_reaches_it(al):
    assert al.time_to_target([], 0.9) is None
    assert al.time_to_target([(10.0, 0.5), (20.0, 0.8)], 0.9) is None  # never reached
    assert al.time_to_target([(10.0, 0.8), (20.0, 0.91), (30.0, 0.95)], 0.9) == 20.0
    assert al.time_to_target([(10.0, 0.92), (20.0, 0.85), (30.0, 0.95)], 0.9) == 10.0
    assert al.time_to_target([(30.0, 0.95), (20.0, 0.9), (10.0, 0.5)], 0.9) == 20.0
    assert al.time_to_target([(10.0, 0.9)], 0.9) == 10.0  # reaching it counts


def _record(i, stage, started, ended, status="done", pool="train"):
    return TaskRecord(i, stage, pool, stage, 0, started, started, ended, ended, status)


def test_stage_curve_times_each_training_from_the_first_task_start(al):
    records = [
        _record(1, "S0", 100.0, 110.0, pool="sim"),
        _record(2, "T0", 110.0, 150.0),
        _record(3, "AL1", 150.0, 152.0),
        _record(4, "S1", 152.0, 160.0, pool="sim"),
        _record(5, "T1", 160.0, 170.0, status="failed"),  # retried: the attempt that finished
        _record(6, "T1", 171.0, 200.0),
        _record(7, "T2", 200.0, 210.0, status="failed"),  # no attempt finished: no point
        _record(8, "T3", 210.0, None, status="lost"),
    ]
    phases = [
        {"phase": "T0", "test": {"accuracy": 0.8}},
        {"phase": "T1", "test": {"accuracy": 0.9}},
        {"phase": "T2", "test": {"accuracy": 0.95}},
        {"phase": "T3", "test": {}},
    ]
    assert al.stage_curve(phases, records) == [(50.0, 0.8), (100.0, 0.9)]
    assert al.stage_curve(phases, []) == []


def test_time_summary_medians_and_speedups(al):
    curves = {
        "baseline": [[(100.0, 0.9)], [(120.0, 0.9)], [(110.0, 0.8)]],
        "serial": [[(40.0, 0.8), (60.0, 0.9)], [(50.0, 0.9)], [(55.0, 0.91)]],
        "continuous": [[(10.0, 0.5)], [(10.0, 0.5)], [(20.0, 0.95)]],
    }
    out = al.time_summary(curves, 0.9)
    tta = out["time_to_accuracy"]
    assert tta["baseline"] == {"per_seed": [100.0, 120.0, None], "median": 120.0}
    assert tta["serial"] == {"per_seed": [60.0, 50.0, 55.0], "median": 55.0}
    assert tta["continuous"] == {"per_seed": [None, None, 20.0], "median": None}
    speed = out["time_to_accuracy_speedup"]
    assert speed == {"baseline": 1.0, "serial": round(120 / 55, 3), "continuous": None}
    assert al.median_time([None, 3.0]) is None and al.median_time([1.0, 3.0]) == 2.0
    assert al.default_target([0.9, 0.8, 1.0]) == pytest.approx(0.95 * 0.9)


def test_time_arms_run_the_al_campaign_and_a_bulk_baseline_of_its_size(al):
    sizes = al.sizes_for("quick")
    ref = al.al_config(sizes, 2)
    for wf in al.TIME_ARMS:
        cfg = al.time_config(wf, sizes, 2)
        parse_config(cfg, check_node=False)
        assert cfg["workflow"]["name"] == wf and cfg["simulator"] == ref["simulator"]
        if wf == "baseline":
            assert cfg["workflow"]["phases"][0]["samples"] * 3 == al.al_train_size(sizes)
            assert _per_class(cfg, "test_fraction") == sizes["test"]
        else:
            assert cfg["policy"] == ref["policy"]
            assert cfg["workflow"]["phases"] == ref["workflow"]["phases"]
    assert al.time_config("streaming", sizes, 2)["workflow"]["options"]["split_fraction"] == "auto"
    paced = al.time_config("continuous", sizes, 2, pace_s=0.25)["simulator"]
    assert paced["options"]["seconds_per_pattern"] == 0.25
    assert paced["options"]["unpaced_patterns"] == 0 and paced["chunk_size"] == sizes["chunk"]


def test_each_mode_writes_its_own_results(al):
    names = {al.result_name(m, s) for m in al.MODES for s in (False, True)}
    assert al.result_name("quick", False) == "al_efficiency"  # the README's figure
    assert al.result_name("gpu", True) == "al_efficiency-gpu-smoke" and len(names) == 6
    assert al.result_name("quick", False, list(al.DEFAULT_ARMS["quick"])) == "al_efficiency"
    assert al.result_name("quick", False, ["al", "topk"]) == "al_efficiency-al-topk"
    assert al.result_name("gpu", False, ["al"]) == "al_efficiency-gpu"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_gpu_mode_at_smoke_size_runs_every_arm_size_and_timed_workflow(tmp_path):
    """The ``--gpu`` configs run end to end on CPU, shrunk: two campaign sizes, two baseline
    multiples, the time-to-accuracy runs; the JSON keeps its keys per policy and per size."""
    res = subprocess.run(
        [sys.executable, str(BENCH / "al_efficiency.py"), "--gpu", "--smoke", "--seeds", "1"]
        + ["--sizes", "1,0.5", "--multiples", "1,2", "--time-to-accuracy", "--json"]
        + ["--keep", str(tmp_path / "runs"), "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1480,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    name = "al_efficiency-gpu-smoke"
    assert json.loads((tmp_path / f"{name}.json").read_text())["mode"] == "gpu"
    for png in (name, f"{name}_trend", "al_time_to_accuracy-gpu-smoke"):
        assert (tmp_path / f"{png}.png").stat().st_size > 0, png
    assert out["sizes"]["trainer_ranks"] == 1 and out["sizes"]["epochs"] == [4, 3, 2, 2]
    assert out["al_samples"] == 90 + 3 * 90  # 30 per class, then three batches of 90
    for key in ("al_samples", "baseline_samples_to_match", "ratio", "ratio_by_policy"):
        assert key in out, key
    assert set(out["ratio_by_policy"]) == {"al"}
    assert set(out["by_size"]) == {"1", "0.5"}
    half = out["by_size"]["0.5"]["al_samples"]
    assert list(out["ratio_by_size"]) == [str(out["al_samples"]), str(half)]
    for metric in ("accuracy", "class_loss", "mse"):
        entry = out["by_size"]["0.5"]["metrics"][metric]
        assert len(entry["al"]["per_seed"]) == 1 and len(entry["baseline"]) == 2
    assert set(out["time_to_accuracy"]) == {"baseline", "serial", "streaming", "continuous"}
    for arm, finals in out["time_arms_final_accuracy"].items():
        assert len(finals) == 1 and 0.0 <= finals[0] <= 1.0, arm
        assert out["time_arms_makespan_s"][arm][0] > 0, arm
    runs = {p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()}
    assert {"al-0", "al-x0.5-0", "base-x0.5-0-60", "time-continuous-0"} <= runs
