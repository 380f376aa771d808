"""``metrics.json``: one entry per training phase, rewritten atomically after each phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamal import durable


class MetricsLog:
    """Per-phase metrics of a run; survives a crash (each write replaces the file whole).

    An unreadable file (edited by hand, or torn on a file system without atomic rename) reads
    as no completed phase: a resumed run then trains those phases again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.phases: list[dict[str, Any]] = []
        saved = durable.read_json(self.path, default=None)
        if isinstance(saved, dict):
            self.phases = list(saved.get("phases", []))

    def get(self, phase: str) -> dict[str, Any] | None:
        return next((p for p in self.phases if p["phase"] == phase), None)

    def put(self, entry: dict[str, Any]) -> None:
        """Add or replace the entry of ``entry["phase"]`` and write the file."""
        self.phases = [p for p in self.phases if p["phase"] != entry["phase"]] + [entry]
        durable.write_json(self.path, {"phases": self.phases})
