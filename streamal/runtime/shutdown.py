"""Stopping the Parsl pools within a bounded time, whatever state they are in.

``DataFlowKernel.cleanup`` asks each interchange which managers it holds before it cancels
their blocks; when an interchange has died (a wall-time SIGTERM reaches every process of the
job), that question is never answered and the driver hangs. Here a dead interchange skips
Parsl's cleanup, which otherwise runs in a thread with a deadline; what is alive then is
killed: interchange processes, and every block through its provider (for the local provider:
the block's whole process group — manager, workers and DDP ranks).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


def _htex(dfk: Any) -> list[Any]:
    return [e for e in dfk.executors.values() if hasattr(e, "interchange_proc")]


def _cancel_blocks(executor: Any) -> None:
    job_ids = list(getattr(executor, "blocks_to_job_id", {}).values())
    if job_ids and executor.provider is not None:
        with contextlib.suppress(Exception):
            executor.provider.cancel(job_ids)


def kill_pools(dfk: Any) -> None:
    """Kill every interchange and block of ``dfk`` now (no orderly shutdown)."""
    for executor in _htex(dfk):
        proc = executor.interchange_proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        _cancel_blocks(executor)


def stop_pools(dfk: Any, timeout: float = 10.0) -> bool:
    """Shut ``dfk`` down; kill what is left after ``timeout`` seconds.

    Returns:
        True if Parsl's own cleanup finished in time, False if the pools had to be killed.
    """
    dead = [e for e in _htex(dfk) if e.interchange_proc and e.interchange_proc.poll() is not None]
    if dead:
        # Parsl's threads may already wait forever on the dead interchange (its job status
        # poller asks it for the connected blocks); its cleanup would join them: kill instead
        log.warning("interchange of pool(s) %s exited; killing the pools", [e.label for e in dead])
        kill_pools(dfk)
        return False
    errors: list[BaseException] = []

    def cleanup() -> None:
        try:
            dfk.cleanup()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=cleanup, name="streamal-parsl-cleanup", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("Parsl cleanup did not finish in %.0f s; killing the pools", timeout)
        kill_pools(dfk)
        return False
    if errors:
        log.warning("Parsl cleanup failed (%s); killing the pools", errors[0])
        kill_pools(dfk)
        return False
    return True
