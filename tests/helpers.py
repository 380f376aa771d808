"""Module-level task functions the pool workers can import."""

from __future__ import annotations

import os
import time


def probe(seconds: float = 0.0) -> dict:
    """Sleep, then report what the worker saw from inside."""
    start = time.time()
    time.sleep(seconds)
    return {
        "cores": sorted(os.sched_getaffinity(0)),
        "pid": os.getpid(),
        "start": start,
        "end": time.time(),
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def noop() -> None:
    return None


def flaky(marker: str, failures: int) -> str:
    """Fail the first ``failures`` calls (counted through files), then succeed."""
    n = len(
        [p for p in os.listdir(os.path.dirname(marker)) if p.startswith(os.path.basename(marker))]
    )
    if n < failures:
        open(f"{marker}.{n}", "w").close()
        raise RuntimeError(f"planned failure {n + 1}")
    return "ok"


def poll_until_cancelled(limit: float) -> str:
    from streamal.task import raise_if_cancelled

    deadline = time.time() + limit
    while time.time() < deadline:
        raise_if_cancelled()
        time.sleep(0.05)
    return "not cancelled"
