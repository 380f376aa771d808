"""The process that launched a training is SIGKILLed: its DDP ranks die with it, so a retried
or resumed training never races stale ranks writing the same checkpoints."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from streamal.cluster.plan import RankPlacement
from tests.test_trainer import _spec

pytestmark = pytest.mark.faults

LAUNCHER = """
import sys
from pathlib import Path
from streamal.train.ddp import train
from streamal.train.spec import TrainSpec
train(TrainSpec.from_json(Path(sys.argv[1]).read_text()))
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(check, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_ranks_die_with_their_sigkilled_launcher(tmp_path):
    spec = _spec(
        tmp_path, [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)], epochs=100_000
    )
    spec_path = tmp_path / "launch.json"
    spec_path.write_text(spec.to_json())
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(spec_path)])
    ranks: list[int] = []
    try:
        parent = psutil.Process(launcher.pid)
        ranks = _wait_for(
            lambda: len(kids := parent.children()) == 2 and [p.pid for p in kids],
            60,
            "two rank processes",
        )
        history = Path(spec.out_dir) / "history.json"
        _wait_for(history.exists, 120, "the ranks to finish an epoch")
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and not all(_gone(pid) for pid in ranks):
            time.sleep(0.1)
        alive = [pid for pid in ranks if not _gone(pid)]
        assert not alive, f"ranks {alive} outlived their launcher by 10 s"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in ranks:  # only the ranks this test started
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
