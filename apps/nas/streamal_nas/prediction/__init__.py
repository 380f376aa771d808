"""PENGUIN fitness prediction engine (Rorabaugh et al., TPDS 2022).

* :mod:`.fitting`: a parametric curve and its bounded least-squares fit.
* :mod:`.table2`: the Table 2 curve families; :mod:`.curves`: the registry of named curves.
* :mod:`.config`: engine parameters (Table 4), the ``variant`` (the paper's text or the
  authors' code) and the ``direction`` (accuracy-like or loss-like fitness);
  :mod:`.decision`: the engine's output.
* :mod:`.engine`: Alg. 1 (parametric modelling) and Alg. 2 (prediction analyzer) behind a
  DeepHyper-style ``job.record(epoch, fitness); if job.stopped(): break``.
* :mod:`.records` and :mod:`.decisions`: the files that run the engine as a separate task,
  :mod:`.task` (:func:`run_prediction_engine`), kept running by the driver's
  :class:`.supervisor.EngineSupervisor`.

Example::

    engine = PredictionEngine(PredictionConfig(e_pred=20, epochs_per_iteration=0.5))
    job = engine.job("c0001")
    for epoch in (0.5, 1.0, 1.5):
        if job.record(epoch, validate(model)) is not None:
            break
"""

from .config import Direction, NeverLearningRule, PredictionConfig, Variant, prediction_config
from .curves import (
    CODE_CURVE,
    CURVES,
    DEFAULT_CURVE,
    MINIMIZE_CURVE,
    check_curve,
    get_curve,
    register_curve,
)
from .decision import Decision, StopReason
from .decisions import (
    decision_path,
    poll_decision,
    read_all_decisions,
    read_decisions,
    write_decisions,
)
from .engine import HistoryEntry, PredictionEngine, PredictionJob, analyze_records
from .fitting import Curve, FitResult, fit_curve
from .records import append_record, read_records
from .table2 import table2_curves
from .task import run_prediction_engine

FitnessPredictor = PredictionEngine
"""Alias: the engine under the name used in some of the design notes."""

__all__ = [
    "CODE_CURVE",
    "CURVES",
    "DEFAULT_CURVE",
    "MINIMIZE_CURVE",
    "Curve",
    "Decision",
    "Direction",
    "FitResult",
    "FitnessPredictor",
    "HistoryEntry",
    "NeverLearningRule",
    "PredictionConfig",
    "PredictionEngine",
    "PredictionJob",
    "StopReason",
    "Variant",
    "analyze_records",
    "append_record",
    "check_curve",
    "decision_path",
    "fit_curve",
    "get_curve",
    "poll_decision",
    "prediction_config",
    "read_all_decisions",
    "read_decisions",
    "read_records",
    "register_curve",
    "run_prediction_engine",
    "table2_curves",
    "write_decisions",
]
