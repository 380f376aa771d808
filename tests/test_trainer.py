import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streamal.cluster.plan import RankPlacement
from streamal.data.label import BatchLabel
from streamal.data.space import ClassSpace, ParameterSpace
from streamal.data.store import SampleStore
from streamal.train.checkpoint import load_checkpoint
from streamal.train.ddp import TrainingError, train
from streamal.train.spec import TrainSpec, scheduled_epochs

SPACE = ParameterSpace(
    ("x",), (ClassSpace("low", {"x": (0.0, 1.0)}), ClassSpace("high", {"x": (0.0, 1.0)}))
)


def _store(path, n=240):
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 2, n)
    params = rng.uniform(0, 1, (n, 1))
    grid = np.linspace(0, 1, 32)
    inputs = np.sin(6 * grid * (1 + classes[:, None])) + params + 0.05 * rng.normal(size=(n, 32))
    with SampleStore(path, param_names=["x"], class_names=["low", "high"], input_shape=(32,)) as s:
        for split, rows in (
            ("train", slice(0, 160)),
            ("val", slice(160, 200)),
            ("test", slice(200, 240)),
        ):
            s.append(
                key=split,
                classes=classes[rows],
                params=params[rows],
                inputs=inputs[rows].astype(np.float32),
                label=BatchLabel(0, split, "uniform"),
            )


def _spec(tmp_path, ranks, epochs=4, **kw):
    _store(tmp_path / "s.h5")
    return TrainSpec(
        store=str(tmp_path / "s.h5"),
        train_rows=list(range(160)),
        val_rows=list(range(160, 200)),
        test_rows=list(range(200, 240)),
        model="tests.helpers:TinyModel",
        model_options={},
        space=SPACE.to_dict(),
        input_shape=(32,),
        out_dir=str(tmp_path / "ckpt"),
        epochs=epochs,
        ranks=tuple(ranks),
        batch_size=32,
        learning_rate=1e-2,
        **kw,
    )


def test_two_rank_ddp_trains_pinned_and_checkpoints_like_one_rank(tmp_path):
    two = train(_spec(tmp_path / "a", [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)]))
    one = train(_spec(tmp_path / "b", [RankPlacement(0, (0, 1), None)]))
    for r in two["ranks"]:
        assert r["cores"] == r["planned_cores"] == [r["rank"]]
        assert r["torch_threads"] == 1 and r["backend"] == "gloo"
        assert r["train_samples_seen_per_epoch"] == 80
    assert one["ranks"][0]["cores"] == [0, 1] and one["ranks"][0]["torch_threads"] == 2
    a, b = load_checkpoint(two["best_checkpoint"]), load_checkpoint(one["best_checkpoint"])
    assert set(a) == set(b) and set(a["model"]) == set(b["model"])
    assert {k: v.shape for k, v in a["model"].items()} == {
        k: v.shape for k, v in b["model"].items()
    }
    assert len(two["history"]) == 4 and two["test"]["accuracy"] > 0.8
    assert two["history"][-1]["val_class_loss"] < two["history"][0]["val_class_loss"]


def test_warm_start_and_resume_from_last_epoch(tmp_path):
    first = train(_spec(tmp_path / "a", [RankPlacement(0, (0,), None)], epochs=2))
    spec = _spec(
        tmp_path / "b",
        [RankPlacement(0, (0,), None)],
        epochs=3,
        warm_start=first["best_checkpoint"],
    )
    warm = train(spec)
    assert warm["ranks"][0]["warm_start"] == first["best_checkpoint"]
    # a retried task finds last.pt and continues instead of starting over
    again = train(TrainSpec(**{**spec.__dict__, "epochs": 5}))
    assert again["ranks"][0]["resumed_from_epoch"] == 3
    assert [h["epoch"] for h in again["history"]] == [0, 1, 2, 3, 4]


def test_interval_checkpoints_keep_the_best_epoch_and_flush_when_stopped(tmp_path):
    # an interval longer than the run: everything is written once, after the last epoch
    lazy = train(_spec(tmp_path / "a", [RankPlacement(0, (0,), None)], checkpoint_interval_s=3600))
    assert [h["epoch"] for h in lazy["history"]] == [0, 1, 2, 3]
    best_epoch = min(lazy["history"], key=lambda h: h["val_score"])["epoch"]
    assert load_checkpoint(lazy["best_checkpoint"])["epoch"] == best_epoch
    assert load_checkpoint(tmp_path / "a" / "ckpt" / "last.pt")["epoch"] == 3
    # stopped between two interval saves: the epochs since the last save are still written
    spec = _spec(tmp_path / "b", [RankPlacement(0, (0,), None)], epochs=100_000)
    stop = tmp_path / "b" / "STOP"
    spec = TrainSpec(**{**spec.__dict__, "cancel_path": str(stop), "checkpoint_interval_s": 1.0})

    def stop_after_first_save():
        history = Path(spec.out_dir) / "history.json"
        deadline = time.time() + 120
        while not history.exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # more epochs run, unsaved
        stop.touch()

    watcher = threading.Thread(target=stop_after_first_save)
    watcher.start()
    stopped = train(spec)
    watcher.join()
    n = stopped["ranks"][0]["cancelled_at_epoch"]
    assert [h["epoch"] for h in stopped["history"]] == list(range(n))
    assert load_checkpoint(tmp_path / "b" / "ckpt" / "last.pt")["epoch"] == n - 1
    best_epoch = min(stopped["history"], key=lambda h: h["val_score"])["epoch"]
    assert load_checkpoint(stopped["best_checkpoint"])["epoch"] == best_epoch


def test_a_failing_rank_is_reported_with_its_error(tmp_path):
    spec = _spec(tmp_path, [RankPlacement(0, (0,), None)])
    bad = TrainSpec(**{**spec.__dict__, "model": "tests.helpers:NoSuchModel"})
    with pytest.raises(TrainingError, match="NoSuchModel"):
        train(bad)


@pytest.mark.parametrize(("n", "batch", "world"), [(160, 64, 1), (161, 32, 2), (5, 8, 1)])
def test_batches_are_those_a_dataloader_over_the_sampler_cuts(n, batch, world):
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    from streamal.train.rank import _batches, _resident_columns

    columns = (torch.randn(n, 3), torch.arange(n), torch.randn(n, 2))
    for rank in range(world):
        sampler = DistributedSampler(
            TensorDataset(*columns), num_replicas=world, rank=rank, shuffle=True, seed=3
        )
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            loader = DataLoader(TensorDataset(*columns), batch_size=batch, sampler=sampler)
            expected = list(loader)
            cpu = torch.device("cpu")
            got = list(_batches(_resident_columns(columns, cpu), sampler, batch, cpu))
            assert len(got) == len(expected)
            for mine, theirs in zip(got, expected, strict=True):
                for a, b in zip(mine, theirs, strict=True):
                    assert torch.equal(a, b)


def test_scheduled_epochs_interpolate_the_phase_schedule():
    sizes, epochs = [9, 18, 27], [200, 150, 100]
    assert [scheduled_epochs(n, sizes, epochs) for n in (9, 18, 27)] == [200, 150, 100]
    assert scheduled_epochs(13, sizes, epochs) == round(200 - 50 * 4 / 9)
    assert scheduled_epochs(5, sizes, epochs) == 200 and scheduled_epochs(90, sizes, epochs) == 100
    assert scheduled_epochs(90, sizes, epochs, minimum=120) == 120
