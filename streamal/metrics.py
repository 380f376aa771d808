"""``metrics.json``: one entry per training phase, rewritten atomically after each phase."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    """Per-phase metrics of a run; survives a crash (each write replaces the file whole)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.phases: list[dict[str, Any]] = []
        if self.path.exists():
            self.phases = json.loads(self.path.read_text()).get("phases", [])

    def get(self, phase: str) -> dict[str, Any] | None:
        return next((p for p in self.phases if p["phase"] == phase), None)

    def put(self, entry: dict[str, Any]) -> None:
        """Add or replace the entry of ``entry["phase"]`` and write the file."""
        self.phases = [p for p in self.phases if p["phase"] != entry["phase"]] + [entry]
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"phases": self.phases}, indent=1))
        os.replace(tmp, self.path)
