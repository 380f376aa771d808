"""``epoch.json``: the latest epoch of a training in flight, for the driver's progress display.

Rank 0 rewrites it after every epoch (atomic rename, no fsync: a progress hint, not data that
must survive a crash); the driver reads it while the training task runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

EPOCH_FILE = "epoch.json"


def note_epoch(out_dir: str | Path, entry: dict[str, Any], epochs: int) -> None:
    """Record ``entry`` (one ``history.json`` entry) as the latest of ``epochs`` epochs."""
    path = Path(out_dir) / EPOCH_FILE
    tmp = path.with_name(f".{EPOCH_FILE}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps({**entry, "epochs": epochs}, default=float))
        os.replace(tmp, path)
    except OSError:  # a full disk must not stop a training for a progress hint
        tmp.unlink(missing_ok=True)


def latest_epoch(out_dir: str | Path) -> dict[str, Any] | None:
    """The latest noted epoch of the training writing to ``out_dir``, if any."""
    try:
        data = json.loads((Path(out_dir) / EPOCH_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
