"""Decoupled PENGUIN: training records in a JSON-lines file, decisions in a JSON file.

The training loop appends one line per validation (:func:`append_record`) and polls its
decision (:func:`poll_decision`); the engine runs as a separate task that reads the
records, decides (:func:`.analyze_records`) and rewrites the decisions file atomically
(:func:`run_analysis`). Nothing here depends on the scheduler.

Record line: ``{"candidate": "c1", "epoch": 0.5, "fitness": 12.3}``.
Decisions file: ``{"c1": {<Decision.to_dict()>}, ...}``.

Both may carry a ``"session"`` tag (the driver session that wrote them, see
:mod:`streamal_nas.search_state`); readers given a ``session`` keep only what it wrote, so
a task left over from a killed driver cannot feed a resumed one. The records file is
append-only (a torn last line is skipped); the decisions file is replaced atomically and
durably, and a torn one reads as "no decision yet".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

from streamal import durable

from .engine import Decision, PredictionConfig, analyze_records

__all__ = [
    "append_record",
    "poll_decision",
    "read_decisions",
    "read_records",
    "run_analysis",
    "write_decisions",
]

PathLike = str | os.PathLike[str]


def append_record(
    path: PathLike, candidate: str, epoch: float, fitness: float, session: str | None = None
) -> None:
    """Append one ``(candidate, epoch, fitness)`` line (tagged with ``session`` if given)."""
    row: dict[str, object] = {"candidate": candidate, "epoch": float(epoch)}
    row["fitness"] = _num(fitness)
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


def write_decisions(
    decisions: Mapping[str, Decision], path: PathLike, session: str | None = None
) -> None:
    """Write ``{candidate: decision}`` as one JSON object, atomically and durably.

    Args:
        decisions: The decisions.
        path: The decisions file.
        session: Tag every decision with this driver session (see :func:`read_decisions`).
    """
    payload = {}
    for k, d in decisions.items():
        payload[k] = _json_safe(d.to_dict())
        if session is not None:
            payload[k]["session"] = session
    durable.write_text(path, json.dumps(payload, indent=1, sort_keys=True))


def read_decisions(path: PathLike, session: str | None = None) -> dict[str, Decision]:
    """Read a decisions file written by :func:`write_decisions`.

    A missing, torn or unreadable file gives ``{}`` (no decision yet: the engine writes it
    again). With ``session``, only the decisions tagged with it are returned.
    """
    data = durable.read_json(path, default=None)
    if not isinstance(data, dict):
        return {}
    try:
        return {
            k: Decision.from_dict(v)
            for k, v in data.items()
            if session is None or v.get("session") == session
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def poll_decision(path: PathLike, candidate: str, session: str | None = None) -> Decision | None:
    """The decision for ``candidate`` if the engine (of ``session``) has written one."""
    return read_decisions(path, session).get(candidate)


def run_analysis(
    records_path: PathLike, decisions_path: PathLike, config: PredictionConfig | None = None
) -> dict[str, Decision]:
    """One pass of the decoupled engine: read records, decide, write decisions.

    Safe to run repeatedly (e.g. as a periodic scheduler task): decisions are recomputed
    from the full records, which gives the same result as the incremental jobs.

    Returns:
        The decisions written.
    """
    decisions = analyze_records(read_records(records_path), config)
    write_decisions(decisions, decisions_path)
    return decisions


def _num(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _json_safe(d: dict[str, object]) -> dict[str, object]:
    """Replace non-finite floats by ``null`` (strict JSON)."""
    return {k: (_num(v) if isinstance(v, float) else v) for k, v in d.items()}
