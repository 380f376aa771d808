"""The NAS benchmark's arithmetic: configs per dataset, ratios to plain, the engine replay."""

import math

import pytest

from tests.bench_modules import bench_module


@pytest.fixture(scope="module")
def nas():
    with bench_module("nas") as module:
        yield module


def test_diffraction_configs_differ_only_in_the_variant_and_count_level(nas) -> None:
    from streamal.config import parse_config

    plain = nas.config_for("plain", 1, True, "diffraction", 1e3)
    full = nas.config_for("predict_similar_transfer", 1, True, "diffraction", 1e5)
    parse_config(full, check_node=False)  # a valid streamal config, plugins checked
    opts = full["workflow"]["options"]
    assert opts["dataset"]["counts"] == 1e5 and plain["workflow"]["options"]["dataset"]["counts"]
    assert opts["prediction"]["enabled"] and opts["similarity"]["enabled"]
    assert opts["transfer"]["enabled"] and not plain["workflow"]["options"]["transfer"]["enabled"]
    assert opts["fitness"] == "score" and opts["fitness_reference"] == nas.SCORE_REFERENCE
    assert plain["simulator"] == full["simulator"] and plain["seed"] == full["seed"]
    assert plain["workflow"]["phases"] == full["workflow"]["phases"]
    assert nas.count_levels(True, False) == (1e3,)
    assert nas.count_levels(True, False, [1e3, 1e5]) == (1e3, 1e5)
    assert nas.count_levels(False, False) == nas.COUNTS and len(nas.count_levels(True, True)) == 1
    smoke = nas.base_config(False, "diffraction", smoke=True)["workflow"]
    assert smoke["phases"] == [{"samples": 4, "epochs": 2}]
    assert nas.base_config(True)["workflow"]["phases"] == [{"samples": 20, "epochs": 10}]


def test_ratios_and_best_variant(nas) -> None:
    plain = {"wall_s": 100.0, "epochs": 200.0, "flops": 1e9, "hypervolume": 0.5}
    fast = {"wall_s": 50.0, "epochs": 80.0, "flops": 4e8, "hypervolume": 0.49}
    r = nas.ratios_vs_plain(plain, fast)
    assert r == pytest.approx(
        {
            "epochs_saved_fraction": 0.6,
            "flops_saved_fraction": 0.6,
            "wall_speedup": 2.0,
            "hypervolume_ratio": 0.98,
        }
    )
    lossy = {**r, "wall_speedup": 3.0, "hypervolume_ratio": 0.9}
    assert nas.best_variant({"predict": r, "predict_similar": lossy}) == "predict"
    assert nas.best_variant({"a": {**lossy, "hypervolume_ratio": 0.8}, "b": lossy}) == "b"
    assert math.isnan(nas.ratios_vs_plain({**plain, "hypervolume": 0.0}, fast)["hypervolume_ratio"])
    # an engine hypervolume flattered by predicted fitness does not keep a variant
    measured = nas.ratios_vs_plain(
        {**plain, "hypervolume_measured": 0.5}, {**fast, "hypervolume_measured": 0.4}
    )
    assert measured["hypervolume_measured_ratio"] == pytest.approx(0.8)
    assert nas.best_variant({"predict": measured, "predict_similar": lossy}) == "predict_similar"
    # the Pareto front retrained for the full budget, where measured, is what judges a variant
    retrained = {**measured, "hypervolume_retrained_ratio": 0.97}
    assert nas.kept_hypervolume(retrained) == 0.97
    assert nas.best_variant({"predict": retrained, "predict_similar": lossy}) == "predict"
    med = nas.median_ratios([{"p": {"x": 1.0}}, {"p": {"x": 3.0}}, {"p": {"x": 2.0}}])
    assert med == {"p": {"x": 2.0}}


def _row(cid, curve, actual, cost=10.0, status="trained", metric="score"):
    return {
        "id": cid,
        "curve": curve,
        "actual_fitness": actual,
        "fitness_metric": metric,
        "cost": cost,
        "status": status,
    }


def test_measured_hypervolume_uses_measured_fitness_of_trained_candidates(nas) -> None:
    rows = [
        _row("c1", [], 0.5, cost=50.0),
        _row("c2", [], 0.5, cost=50.0, status="skipped"),
        _row("c3", [], 2.0, cost=10.0),  # worse than the reference: adds nothing
    ]
    assert nas.measured_hypervolume(rows, [1.0, 100.0]) == pytest.approx(0.25)
    assert nas.measured_hypervolume([], [1.0, 100.0]) == 0.0
    acc = [_row("c1", [], 75.0, cost=50.0, metric="accuracy")]
    assert nas.measured_hypervolume(acc, [100.0, 100.0]) == pytest.approx(0.75 * 0.5)


def test_engine_replay_ranks_losses_lowest_first(nas) -> None:
    """A minimised fitness: the replay runs the engine minimising and the top-x% are the
    lowest final losses (the replay was once maximising on every run)."""
    cfg = nas.config_for("plain", 0, True, "diffraction", 1e3)
    epochs = cfg["workflow"]["phases"][0]["epochs"]
    steps = [0.5 * (i + 1) for i in range(2 * epochs)]
    rows = [
        _row(f"c{k}", [(e, level + 1.0 / (1 + e)) for e in steps], None)
        for k, level in enumerate([0.2, 0.4, 0.6, 0.8, 1.0])
    ]
    q = nas.engine_quality(rows, cfg)
    assert q["top20"]["sensitivity"] == 1.0 and q["top20"]["specificity"] == 1.0
    assert 0.0 <= q["epochs_saved_fraction"] < 1.0


@pytest.fixture(scope="module")
def reference():
    with bench_module("_nas_reference") as module:
        yield module


def test_beating_the_reference_takes_fewer_flops_and_no_worse_test_metrics(reference) -> None:
    ref = {"flops": 100, "accuracy": 0.8, "mse": 0.05}
    assert reference.beats({"flops": 50, "accuracy": 0.8, "mse": 0.04}, ref)
    assert not reference.beats({"flops": 50, "accuracy": 0.8, "mse": 0.06}, ref)
    assert not reference.beats({"flops": 50, "accuracy": 0.7, "mse": 0.01}, ref)
    assert not reference.beats({"flops": 100, "accuracy": 0.9, "mse": 0.01}, ref)


def test_held_out_metrics_train_on_the_run_and_score_its_test_split(reference, tmp_path) -> None:
    """A tiny store with noisy counts: the metrics are the test split's, of a network
    trained for the search's budget."""
    import numpy as np

    from streamal import plugins
    from streamal.data.label import BatchLabel
    from streamal.data.store import SampleStore
    from streamal.policy.uniform import UniformPolicy

    sim = {"name": "diffraction-tof", "options": {"preset": "e1"}}
    space = plugins.load("simulators", sim["name"])(**sim["options"]).space
    with SampleStore(
        tmp_path / "store.h5",
        param_names=space.param_names,
        class_names=space.class_names,
        input_shape=(64,),
    ) as store:
        for i, (split, n) in enumerate((("train", 4), ("val", 2), ("test", 3))):
            classes, params = UniformPolicy(space).sample(n, np.random.default_rng(i))
            x = np.abs(np.sin(np.outer(params[:, 0], np.arange(64)))) + classes[:, None]
            store.append(
                key=f"p0/{split}/0",
                classes=classes,
                params=params,
                inputs=x.astype(np.float32),
                label=BatchLabel(0, split, "uniform"),
            )
    config = {
        "seed": 1,
        "simulator": sim,
        "workflow": {
            "phases": [{"samples": 2, "epochs": 1}],
            "options": {
                "batch_size": 4,
                "learning_rate": 1e-3,
                "fitness": "score",
                "dataset": {"name": "simulate", "samples_per_class": 4, "counts": 100.0},
            },
        },
    }
    genome = {"phases": 1, "nodes": 2, "bits": [1, 0]}
    m = reference.held_out_metrics(tmp_path, config, genome, 4, {"stem_kernels": [5]})
    assert 0.0 <= m["accuracy"] <= 1.0 and m["mse"] > 0 and m["epochs"] == 1.0
    assert {"mae_a_A", "flops", "params", "val_accuracy"} <= set(m)
    assert min(abs(9 * m["accuracy"] - k) for k in range(10)) < 1e-5  # 3 classes x 3 tests


def test_retrained_hypervolume_scores_the_front_on_its_test_metrics(nas) -> None:
    opts = {"fitness": "score"}
    one = [{"class_loss": 0.5, "mse": 0.25, "flops": 50.0}]  # score 0.75: (0.5, 0.5) of the ref
    assert nas.retrained_hypervolume(one, [1.5, 100.0], opts) == pytest.approx(0.25)
    two = [*one, {"class_loss": 0.25, "mse": 0.125, "flops": 80.0}]  # adds 0.25 x 0.2
    assert nas.retrained_hypervolume(two, [1.5, 100.0], opts) == pytest.approx(0.3)
    assert nas.retrained_hypervolume([], [1.5, 100.0], opts) == 0.0
