"""The engine's output for one candidate: a :class:`Decision` and why it stopped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Decision", "StopReason"]

StopReason = Literal["converged", "never-learning", "max-epochs"]


@dataclass(frozen=True)
class Decision:
    """The engine's output for one candidate.

    Attributes:
        candidate: Candidate id (M).
        stop_epoch: Epoch of the record that triggered the decision.
        reason: ``"converged"`` (Alg. 2 line 8), ``"max-epochs"`` (e_pred reached, line 4)
            or ``"never-learning"`` (:class:`NeverLearningRule`).
        fitness: The value reported to the search: FIT_P when converged, fit_V at e_pred,
            the latest prediction (or fit_V if none) for never-learning.
        predicted_fitness: Latest prediction fit_P at the stop (``None`` if none).
        actual_fitness: Observed fitness fit_V at the stop.
        converged: Alg. 2 convergence status.
        curve: Curve behind ``predicted_fitness``.
        params: Its fitted parameters.
    """

    candidate: str
    stop_epoch: float
    reason: StopReason
    fitness: float
    predicted_fitness: float | None
    actual_fitness: float
    converged: bool
    curve: str | None = None
    params: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["params"] = None if self.params is None else list(self.params)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``reason`` is not one of the stop reasons.
        """
        if data.get("reason") not in ("converged", "never-learning", "max-epochs"):
            raise ValueError(
                "reason must be 'converged', 'never-learning' or 'max-epochs', "
                f"got {data.get('reason')!r}"
            )
        params = data.get("params")
        pred = data.get("predicted_fitness")
        return cls(
            candidate=str(data["candidate"]),
            stop_epoch=float(data["stop_epoch"]),
            reason=data["reason"],
            fitness=float(data["fitness"]),
            predicted_fitness=None if pred is None else float(pred),
            actual_fitness=float(data["actual_fitness"]),
            converged=bool(data["converged"]),
            curve=data.get("curve"),
            params=None if params is None else tuple(float(p) for p in params),
        )
