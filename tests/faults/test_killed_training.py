"""A DDP rank killed mid-epoch: the training task is retried and continues from last.pt."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from streamal.cluster.plan import RankPlacement
from streamal.train.ddp import train
from streamal.train.spec import TrainSpec
from tests.test_trainer import _spec

pytestmark = pytest.mark.faults


def _kill_rank_after(spec: TrainSpec, epochs: int, killed: list) -> None:
    """SIGKILL the ranks once ``epochs`` epochs are saved: in ``history.json`` and in the
    ``last.pt`` written after it (rank 0 writes history.json first)."""
    history = Path(spec.out_dir) / "history.json"
    last = Path(spec.out_dir) / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            done = len(json.loads(history.read_text()))
            saved = last.stat().st_mtime_ns >= history.stat().st_mtime_ns
        except (OSError, ValueError):
            done, saved = 0, False
        if done >= epochs and saved:
            pids = subprocess.run(
                ["pgrep", "-f", f"streamal.train.rank {spec.out_dir}/spec.json"],
                capture_output=True,
                text=True,
            ).stdout.split()
            for pid in pids:
                os.kill(int(pid), signal.SIGKILL)
            killed.append(done)
            return
        time.sleep(0.01)


def test_killed_rank_is_retried_from_its_last_checkpoint(run_scheduler, tmp_path):
    spec = _spec(tmp_path, [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)], epochs=60)
    killed: list[int] = []
    watcher = threading.Thread(target=_kill_rank_after, args=(spec, 3, killed))
    watcher.start()

    async def go(s):
        return await s.submit("train", train, spec, name="T0", stage="T0")

    result, sched = run_scheduler(go, retries=2)
    watcher.join()
    assert killed, "the rank was never killed"
    statuses = [r.status for r in sched.timeline.records]
    assert statuses[0] == "retried" and statuses[-1] == "done"
    resumed = result["ranks"][0]["resumed_from_epoch"]
    assert resumed >= 3, "the retry started over instead of continuing"
    assert [h["epoch"] for h in result["history"]] == list(range(60))
