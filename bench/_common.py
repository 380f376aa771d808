"""Helpers shared by the benchmarks: results folder, JSON output, plots."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import os

    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def emit(name: str, result: dict[str, Any], as_json: bool) -> Path:
    """Write ``bench/results/<name>.json`` and print the result (JSON on the last line)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {**result, "machine": machine()}
    path.write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
        print(f"wrote {path}")
    return path
