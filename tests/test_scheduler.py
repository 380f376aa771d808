import json

import pytest

from streamal.runtime.scheduler import TaskCancelledError, TaskFailed
from streamal.runtime.timeline import TaskRecord
from tests import helpers

REQUIRED = (
    "id",
    "name",
    "pool",
    "stage",
    "submitted",
    "started",
    "ended",
    "status",
    "error",
    "worker_cores",
)


def test_sim_and_train_tasks_overlap_on_their_planned_cores(run_scheduler, local_plan, tmp_path):
    marks = str(tmp_path / "sim.mark"), str(tmp_path / "train.mark")

    async def both(s):  # each probe runs until it has seen the other's mark
        sim = s.start("sim", helpers.probe_together, *marks, stage="S0", name="sim-probe")
        train = s.start(
            "train", helpers.probe_together, *marks[::-1], stage="T0", name="train-probe"
        )
        return await sim, await train

    (sim, train), _ = run_scheduler(both)
    assert sim["start"] < train["end"] and train["start"] < sim["end"], "tasks did not overlap"
    assert sim["cores"] == [local_plan.sim_cores[0]]
    assert train["cores"] == sorted(local_plan.trainer_cores)
    assert set(sim["cores"]).isdisjoint(train["cores"])
    assert sim["cuda_visible"] == "", "the simulator pool must see no GPU"

    records = json.loads((tmp_path / "timeline.json").read_text())
    assert {r["name"] for r in records} == {"sim-probe", "train-probe"}
    for r in records:
        assert all(k in r for k in REQUIRED)
        assert r["status"] == "done"
        planned = local_plan.sim_cores if r["pool"] == "sim" else local_plan.trainer_cores
        assert set(r["worker_cores"]) <= set(planned)


def test_failed_attempts_are_retried_and_each_recorded(run_scheduler, tmp_path):
    marker = tmp_path / "flaky"

    async def go(s):
        return await s.submit("sim", helpers.flaky, str(marker), 2, stage="S1", name="flaky")

    value, sched = run_scheduler(go, retries=2)
    assert value == "ok"
    statuses = [r.status for r in sched.timeline.records]
    assert statuses == ["retried", "retried", "done"]
    assert "planned failure 1" in sched.timeline.records[0].error


def test_a_task_failing_every_attempt_raises_with_its_error(run_scheduler, tmp_path):
    async def go(s):
        with pytest.raises(TaskFailed, match="planned failure") as info:
            await s.submit("sim", helpers.flaky, str(tmp_path / "f"), 5, name="doomed", retries=1)
        return info.value

    err, sched = run_scheduler(go)
    assert err.attempts == 2 and "RuntimeError" in err.traceback
    assert [r.status for r in sched.timeline.records] == ["retried", "failed"]


def test_cancel_token_stops_a_running_task(run_scheduler):
    async def go(s):
        import asyncio

        h = s.start("train", helpers.poll_until_cancelled, 60.0, name="long")
        await asyncio.sleep(1.0)
        h.cancel()
        with pytest.raises(TaskCancelledError):
            await h

    import time

    t0 = time.time()
    _, sched = run_scheduler(go)
    assert time.time() - t0 < 30
    (rec,) = sched.timeline.records
    assert rec.status == "cancelled" and rec.started is not None


def test_many_tasks_in_flight_per_pool(run_scheduler):
    async def go(s):
        import asyncio

        handles = [s.start("sim", helpers.noop, name=f"n{i}") for i in range(40)]
        await asyncio.gather(*handles)
        return len(handles)

    n, sched = run_scheduler(go)
    assert n == 40 and len(sched.timeline.records) == 40
    assert len({r.id for r in sched.timeline.records}) == 40
    assert isinstance(sched.timeline.records[0], TaskRecord)
