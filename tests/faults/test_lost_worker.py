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
