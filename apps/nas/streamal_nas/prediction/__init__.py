"""PENGUIN fitness prediction engine (Rorabaugh et al., TPDS 2022).

* :mod:`.curves`: Table 2 parametric functions, registry, ``curve_fit`` wrapper.
* :mod:`.engine`: Alg. 1 (parametric modelling) and Alg. 2 (prediction analyzer) behind a
  DeepHyper-style ``job.record(epoch, fitness); if job.stopped(): break``.
* :mod:`.records`: JSON-lines records and JSON decisions for running the engine as a
  separate task.
"""

from .curves import (
    CURVES,
    DEFAULT_CURVE,
    Curve,
    FitResult,
    check_curve,
    fit_curve,
    get_curve,
    register_curve,
    table2_curves,
)
from .engine import (
    Decision,
    HistoryEntry,
    NeverLearningRule,
    PredictionConfig,
    PredictionEngine,
    PredictionJob,
    StopReason,
    analyze_records,
)
from .records import (
    append_record,
    poll_decision,
    read_decisions,
    read_records,
    run_analysis,
    write_decisions,
)

FitnessPredictor = PredictionEngine
"""Alias: the engine under the name used in some of the design notes."""

__all__ = [
    "CURVES",
    "DEFAULT_CURVE",
    "Curve",
    "Decision",
    "FitResult",
    "FitnessPredictor",
    "HistoryEntry",
    "NeverLearningRule",
    "PredictionConfig",
    "PredictionEngine",
    "PredictionJob",
    "StopReason",
    "analyze_records",
    "append_record",
    "check_curve",
    "fit_curve",
    "get_curve",
    "poll_decision",
    "read_decisions",
    "read_records",
    "register_curve",
    "run_analysis",
    "table2_curves",
    "write_decisions",
]
