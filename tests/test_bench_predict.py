"""The prediction benchmark: its held-out patterns, its measures, and the keys of a smoke run."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.bench_modules import BENCH, bench_module


@pytest.fixture(scope="module")
def bench():
    with bench_module("predict") as module:
        yield module


def test_held_out_patterns_carry_what_training_never_saw(bench, tmp_path):
    sizes = bench.Sizes(per_class=1, epochs=1, model={}, cells=6, instruments=2)
    data = bench.held_out(sizes, seed=3, folder=tmp_path)
    low, high = (data["counts"][level] for level in bench.COUNTS)
    assert low.shape == high.shape == (6, 2806)
    assert sorted(np.bincount(data["classes"])) == [2, 2, 2]  # equal thirds
    for counts in (low, high):
        assert (counts >= 0).all() and (counts == np.round(counts)).all()  # Poisson counts
    assert 30 < high.sum() / low.sum() < 300  # two count levels, 10³ and 10⁵ at the peak
    assert (high.min(axis=1) > 0).all()  # a background under every point
    assert (np.abs(data["zero"]) <= bench.ZERO_US).all() and np.ptp(data["zero"]) > 0
    for factors in data["instruments"]:
        assert set(factors) == set(bench.PROFILE_FIELDS)
        assert all(abs(f - 1.0) <= bench.PROFILE_SPREAD for f in factors.values())
        assert any(abs(f - 1.0) > 1e-6 for f in factors.values())
    alone = data["one_at_a_time"]
    assert tuple(alone) == bench.DISTORTIONS
    assert np.allclose(alone["none"].max(axis=1), 1.0) and (alone["none"] >= 0).all()
    assert (alone["background"] > alone["none"]).all()  # a background under every point
    assert not np.array_equal(alone["zero shift"], alone["none"])
    assert not np.array_equal(alone["profile"], alone["none"])
    again = bench.held_out(sizes, seed=3, folder=tmp_path)
    assert np.array_equal(again["counts"][1e5], high)  # the seed fixes the set


def test_errors_count_each_class_s_free_parameters(bench):
    cubic = {"a": 4.0, "b": 4.0, "c": 4.0, "alpha": 90.0, "beta": 90.0, "gamma": 90.0}
    tetra = {**cubic, "c": 4.1}
    trig = {**cubic, "alpha": 89.0, "beta": 89.0, "gamma": 89.0}

    def record(cls, true, refined, converged=True):
        return {
            "class": cls,
            "true": true,
            "refined": refined,
            "model": refined,
            "optimiser_converged": converged,
        }

    records = [
        record("cubic", cubic, {**cubic, "a": 4.002, "b": 4.002, "c": 4.002}),
        record("tetragonal", tetra, {**tetra, "c": 4.104}),
        record("trigonal", trig, {**trig, "alpha": 89.5, "beta": 89.5, "gamma": 89.5}),
    ]
    err = bench.errors(records, "refined")
    assert err["a"] == pytest.approx([0.002, 0.0, 0.0])
    assert err["c"] == pytest.approx([0.004])  # c of the tetragonal pattern only
    assert err["alpha"] == pytest.approx([0.5])  # α of the trigonal pattern only
    assert [bench.true_cell(r) for r in records] == [True, True, False]  # 0.5° > 0.1°
    assert not bench.true_cell(record("cubic", cubic, cubic, converged=False))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_smoke_run_reports_every_measurement(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            str(BENCH / "predict.py"),
            "--smoke",
            "--json",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=590,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert json.loads((tmp_path / "predict-smoke.json").read_text())["mode"] == "smoke"
    assert (tmp_path / "predict-smoke.png").stat().st_size > 0
    assert out["held_out"]["patterns"] == 20
    assert 0.0 <= out["class_accuracy"] <= 1.0 and 0.0 <= out["converged_fraction"] <= 1.0
    assert out["model_mae_A"] > 0.0 and out["refined_mae_A"] >= 0.0
    assert out["seconds_per_refinement"] > 0.0
    assert len(out["targets"]) == 2 and all(isinstance(v, bool) for v in out["targets"].values())
    assert set(out["by_counts"]) == {"1000", "100000"}
    for level in out["by_counts"].values():
        assert level["patterns"] == 10
        for key in ("class_accuracy", "model_mae_A", "refined_mae_A", "converged_fraction"):
            assert isinstance(level[key], float), key
        assert set(level["refined_mae"]) == {"a_A", "c_A", "alpha_deg"}
    assert out["training"]["n_train"] == 300
    alone = out["model_alone_one_distortion_at_a_time"]
    assert list(alone)[0] == "none" and "background" in alone
    assert all(0.0 <= v["class_accuracy"] <= 1.0 for v in alone.values())
