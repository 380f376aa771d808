"""Module-level task functions for the walltime tests (the pool workers import them)."""

from __future__ import annotations

import os
import time


def sleep_the_first_time(marker: str, seconds: float) -> str:
    """Sleep ``seconds`` without polling any cancel token on the first call, return at once
    on later calls (counted through ``marker``)."""
    if os.path.exists(marker):
        return "quick"
    open(marker, "w").close()
    time.sleep(seconds)
    return "slept"
