"""Training records: one JSON line per validation, appended by the trainer, read by the engine.

Record line: ``{"candidate": "c1", "epoch": 0.5, "fitness": 12.3, "session": "..."}``.

The ``"session"`` tag (the driver session that wrote the line, see
:mod:`streamal_nas.search_state`) is optional; readers given a ``session`` keep only what it
wrote, so a task left over from a killed driver cannot feed a resumed one. The file is
append-only and a torn last line is skipped.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["append_record", "finite_or_none", "read_records"]

PathLike = str | os.PathLike[str]


def append_record(
    path: PathLike, candidate: str, epoch: float, fitness: float, session: str | None = None
) -> None:
    """Append one ``(candidate, epoch, fitness)`` line (tagged with ``session`` if given)."""
    row: dict[str, object] = {"candidate": candidate, "epoch": float(epoch)}
    row["fitness"] = finite_or_none(fitness)
    if session is not None:
        row["session"] = session
    line = json.dumps(row)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()


def read_records(
    path: PathLike, session: str | None = None
) -> dict[str, list[tuple[float, float]]]:
    """Read a JSON-lines records file into ``{candidate: [(epoch, fitness), ...]}``.

    A missing file gives ``{}``. A last line without its newline (a writer mid-append) is
    skipped. Fitness ``null`` reads as NaN. With ``session``, only the lines tagged with it
    are kept.

    Raises:
        ValueError: A complete line is not a record; the message names the line number.
    """
    p = Path(path)
    if not p.exists():
        return {}
    text = p.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # incomplete trailing line
    out: dict[str, list[tuple[float, float]]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            fitness = math.nan if row["fitness"] is None else float(row["fitness"])
            if session is not None and row.get("session") != session:
                continue
            out.setdefault(str(row["candidate"]), []).append((float(row["epoch"]), fitness))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{p}:{number}: expected {{'candidate', 'epoch', 'fitness'}}, got {line!r}"
            ) from exc
    return out


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or ``None`` (JSON ``null``) when it is not finite."""
    v = float(value)
    return v if math.isfinite(v) else None
