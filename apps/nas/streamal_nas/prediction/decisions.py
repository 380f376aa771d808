"""Decision files: the engine writes one per candidate, the trainer polls its own.

Layout: ``<decisions_dir>/<candidate>.json`` (:func:`decision_path`) holding
``{"<candidate>": {<Decision.to_dict()>, "session": "..."}}``.

The ``"session"`` tag is the driver session whose engine wrote the decision (see
:mod:`streamal_nas.search_state`); readers given a ``session`` keep only what it wrote. A
file is replaced atomically and durably, and a torn one reads as "no decision yet" (the
engine writes it again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamal import durable

from .decision import Decision
from .records import finite_or_none

__all__ = [
    "decision_path",
    "poll_decision",
    "read_all_decisions",
    "read_decisions",
    "write_decisions",
]

PathLike = str | os.PathLike[str]


def decision_path(decisions_dir: PathLike, candidate: str) -> Path:
    """The file holding the engine's decision for one candidate."""
    return Path(decisions_dir) / f"{candidate}.json"


def write_decisions(
    decisions: Mapping[str, Decision], path: PathLike, session: str | None = None
) -> None:
    """Write ``{candidate: decision}`` as one JSON object, atomically and durably.

    Args:
        decisions: The decisions (the engine writes one, to its :func:`decision_path`).
        path: The decision file.
        session: Tag every decision with this driver session (see :func:`read_decisions`).
    """
    payload = {}
    for k, d in decisions.items():
        payload[k] = _json_safe(d.to_dict())
        if session is not None:
            payload[k]["session"] = session
    durable.write_text(path, json.dumps(payload, indent=1, sort_keys=True))


def read_decisions(path: PathLike, session: str | None = None) -> dict[str, Decision]:
    """Read a decision file written by :func:`write_decisions`.

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


def read_all_decisions(decisions_dir: PathLike) -> dict[str, dict[str, Any]]:
    """Every decision file in ``decisions_dir`` as ``{candidate: Decision dict}``."""
    out = {}
    for path in sorted(Path(decisions_dir).glob("*.json")):
        out.update({k: d.to_dict() for k, d in read_decisions(path).items()})
    return out


def _json_safe(d: dict[str, object]) -> dict[str, object]:
    """Replace non-finite floats by ``null`` (strict JSON)."""
    return {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in d.items()}
