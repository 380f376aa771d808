"""A training's state files torn by a crash (a 0-byte history.json, a truncated last.pt): the
retried training still completes, with every epoch in its history exactly once."""

from pathlib import Path

import pytest

from streamal.cluster.plan import RankPlacement
from streamal.train.checkpoint import load_checkpoint
from streamal.train.ddp import train
from streamal.train.spec import TrainSpec
from tests.test_trainer import _spec

pytestmark = pytest.mark.faults


def _epochs(result: dict) -> list[int]:
    return [h["epoch"] for h in result["history"]]


def test_a_torn_history_is_rebuilt_from_last_checkpoint(tmp_path):
    spec = _spec(tmp_path, [RankPlacement(0, (0,), None)], epochs=2)
    assert _epochs(train(spec)) == [0, 1]
    (Path(spec.out_dir) / "history.json").write_bytes(b"")  # a writer killed mid-write
    again = train(TrainSpec(**{**spec.__dict__, "epochs": 4}))
    assert again["ranks"][0]["resumed_from_epoch"] == 2
    assert _epochs(again) == [0, 1, 2, 3]
    assert load_checkpoint(Path(spec.out_dir) / "last.pt")["epoch"] == 3


def test_a_torn_last_checkpoint_trains_again_from_the_start(tmp_path):
    spec = _spec(tmp_path, [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)], epochs=2)
    assert _epochs(train(spec)) == [0, 1]
    last = Path(spec.out_dir) / "last.pt"
    last.write_bytes(last.read_bytes()[:7])
    again = train(TrainSpec(**{**spec.__dict__, "epochs": 3}))
    for report in again["ranks"]:
        assert "resumed_from_epoch" not in report
        assert "last.pt" in report["resume_skipped"]
    assert _epochs(again) == [0, 1, 2]
    assert load_checkpoint(last)["epoch"] == 2
    assert again["test"]["accuracy"] > 0.5
