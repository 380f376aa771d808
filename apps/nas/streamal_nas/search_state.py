"""What a search keeps in its run directory to resume, and the fence against stale tasks.

Layout (under the run directory)::

    nas/state.json       completed evaluations (candidate rows), the in-flight window and
                         the config fingerprint; replaced atomically after each evaluation
    nas/state.prev.json  the version before it (read when state.json is torn or missing)
    nas/session          id of the driver session that owns the run directory now
    records.jsonl        training records, each tagged with the session that wrote it
    decisions/<id>.json  engine decisions, tagged likewise
    checkpoints/<id>.pt  the weights of each trained candidate at its stop epoch

No log of the strategy's asks and tells is kept: the search loop is deterministic given the
seed and the completed evaluations (see :mod:`.workflow`), so a resumed run replays the
strategy and takes each completed candidate's row from ``state.json`` instead of
evaluating it again. Before that, :meth:`SearchState.prune` removes what the killed session
left half done: records, decisions and checkpoints of the candidates that were in flight
(they are evaluated again, from epoch 0), and temporary files.

The pool workers of a killed driver outlive it until they miss Parsl's heartbeats. A new
session writes its id to ``nas/session`` before anything else: tasks of an older session
check it before each write and stop (:class:`SessionFence`), and readers ignore records and
decisions tagged with another session.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.errors import StreamalError

from .prediction.decisions import read_decisions

__all__ = ["SearchState", "SearchStateError", "SessionFence", "compact_records"]

STATE_VERSION = 1


class SearchStateError(StreamalError):
    """The saved search state does not belong to this search, or another driver took over."""


@dataclass(frozen=True)
class SessionFence:
    """Whether the driver session that started a task still owns the run directory.

    Args:
        path: The ``nas/session`` file.
        session: The id of the session that started the task.
    """

    path: str
    session: str

    def holds(self) -> bool:
        """False once another session has written its id (a missing or empty file holds)."""
        try:
            current = Path(self.path).read_text(encoding="utf-8").strip()
        except OSError:
            return True
        return not current or current == self.session


class SearchState:
    """Completed evaluations of one search, saved after each one; see the module docstring.

    Use :meth:`open`, not the constructor.

    Args:
        run_dir: The run directory.
        fingerprint: The run config's fingerprint (a state of another config is refused).
        window: Candidates asked ahead of the oldest one not yet told (see :mod:`.workflow`);
            a resumed search keeps the window it started with.

    Attributes:
        completed: ``{candidate id: row}`` of every completed evaluation; each row holds the
            ``session`` that evaluated it.
        session: This driver session's id.
        notes: What loading and pruning found (for the log).
    """

    def __init__(self, run_dir: str | Path, fingerprint: str, window: int) -> None:
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "nas"
        self.fingerprint = fingerprint
        self.window = int(window)
        self.completed: dict[str, dict[str, Any]] = {}
        self.session = uuid.uuid4().hex[:12]
        self.notes: list[str] = []

    @property
    def path(self) -> Path:
        return self.dir / "state.json"

    @property
    def prev_path(self) -> Path:
        return self.dir / "state.prev.json"

    @classmethod
    def open(cls, run_dir: str | Path, fingerprint: str, window: int) -> SearchState:
        """Load the saved state, if any, and take the run directory over for a new session.

        Raises:
            SearchStateError: The saved state was written for another config.
        """
        state = cls(run_dir, fingerprint, window)
        state.dir.mkdir(parents=True, exist_ok=True)
        data = state._load()
        if data is not None:
            if data.get("fingerprint") != fingerprint:
                raise SearchStateError(
                    f"{state.path}: saved by a run of config {data.get('fingerprint')!r}, "
                    f"this run's config is {fingerprint!r}; start a new run directory"
                )
            state.window = int(data["window"])
            state.completed = {str(r["id"]): dict(r) for r in data["completed"]}
        durable.write_text(state.dir / "session", state.session)
        return state

    def fence(self) -> SessionFence:
        """The fence that tasks of this session check before they write."""
        return SessionFence(str(self.dir / "session"), self.session)

    def saved_row(self, candidate_id: str, genome_key: str) -> dict[str, Any] | None:
        """The row an earlier session saved for a candidate, checked against its genome.

        Args:
            candidate_id: The candidate the search asks now.
            genome_key: Its genome's :meth:`~.genome.MacroGenome.key`.

        Returns:
            The saved row, or ``None`` when the candidate was not completed.

        Raises:
            SearchStateError: The saved candidate had another genome (the state is not this
                search's).
        """
        row = self.completed.get(candidate_id)
        if row is None:
            return None
        if row["genome"] != genome_key:
            raise SearchStateError(
                f"{self.path}: {candidate_id} was {row['genome']} but the search now asks "
                f"{genome_key}: the saved state is not this search's (another version?); "
                "start a new run directory"
            )
        return row

    def add(self, row: Mapping[str, Any]) -> None:
        """Record one completed evaluation (tagged with this session) and save."""
        self.completed[str(row["id"])] = {**row, "session": self.session}
        self.save()

    def save(self) -> None:
        """Replace ``state.json`` atomically, keeping the version before as a fallback."""
        data = {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "window": self.window,
            "completed": list(self.completed.values()),
        }
        if self.path.exists():
            os.replace(self.path, self.prev_path)
        durable.write_json(self.path, data)

    def _load(self) -> dict[str, Any] | None:
        for path in (self.path, self.prev_path):
            data = durable.read_json(path, default=None)
            if _valid(data):
                if path == self.prev_path:
                    self.notes.append(f"{self.path} torn or missing: resumed from {path.name}")
                return data
            if path.exists():
                self.notes.append(f"{path}: torn or not a search state, ignored")
        return None

    # -- cleaning up after a killed session -----------------------------------------------------
    def prune(self, records_path: Path, decisions_dir: Path, ckpt_dir: Path) -> None:
        """Remove what is not backed by a completed evaluation.

        * a trained row whose checkpoint is gone is dropped (the candidate is evaluated
          again);
        * records: only those of completed candidates, written by the session that
          evaluated them, each ``(candidate, epoch)`` once (:func:`compact_records`);
        * decisions: only those of completed candidates, by that session, readable;
        * checkpoints: only those of completed trained candidates; temporary files go.
        """
        for cid, row in list(self.completed.items()):
            ckpt = ckpt_dir / f"{cid}.pt"
            if row.get("status") == "trained" and not (ckpt.is_file() and ckpt.stat().st_size):
                del self.completed[cid]
                self.notes.append(f"{cid}: checkpoint missing, evaluated again")
                self.save()
        owners = {cid: str(row.get("session")) for cid, row in self.completed.items()}
        dropped = compact_records(records_path, owners)
        if dropped:
            self.notes.append(f"{records_path.name}: dropped {dropped} records of unfinished work")
        for path in sorted(decisions_dir.glob("*.json")):
            owner = owners.get(path.stem)
            if owner is None or path.stem not in read_decisions(path, owner):
                path.unlink(missing_ok=True)
        trained = {cid for cid, row in self.completed.items() if row.get("status") == "trained"}
        for path in sorted(ckpt_dir.glob("*.pt")):
            if path.stem not in trained:
                path.unlink(missing_ok=True)
        for folder in (self.dir, decisions_dir, ckpt_dir):
            durable.remove_temporaries(folder)
        durable.remove_temporaries(records_path.parent, records_path.name)


def _valid(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("version") == STATE_VERSION
        and isinstance(data.get("completed"), list)
        and isinstance(data.get("window"), int)
    )


def compact_records(path: Path, owners: Mapping[str, str]) -> int:
    """Keep the records of ``owners`` (``{candidate: session}``) written by that session.

    Unreadable lines (a torn tail) and repeated ``(candidate, epoch)`` pairs go too; the file
    is replaced atomically, and only when something was dropped.

    Returns:
        The number of lines dropped.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        durable.write_text(path, "")
        return 0
    kept: list[str] = []
    seen: set[tuple[str, float]] = set()
    lines = [line for line in text.split("\n") if line.strip()]
    for line in lines:
        try:
            row = json.loads(line)
            key = (str(row["candidate"]), float(row["epoch"]))
        except (ValueError, KeyError, TypeError):
            continue
        if key[0] not in owners or row.get("session") != owners[key[0]] or key in seen:
            continue
        seen.add(key)
        kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped or (text and not text.endswith("\n")):
        durable.write_text(path, "".join(line + "\n" for line in kept))
    return dropped
