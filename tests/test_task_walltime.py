"""Task walltimes: an attempt past its walltime is recorded ``timeout``, counted as a failed
attempt, and the run goes on; cooperative tasks and external programs free their worker."""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from streamal.config import SchedulerConfig
from streamal.runtime.scheduler import TaskFailed
from streamal.runtime.timeline import TASK_STATUSES, TIMEOUT
from streamal.runtime.walltime import WalltimePolicy
from tests import helpers, walltime_tasks


def test_walltime_policy_takes_the_longest_stage_prefix_then_the_pool():
    policy = WalltimePolicy({"sim": 600, "train": None}, {"T": 3600, "T0": 60})
    assert policy.for_task("sim", "S1") == 600
    assert policy.for_task("train", "T0") == 60
    assert policy.for_task("train", "T3") == 3600
    assert policy.for_task("train", "P1") is None
    assert TIMEOUT in TASK_STATUSES


def test_scheduler_walltimes_are_validated():
    assert SchedulerConfig(walltime_s={"sim": 600, "train": None}).walltime_s["sim"] == 600
    with pytest.raises(ValueError, match=r"unknown pool\(s\) \['gpu'\]; allowed: sim, train"):
        SchedulerConfig(walltime_s={"gpu": 10})
    with pytest.raises(ValueError, match="must be > 0 seconds or null"):
        SchedulerConfig(stage_walltime_s={"S": 0})


def test_a_task_past_its_walltime_is_recorded_timeout_and_retried(run_scheduler, tmp_path):
    marker = tmp_path / "slept"

    async def go(s):
        t0 = time.monotonic()
        value = await s.submit(
            "sim",
            walltime_tasks.sleep_the_first_time,
            str(marker),
            4.0,
            name="sleepy",
            walltime_s=1.0,
            retries=1,
        )
        after = await s.submit("sim", helpers.noop, name="next")  # the run goes on
        return value, after, time.monotonic() - t0

    (value, after, took), sched = run_scheduler(go)
    assert value == "quick" and after is None
    sleepy = [r for r in sched.timeline.records if r.name == "sleepy"]
    assert [r.status for r in sleepy] == [TIMEOUT, "done"]
    first = sleepy[0]
    assert "timed out after 1 s" in first.error
    assert first.started is not None and 0.9 < first.ended - first.started < 2.5
    assert first.worker_cores, "the timeout record has the worker's cores"
    assert took < 15
    saved = json.loads((tmp_path / "timeline.json").read_text())
    assert [r["status"] for r in saved if r["name"] == "sleepy"] == [TIMEOUT, "done"]


def test_a_timeout_on_the_last_attempt_fails_the_task(run_scheduler):
    async def go(s):
        with pytest.raises(TaskFailed, match="timed out after 1 s") as info:
            await s.submit("train", helpers.poll_until_cancelled, 60.0, walltime_s=1.0, retries=0)
        t0 = time.monotonic()
        await s.submit("train", helpers.noop, name="after")
        return info.value, time.monotonic() - t0

    (err, freed_in), sched = run_scheduler(go)
    assert err.attempts == 1
    assert [r.status for r in sched.timeline.records] == [TIMEOUT, "done"]
    assert freed_in < 5, "the cooperative task did not stop at its walltime"


def test_the_walltime_kills_a_hung_external_program_and_frees_its_worker(run_scheduler, tmp_path):
    from streamal.simulation.batches import simulate_chunk
    from streamal.simulation.context import ChunkContext
    from tests.executable_program import POINTS, SPACE, compile_peak

    peak = compile_peak(tmp_path)
    options = {
        "command": [str(peak), "{input}", "{output}"],
        "output_shape": [POINTS],
        "space": SPACE,
        "env": {"PEAK_FAULTS": "1"},  # no timeout_s: the scheduler's walltime is the backstop
    }
    context = ChunkContext("S0/0", str(tmp_path / "sim-work"))

    async def go(s):
        args = ("executable", json.dumps(options), np.array([0]), np.array([[0.8, 0.02]]))
        with pytest.raises(TaskFailed, match="timed out after 1.5 s"):
            await s.submit("sim", simulate_chunk, *args, context=context, walltime_s=1.5, retries=0)
        t0 = time.monotonic()
        await s.submit("sim", helpers.noop, name="after")
        return time.monotonic() - t0

    freed_in, sched = run_scheduler(go)
    assert freed_in < 5, "the hung program kept its worker"
    (workdir,) = (tmp_path / "sim-work").iterdir()
    assert workdir.name.startswith("S0.0.")
    pid = int((workdir / "pid-0.txt").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid), "the hung program outlived its walltime"
    assert [r.status for r in sched.timeline.records] == [TIMEOUT, "done"]
    assert re.search(r"timed out after 1.5 s", sched.timeline.records[0].error)
    assert Path(workdir / "stderr.txt").read_text().startswith("hanging")


#: Long enough for a rank to start and finish an epoch on a loaded 2-core machine (a test
#: beside it on the other pytest worker): 8 s was not, and nothing was saved to continue from.
WALLTIME_S = 20.0


def test_a_training_past_its_walltime_stops_its_ranks_and_its_retry_continues(
    run_scheduler, tmp_path
):
    from streamal.cluster.plan import RankPlacement
    from streamal.train.ddp import train
    from tests.test_trainer import _spec

    stop = str(tmp_path / "ckpt" / "STOP")
    spec = _spec(tmp_path, [RankPlacement(0, (0,), None)], epochs=100_000, cancel_path=stop)

    async def go(s):
        with contextlib.suppress(TaskFailed):
            await s.submit("train", train, spec, name="T0", stage="T0", walltime_s=WALLTIME_S)
        # the worker is free again: a next task runs
        return await s.submit("train", helpers.noop, name="next")

    _, sched = run_scheduler(go, retries=0)
    records = {r.name: r for r in sched.timeline.records}
    assert {name: r.status for name, r in records.items()} == {"T0": TIMEOUT, "next": "done"}
    # the ranks stopped after their epoch, not at the 60 s grace (nor never)
    freed = records["next"].started - records["T0"].started
    assert freed < WALLTIME_S + 15, f"the train worker was busy {freed:.0f} s"
    assert (tmp_path / "ckpt" / "last.pt").exists(), "the stopped ranks did not save"
    ranks = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "streamal.train.rank" in " ".join(p.info["cmdline"] or [])
        and str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert not ranks, "ranks still running after their walltime"
