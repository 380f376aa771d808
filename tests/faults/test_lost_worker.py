"""A pool worker killed with SIGKILL while it runs a task: the task is retried, once."""

import pytest

from tests import helpers

pytestmark = pytest.mark.faults


def test_killed_sim_worker_task_is_retried(run_scheduler, tmp_path):
    async def go(s):
        return await s.submit("sim", helpers.die_once, str(tmp_path / "died"), name="victim")

    value, sched = run_scheduler(go, retries=2)
    assert value == "survived"
    statuses = [(r.name, r.status) for r in sched.timeline.records]
    assert statuses == [("victim", "retried"), ("victim", "done")]
    assert sched.timeline.records[0].error.startswith("WorkerLost")


def test_run_with_a_killed_sim_worker_stores_every_sample_once(tmp_path):
    from streamal.data.store import SampleStore
    from tests.test_run import CONFIG, _run

    cfg = {
        **CONFIG,
        "simulator": {**CONFIG["simulator"], "options": {"kill_once": str(tmp_path / "killed")}},
    }
    res = _run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "killed").exists(), "the fault was not injected"
    import json

    timeline = json.loads((tmp_path / "run" / "timeline.json").read_text())
    lost = [r for r in timeline if r["status"] == "retried"]
    assert lost and lost[0]["error"].startswith("WorkerLost")
    with SampleStore(tmp_path / "run" / "store.h5", mode="r") as s:
        keys = [b.key for b in s.batches()]
        assert len(s) == 160 and len(keys) == len(set(keys))  # = the no-fault run's count
        assert not s.failures()
