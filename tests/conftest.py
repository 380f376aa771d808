"""Shared fixtures: a started scheduler on this node's local plan."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Pool workers are separate processes: let them import the test helpers too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def local_plan():
    from streamal.cluster.plan import plan_for
    from streamal.config import SiteConfig

    return plan_for(SiteConfig())


@pytest.fixture
def run_scheduler(tmp_path, local_plan):
    """Call ``run_scheduler(coro_fn)`` to run ``coro_fn(scheduler)`` inside a live scheduler."""
    from streamal.cluster.parsl_config import build_parsl_config
    from streamal.config import SchedulerConfig, SiteConfig
    from streamal.runtime.scheduler import Scheduler

    def runner(coro_fn, *, retries: int = 2):
        cfg = build_parsl_config(local_plan, SiteConfig(), SchedulerConfig(), tmp_path)

        async def main():
            async with Scheduler(cfg, run_dir=tmp_path, retries=retries, progress=False) as s:
                return await coro_fn(s), s

        return asyncio.run(asyncio.wait_for(main(), timeout=120))

    return runner
