"""The AL-efficiency benchmark's arithmetic: matching sizes and baseline training budgets."""

import math

import pytest

from tests.bench_modules import bench_module


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
    sizes = al.sizes_for(quick=True)
    campaign = al.campaign_sample_epochs(sizes)
    assert campaign == 360 * 48 + 600 * 36 + 840 * 30 + 1080 * 24
    for n in (1080, 2160, 4320, 6480):
        epochs = al.baseline_epochs(n, sizes)
        assert n * epochs >= campaign and epochs >= sizes["epochs"][0]
    cfg = al.baseline_config(360, 0, sizes)
    assert cfg["workflow"]["name"] == "baseline" and "policy" not in cfg
    assert round(360 * cfg["workflow"]["options"]["test_fraction"]) == sizes["test"]
