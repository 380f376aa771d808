"""PENGUIN as a long-running ``sim``-pool task: records in, one decision file per candidate out.

Trainers append records (:mod:`.records`) and poll their decision file (:mod:`.decisions`);
this task reads the records, updates one :class:`~.engine.PredictionJob` per candidate and
writes each decision once made, until cancelled (or ``max_s`` elapsed). It is a module-level
function with plain arguments, so that pool workers can import it; the driver keeps it
running with :class:`~.supervisor.EngineSupervisor`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import prediction_config
from .decisions import decision_path, read_decisions, write_decisions
from .engine import PredictionEngine
from .records import read_records

if TYPE_CHECKING:
    from ..search_state import SessionFence

__all__ = ["run_prediction_engine"]


def run_prediction_engine(
    records_path: str,
    decisions_dir: str,
    config: Mapping[str, Any],
    poll_s: float = 0.2,
    max_s: float | None = None,
    fence: SessionFence | None = None,
) -> dict[str, Any]:
    """PENGUIN as a long-running task: records in, one decision file per candidate out.

    Decisions already on disk are kept (a restarted engine does not refit decided
    candidates); undecided candidates are replayed from their records once, then updated
    incrementally as new records arrive.

    Args:
        records_path: JSON-lines records written by the trainers (:mod:`.records`).
        decisions_dir: Folder of ``<candidate>.json`` decision files (:mod:`.decisions`).
        config: :class:`~.config.PredictionConfig` keyword values (see
            :func:`~.config.prediction_config`).
        poll_s: Sleep between passes over the records.
        max_s: Return after this many seconds (``None``: only when cancelled; ``0``: after
            one pass).
        fence: Read only the records (and decisions) of this driver session, tag the
            decisions with it, and return as soon as another session owns the run directory.

    Returns:
        ``decisions`` made by this task (``{candidate: Decision dict}``), ``passes``,
        ``records`` consumed and ``busy_s`` spent fitting.
    """
    from streamal.runtime.task import cancelled

    engine = PredictionEngine(prediction_config(config))
    session = fence.session if fence is not None else None
    out_dir = Path(decisions_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decided = {p.stem for p in out_dir.glob("*.json") if read_decisions(p, session)}
    consumed: dict[str, int] = {}
    made: dict[str, dict[str, Any]] = {}
    passes = records = 0
    busy = 0.0
    t0 = time.monotonic()
    while fence is None or fence.holds():
        t_pass = time.perf_counter()
        for cid, pairs in read_records(records_path, session).items():
            if cid in decided:
                continue
            job = engine.job(cid)
            for epoch, fitness in pairs[consumed.get(cid, 0) :]:
                records += 1
                if job.record(epoch, fitness) is not None:
                    if fence is not None and not fence.holds():
                        break  # a newer session owns the decisions folder
                    path = decision_path(out_dir, cid)
                    write_decisions({cid: job.decision}, path, session)
                    made[cid] = job.decision.to_dict()
                    decided.add(cid)
                    break
            consumed[cid] = len(pairs)
        busy += time.perf_counter() - t_pass
        passes += 1
        if cancelled() or (max_s is not None and time.monotonic() - t0 >= max_s):
            break
        time.sleep(poll_s)
    return {"decisions": made, "passes": passes, "records": records, "busy_s": busy}
