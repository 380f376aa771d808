"""Per-task overhead of the streamal scheduler over raw Parsl, measured side by side.

    python bench/scheduler_overhead.py [--tasks 500] [--rounds 3] [--json]

Each round loads the same two-pool Parsl config twice — once submitting ``--tasks`` no-op
apps straight to Parsl, once through :class:`streamal.runtime.scheduler.Scheduler` (timeline
records, cancel tokens, retries) — alternating which goes first. Reports medians and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import _common
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from streamal.cluster.parsl_config import build_parsl_config, ensure_worker_commands_on_path  # noqa: E402
from streamal.cluster.plan import plan_for  # noqa: E402
from streamal.config import SchedulerConfig, SiteConfig  # noqa: E402
from streamal.runtime.scheduler import Scheduler  # noqa: E402


def noop() -> None:
    return None


def _config(run_dir: str):
    site = SiteConfig()
    return build_parsl_config(plan_for(site), site, SchedulerConfig(), run_dir)


def raw_parsl(n: int) -> float:
    """Seconds per task for ``n`` no-op apps submitted straight to Parsl's ``sim`` pool."""
    import parsl
    from parsl import python_app

    ensure_worker_commands_on_path()
    with tempfile.TemporaryDirectory() as tmp:
        dfk = parsl.load(_config(tmp))
        try:
            app = python_app(noop, executors=["sim"], data_flow_kernel=dfk)
            app().result()  # warm: workers up
            t0 = time.perf_counter()
            futures = [app() for _ in range(n)]
            for f in futures:
                f.result()
            return (time.perf_counter() - t0) / n
        finally:
            dfk.cleanup()
            parsl.clear()


def through_scheduler(n: int) -> float:
    """Seconds per task for ``n`` no-op tasks through the streamal scheduler."""

    async def main() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            async with Scheduler(_config(tmp), run_dir=tmp, progress=False) as s:
                await s.submit("sim", noop, name="warm")
                t0 = time.perf_counter()
                await asyncio.gather(*(s.start("sim", noop, stage="bench") for _ in range(n)))
                return (time.perf_counter() - t0) / n

    return asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    raw, sched = [], []
    for r in range(args.rounds):
        order = [(raw, raw_parsl), (sched, through_scheduler)]
        for store, fn in order if r % 2 == 0 else order[::-1]:
            store.append(fn(args.tasks) * 1e3)
    raw_ms, sched_ms = statistics.median(raw), statistics.median(sched)
    result = {
        "tasks": args.tasks,
        "rounds": args.rounds,
        "raw_parsl_ms_per_task": round(raw_ms, 3),
        "scheduler_ms_per_task": round(sched_ms, 3),
        "ratio": round(sched_ms / raw_ms, 3),
        "raw_parsl_ms_all": [round(x, 3) for x in raw],
        "scheduler_ms_all": [round(x, 3) for x in sched],
    }
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.boxplot([raw, sched], tick_labels=["raw Parsl", "streamal scheduler"])
    ax.set_ylabel("ms per no-op task")
    ax.set_title(f"{args.tasks} no-op tasks, {args.rounds} rounds: ratio {result['ratio']:.2f}")
    fig.tight_layout()
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(_common.RESULTS / "scheduler_overhead.png", dpi=120)
    _common.emit("scheduler_overhead", result, args.json)


if __name__ == "__main__":
    main()
