"""Searching on a simulator's samples: the store dataset, the multitask fitness, its direction."""

import asyncio
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from streamal.data.index import BatchInfo
from streamal.data.label import BatchLabel
from streamal.data.store import SampleStore
from streamal.errors import ConfigError
from streamal.policy.uniform import UniformPolicy
from streamal_nas.data_feed import GrowingTrainSet, draws_needed, ready_draws
from streamal_nas.datasets import DataSpec, poisson_counts, prepare_data, read_rows
from streamal_nas.evaluate import train_candidate
from streamal_nas.fitness import fitness_error, fitness_value
from streamal_nas.genome import MacroGenome, genome_to_dict
from streamal_nas.objectives import hypervolume_reference, objective_vector
from streamal_nas.options import NasOptions
from streamal_nas.outputs import summarize

SIMULATOR = {"name": "diffraction-tof", "options": {"preset": "e1"}}
LENGTH = 96  # the store's own input length: the network follows the data, not the simulator


def _campaign(run_dir: Path) -> Path:
    """A finished campaign's run directory: config.yaml and a store with labelled splits."""
    from streamal import plugins

    space = plugins.load("simulators", SIMULATOR["name"])(**SIMULATOR["options"]).space
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"simulator": SIMULATOR}))
    with SampleStore(
        run_dir / "store.h5",
        param_names=space.param_names,
        class_names=space.class_names,
        input_shape=(LENGTH,),
    ) as store:
        for i, (split, n) in enumerate((("train", 8), ("val", 3), ("test", 2), ("study", 2))):
            classes, params = UniformPolicy(space).sample(n, np.random.default_rng(i))
            peaks = np.sin(np.outer(params[:, 0], np.arange(LENGTH)))  # depends on a
            store.append(
                key=f"p0/{split}/0",
                classes=classes,
                params=params,
                inputs=(peaks + classes[:, None]).astype(np.float32),
                label=BatchLabel(0, split, "uniform"),
            )
    return run_dir


def _prepare(options: dict, store=None, space=None) -> DataSpec:
    workflow = SimpleNamespace(
        ctx=SimpleNamespace(config=SimpleNamespace(seed=0), store=store, space=space)
    )
    return asyncio.run(prepare_data(NasOptions.model_validate(options), workflow))[0]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Path:
    return _campaign(tmp_path_factory.mktemp("campaign") / "run")


def test_store_dataset_reads_the_campaigns_labelled_splits(campaign) -> None:
    data = _prepare({"dataset": {"name": "store", "path": str(campaign)}})
    assert data.name == "store" and data.input_shape == (LENGTH,)
    assert (len(data.train_rows), len(data.val_rows)) == (24, 9)  # 3 classes x 8, x 3
    assert data.space["param_names"] == ["a", "b", "c", "alpha", "beta", "gamma"]
    assert data.encoder == {"name": "generic-mlp", "options": {}}
    same = _prepare({"dataset": {"name": "store", "path": str(campaign / "store.h5")}})
    assert same == data


def test_bad_datasets_are_one_line_errors_naming_the_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"workflow\.options\.dataset\.path: no sample store"):
        _prepare({"dataset": {"name": "store", "path": str(tmp_path)}})
    with pytest.raises(ConfigError, match=r"dataset\.name: simulate needs the config's simulator"):
        _prepare({"dataset": {"name": "simulate", "samples_per_class": 4}})
    with pytest.raises(ValidationError, match="fitness: mse needs regression targets"):
        NasOptions.model_validate({"fitness": "mse"})
    with pytest.raises(ValidationError, match="fitness_weights: only for fitness: score"):
        NasOptions.model_validate({"fitness_weights": {"mse": 2.0}})


def _train(tmp_path: Path, data: DataSpec, fitness: str, **extra) -> dict:
    genome = MacroGenome(2, 3, (1, 0, 1, 1, 0, 0, 1, 0))
    spec = {
        "candidate": "c0001",
        "genome": genome_to_dict(genome),
        "max_epochs": 1,
        "epochs_per_iteration": 0.5,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "channels": 4,
        "network": {"stem_kernels": [5, 3], "pool": 4, "pool_last": True},
        "data": data.to_dict(),
        "fitness": fitness,
        "seed": 3,
        "records_path": str(tmp_path / f"{fitness}.jsonl"),
        "decisions_dir": None,
        "prediction": None,
        "checkpoint": str(tmp_path / f"{fitness}.pt"),
        "provider": None,
        "provider_checkpoint": None,
        "gpu": False,
        "fence": None,
        **extra,
    }
    return train_candidate(spec)


@pytest.mark.parametrize("fitness", ["class_loss", "score"])
def test_candidates_record_the_chosen_fitness_per_validation(tmp_path, campaign, fitness) -> None:
    data = _prepare({"dataset": {"name": "store", "path": str(campaign)}})
    out = _train(tmp_path, data, fitness)
    metrics = out["metrics"]
    assert {"accuracy", "class_loss", "mse", "nll", "mae_a_A"} <= set(metrics)
    assert out["fitness"] == pytest.approx(fitness_value(metrics, fitness))
    records = [
        json.loads(line) for line in (tmp_path / f"{fitness}.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in records] == [0.5, 1.0]
    assert records[-1]["fitness"] == pytest.approx(out["fitness"])
    assert out["flops"] > 0 and out["params"] > 0


def test_score_weighs_the_validation_metrics() -> None:
    m = {"accuracy": 0.5, "class_loss": 0.7, "mse": 0.1, "nll": -1.0}
    assert fitness_value(m, "accuracy") == 50.0
    assert fitness_value(m, "score") == pytest.approx(0.8)
    assert fitness_value(m, "score", {"class_loss": 2.0, "nll": 1.0}) == pytest.approx(0.4)


def _row(cid, fitness, cost, metric):
    return {
        "id": cid,
        "fitness": fitness,
        "fitness_metric": metric,
        "cost": cost,
        "status": "trained",
        "epochs": 1.0,
        "stop_reason": "max-epochs",
        "flops": cost,
        "params": 1,
        "cost_is_proxy": False,
    }


def test_a_loss_is_minimised_and_accuracy_maximised() -> None:
    assert objective_vector(_row("c1", 0.3, 10.0, "class_loss")) == [0.3, 10.0]
    assert objective_vector(_row("c1", 90.0, 10.0, "accuracy")) == [10.0, 10.0]
    assert fitness_error(0.3, "mse") == 0.3 and fitness_error(90.0) == 10.0
    losses = [_row("c1", 0.9, 5.0, "class_loss"), _row("c2", 0.2, 5.0, "class_loss")]
    s = summarize(
        losses,
        hypervolume=0.0,
        hypervolume_reference=[1, 1],
        objective="flops",
        max_epochs=1.0,
        wall_s=0.0,
    )
    assert s["best"]["id"] == "c2" and s["pareto_front"] == ["c2"]
    accuracy = [_row("c1", 90.0, 5.0, "accuracy"), _row("c2", 20.0, 5.0, "accuracy")]
    s = summarize(
        accuracy,
        hypervolume=0.0,
        hypervolume_reference=[1, 1],
        objective="flops",
        max_epochs=1.0,
        wall_s=0.0,
    )
    assert s["best"]["id"] == "c1" and s["pareto_front"] == ["c1"]


def test_hypervolume_reference_of_a_loss_covers_every_candidate(campaign) -> None:
    o = NasOptions.model_validate(
        {"dataset": {"name": "store", "path": str(campaign)}, "fitness": "mse", "phases": 2}
    )
    data = _prepare(o.model_dump())
    rows = [_row("c1", 0.5, 5.0, "mse"), _row("c2", 2.0, 5.0, "mse")]
    ref = hypervolume_reference(o, rows, 2.0, data)
    assert ref[0] == pytest.approx(2.2) and ref[1] > 0
    o2 = o.model_copy(update={"fitness_reference": 3.0})
    assert hypervolume_reference(o2, rows, 2.0, data)[0] == 3.0


def test_poisson_counts_scale_each_peak_and_depend_on_the_row_alone() -> None:
    x = np.array([[0.0, 1.0, 4.0], [0.0, 0.0, 0.0], [2.0, -1.0, 8.0]])
    noisy = poisson_counts(x, [5, 6, 7], 1e6)
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    assert noisy[0, 0] == 0 and noisy[2, 1] == 0  # zero (and negative) intensity: no counts
    assert noisy[0, 2] == pytest.approx(1e6, rel=0.01)  # the peak gets ~counts
    assert noisy[0, 1] == pytest.approx(2.5e5, rel=0.01)
    assert not noisy[1].any()  # an empty pattern stays empty
    alone = poisson_counts(x[2:], [7], 1e6)
    assert np.array_equal(alone[0], noisy[2])  # row 7's noise, read with others or not
    assert not np.array_equal(poisson_counts(x, [5, 6, 7], 1e6, seed=1), noisy)
    low = poisson_counts(np.tile(x[:1], (200, 1)), range(200), 10.0)
    assert low[:, 2].mean() == pytest.approx(10.0, rel=0.1)  # mean = scaled intensity
    with pytest.raises(ValueError, match="counts must be > 0"):
        poisson_counts(x, [5, 6, 7], 0.0)


def test_counts_option_adds_noise_to_the_store_patterns(campaign) -> None:
    clean = _prepare({"dataset": {"name": "store", "path": str(campaign)}})
    noisy = _prepare({"dataset": {"name": "store", "path": str(campaign), "counts": 100}})
    assert clean.counts is None and noisy.counts == 100 and clean.key() != noisy.key()
    rows = noisy.train_rows[:4]
    x0, c0, p0 = read_rows(clean, rows)
    x1, c1, p1 = read_rows(noisy, rows)
    assert np.array_equal(c0, c1) and np.array_equal(p0, p1)
    assert np.allclose(x1, np.round(x1)) and x1.max() > 50  # counts around a peak of 100
    assert np.array_equal(x1, read_rows(noisy, rows)[0])  # the same noise every read
    with pytest.raises(ValidationError, match="counts"):
        NasOptions.model_validate(
            {"dataset": {"name": "simulate", "samples_per_class": 4, "counts": -1}}
        )


# -- training while the training set is still being simulated (overlap_epochs) ----------------


def test_draws_needed_ramps_to_the_whole_set() -> None:
    assert [draws_needed(10, e, 3) for e in range(5)] == [4, 7, 10, 10, 10]
    assert draws_needed(10, 0, 0) == 10 and draws_needed(10, 0, 1) == 10


def test_ready_draws_is_the_prefix_of_draws_in_whatever_order_chunks_landed() -> None:
    batches = [  # chunk 1 landed first; chunk 0 was split: rows 0-1 and 3 stored, 2 failed
        BatchInfo("p0/val/0", 0, 4, 0, "val", "uniform"),
        BatchInfo("p0/train/1", 4, 4, 0, "train", "uniform"),
        BatchInfo("p0/train/0/0-2", 8, 2, 0, "train", "uniform"),
        BatchInfo("p0/train/0/3", 10, 1, 0, "train", "uniform"),
    ]
    failed = ["p0/train/0/2", "p0/val/0/1"]
    assert ready_draws(batches, failed, "p0/train", 4, 10) == (8, [8, 9, -1, 10, 4, 5, 6, 7])
    last = BatchInfo("p0/train/2", 11, 2, 0, "train", "uniform")  # the short last chunk
    assert ready_draws([*batches, last], failed, "p0/train", 4, 10)[0] == 10
    assert ready_draws(batches[2:], failed, "p0/train", 4, 10) == (4, [8, 9, -1, 10])
    assert ready_draws(batches[:2], [], "p0/train", 4, 10) == (0, [])


def _fed(data: DataSpec, ready_file: Path, overlap: int) -> DataSpec:
    """``data`` with its training rows behind a ready file (draw order: the rows' order)."""
    from dataclasses import replace

    feed = {"ready_file": str(ready_file), "total": len(data.train_rows), "overlap_epochs": overlap}
    return replace(data, train_rows=(), feed=feed)


def _publish(ready_file: Path, rows: list[int], ready: int) -> None:
    from streamal import durable

    durable.write_json(ready_file, {"total": len(rows), "ready": ready, "rows": rows[:ready]})


def test_a_candidate_learns_the_same_whenever_its_training_draws_arrive(tmp_path, campaign):
    import threading

    data = _prepare({"dataset": {"name": "store", "path": str(campaign)}})
    rows = list(data.train_rows)
    rows[5] = -1  # draw 5 failed to simulate
    at_once, late = tmp_path / "at-once.json", tmp_path / "late.json"
    _publish(at_once, rows, len(rows))
    _publish(late, rows, 0)
    for name in "abcd":
        (tmp_path / name).mkdir()

    def arrive() -> None:  # draws come in while the candidate waits for them, in three steps
        records = tmp_path / "b" / "score.jsonl"
        for ready, after_epoch in ((9, None), (16, 1.0), (len(rows), 2.0)):
            while after_epoch is not None and not any(
                json.loads(line)["epoch"] == after_epoch
                for line in (records.read_text().splitlines() if records.exists() else [])
            ):
                time.sleep(0.01)
            time.sleep(0.3)
            _publish(late, rows, ready)

    first = _train(tmp_path / "a", _fed(data, at_once, 3), "score", max_epochs=3)
    feeder = threading.Thread(target=arrive)
    feeder.start()
    second = _train(tmp_path / "b", _fed(data, late, 3), "score", max_epochs=3)
    feeder.join()
    assert second["curve"] == first["curve"]
    assert second["data_wait_s"] > 0.55 and first["data_wait_s"] < 0.2
    # the worker keeps the grown set: another candidate's first epoch still sees its 8 draws
    again = _train(tmp_path / "c", _fed(data, late, 3), "score", max_epochs=3)
    assert again["curve"] == first["curve"]
    # the ramp is real: on all 24 draws from the first epoch the candidate learns otherwise
    whole = _train(tmp_path / "d", _fed(data, at_once, 1), "score", max_epochs=3)
    assert whole["curve"] != first["curve"]


def test_a_candidate_waiting_for_draws_stops_when_cancelled(tmp_path, campaign) -> None:
    data = _prepare({"dataset": {"name": "store", "path": str(campaign)}})
    never = tmp_path / "never.json"
    _publish(never, list(data.train_rows), 0)
    grown = GrowingTrainSet(_fed(data, never, 2).feed, lambda rows: rows, poll_s=0.01)
    calls = []
    assert grown.for_epoch(0, lambda: calls.append(1) or len(calls) > 3) is None
    assert len(calls) == 4


# -- a training set drawn by a finished campaign's policy (policy_run) ------------------------
ROOT = Path(__file__).resolve().parents[3]


def _peaks():
    if str(ROOT) not in sys.path:  # tests.helpers, as the run's subprocesses find it
        sys.path.insert(0, str(ROOT))
    from tests.helpers import PeaksSimulator

    return PeaksSimulator()


@pytest.fixture(scope="module")
def al_campaign(tmp_path_factory) -> Path:
    """A finished active-learning campaign over the peaks space: config, store with a study
    set, and a trained generic-mlp (``checkpoints/T0``)."""
    sim = _peaks()
    from tests.helpers import train_splits, write_splits

    run = tmp_path_factory.mktemp("al") / "run"
    run.mkdir()
    config = {
        "name": "peaks-al",
        "seed": 0,
        "site": {"name": "local"},
        "simulator": {"name": "tests.helpers:PeaksSimulator"},
        "model": {"name": "generic-mlp", "options": {"hidden": [32]}},
        "policy": {"name": "uncertainty-mixture", "options": {"study_size": 20}},
        "workflow": {"name": "serial", "phases": [{"samples": 40, "epochs": 4}]},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    uniform = UniformPolicy(sim.space)
    splits = (("train", 40), ("val", 10), ("test", 10), ("study", 20))
    draws = {s: uniform.sample(n, np.random.default_rng(i)) for i, (s, n) in enumerate(splits)}
    rows = write_splits(run / "store.h5", sim, draws, key="p0/{split}/0")
    train_splits(
        run / "store.h5", sim, rows, run / "checkpoints" / "T0", "generic-mlp", {"hidden": [32]}, 4
    )
    return run


class _InProcess:
    """A scheduler that runs each task in this process (the campaign policy's AL task)."""

    def __init__(self) -> None:
        self.stages: list[str] = []

    async def submit(self, pool, fn, *args, stage, **_):
        self.stages.append(f"{pool}:{stage}")
        return fn(*args)


def test_a_campaigns_policy_is_fitted_on_its_final_model(al_campaign) -> None:
    from streamal.policy.campaign import campaign_policy

    space = _peaks().space
    source = campaign_policy(al_campaign, space)
    assert (source.name, source.options) == ("uncertainty-mixture", {"study_size": 20})
    assert len(source.study_rows) == 40 and source.model.stage == "T0"
    scheduler = _InProcess()
    policy = asyncio.run(source.fitted(space, scheduler, "AL0"))
    assert scheduler.stages == ["train:AL0"] and policy.ready
    classes, params = policy.sample_total(200, np.random.default_rng(0))
    assert len(classes) == 200
    space.check(classes, params)  # raises outside the space
    # where the model is unsure it draws more: not the uniform spread of the study set
    assert policy.weights_.std() > 0


def test_a_policy_run_that_cannot_serve_is_one_line_naming_the_folder(al_campaign, tmp_path):
    from streamal.policy.campaign import campaign_policy

    with pytest.raises(ConfigError, match="not a run directory"):
        campaign_policy(tmp_path, _peaks().space)
    from streamal import plugins

    diffraction = plugins.load("simulators", "diffraction-tof")(preset="e1").space
    with pytest.raises(ConfigError, match=r"its space \(classes \['narrow', 'wide'\]"):
        campaign_policy(al_campaign, diffraction)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((al_campaign / "config.yaml").read_text())
    with pytest.raises(ConfigError, match="no trained model yet|not a run directory"):
        campaign_policy(bare, _peaks().space)


def test_the_first_candidates_train_while_the_training_set_is_simulated(
    tmp_path, al_campaign
) -> None:
    import os
    import subprocess

    root = ROOT
    config = {
        "name": "nas-overlap",
        "seed": 0,
        "site": {"name": "local"},
        "scheduler": {"retries": 0, "progress": False},
        "report": {"figures": False},
        # 0.15 s a pattern, centres above 0.74 fail: recorded, and the ramp goes past them
        "simulator": {
            "name": "tests.helpers:PeaksSimulator",
            "chunk_size": 4,
            "options": {"delay": 0.15, "fail_above": 0.74},
        },
        "workflow": {
            "name": "nas",
            "phases": [{"samples": 3, "epochs": 2}],
            "options": {
                "population": 2,
                "phases": 2,
                "nodes": 3,
                "channels": 4,
                "batch_size": 8,
                "network": {"stem_kernels": [3, 3], "strides": [1, 1], "pool": 2},
                "dataset": {
                    "name": "simulate",
                    "samples_per_class": 12,
                    "overlap_epochs": 2,
                    "policy_run": str(al_campaign),  # training draws: the campaign's policy
                },
                "fitness": "score",
                "prediction": {"enabled": True, "n_predictions": 2, "tolerance": 1.0},
            },
        },
    }
    (tmp_path / "nas.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamal",
            "run",
            str(tmp_path / "nas.yaml"),
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    timeline = json.loads((run / "timeline.json").read_text())
    train_chunks = [r for r in timeline if r["name"].startswith("p0/train/") and r["ended"]]
    val_chunks = [r for r in timeline if r["name"].startswith("p0/val/") and r["ended"]]
    trainings = [r for r in timeline if r["stage"] == "train" and r["started"]]
    first = min(t["started"] for t in trainings)
    assert max(v["ended"] for v in val_chunks) <= first < max(c["ended"] for c in train_chunks)
    rows = json.loads((run / "candidates.json").read_text())
    assert len(rows) == 3 and rows[0]["data_wait_s"] > 0.5
    with SampleStore(run / "store.h5", mode="r") as store:
        failed = {f["split"] for f in store.failures()}
        stored = {s: len(store.select(split=s)) for s in ("train", "val", "test")}
    assert "train" in failed and 0 < stored["train"] < 24 and stored["test"] > 0
    ready = json.loads((run / "nas" / "train-ready.json").read_text())
    assert ready["ready"] == ready["total"] == 24
    # the training draws came from the campaign's fitted policy, through an AL task
    assert [r["pool"] for r in timeline if r["stage"] == "AL0"] == ["train"]
    with SampleStore(run / "store.h5", mode="r") as store:
        origins = {b.split: b.origin for b in store.batches()}
    assert origins == {"train": "uncertainty-mixture", "val": "uniform", "test": "uniform"}
    with np.load(run / "nas" / "train-draws.npz") as saved:
        assert len(saved["classes"]) == 24 and str(saved["policy"]) == "uncertainty-mixture"


def test_validate_sizes_the_store_of_a_simulated_dataset() -> None:
    from streamal.config import load_config
    from streamal.footprint import estimate_footprint

    cfg = load_config(ROOT / "configs" / "nas-diffraction-quickstart.yaml", check_node=False)
    fp = estimate_footprint(cfg, (2806,), ranks=1)
    # 96 training patterns per class, validation and test half that each: 3 x 192
    assert (fp.train_samples, fp.eval_samples, fp.study_samples) == (288, 288, 0)
    assert fp.samples == 576 and fp.store_bytes > 576 * 2806 * 4
    digits = load_config(ROOT / "configs" / "nas-ci.yaml", check_node=False)
    assert estimate_footprint(digits, (1, 8, 8), ranks=1).samples == 0
