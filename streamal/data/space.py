"""Parameter spaces: discrete classes, each with a box of continuous parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamal.errors import ParameterError


@dataclass(frozen=True)
class ClassSpace:
    """One discrete class and its continuous parameters.

    Args:
        name: Class label, e.g. ``"tetragonal"``.
        bounds: Free parameters in order, each ``name -> (low, high)``.
        tied: Parameters that are not free: ``name -> other parameter name`` (copy its value)
            or ``name -> constant``.
        min_separation: Pairs of free parameters that must differ by more than a margin,
            ``(p, q) -> eps`` meaning ``|p - q| > eps`` (e.g. tetragonal ``a != c``).
    """

    name: str
    bounds: Mapping[str, tuple[float, float]]
    tied: Mapping[str, str | float] = field(default_factory=dict)
    min_separation: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p, (lo, hi) in self.bounds.items():
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
                raise ParameterError(
                    f"class {self.name!r}: bounds of {p!r} must be finite with low <= high, "
                    f"got ({lo}, {hi})"
                )
        for p, src in self.tied.items():
            if p in self.bounds:
                raise ParameterError(f"class {self.name!r}: {p!r} is both free and tied")
            if isinstance(src, str) and src not in self.bounds:
                raise ParameterError(
                    f"class {self.name!r}: {p!r} is tied to {src!r}, which is not a free "
                    f"parameter (free: {list(self.bounds)})"
                )

    @property
    def free(self) -> tuple[str, ...]:
        """Names of the free parameters, in order."""
        return tuple(self.bounds)

    @property
    def low(self) -> np.ndarray:
        return np.array([b[0] for b in self.bounds.values()], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        return np.array([b[1] for b in self.bounds.values()], dtype=np.float64)


_UNIT_WORDS = {"Å": "A", "°": "deg", "µ": "u", "μ": "u", "%": "pct", "/": "_per_", "Ω": "Ohm"}


def unit_suffix(unit: str) -> str:
    """An ASCII identifier for a unit, for metric names: ``"Å"`` → ``"A"``, ``"°"`` →
    ``"deg"``, ``"m/s"`` → ``"m_per_s"``, ``""`` → ``""``."""
    text = unit.strip()
    for symbol, word in _UNIT_WORDS.items():
        text = text.replace(symbol, word)
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


@dataclass(frozen=True)
class ParameterSpace:
    """A union of classes sharing one full parameter vector ``param_names``.

    Every sample is stored as ``(class index, full vector)``; a class's free parameters sit at
    their positions in the full vector and the tied ones are derived by :meth:`complete`.

    Args:
        param_names: The full parameter vector, in order.
        classes: The classes, in label order.
        units: Optional unit of each parameter, ``name -> unit`` (e.g. ``{"a": "Å",
            "alpha": "°"}``); a parameter left out has none. Models name their metrics with
            it (``mae_a_A``, see :func:`unit_suffix`).
    """

    param_names: tuple[str, ...]
    classes: tuple[ClassSpace, ...]
    units: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.classes:
            raise ParameterError("a parameter space needs at least one class")
        unknown_units = set(self.units) - set(self.param_names)
        if unknown_units:
            raise ParameterError(
                f"units name unknown parameters {sorted(unknown_units)}; "
                f"allowed: {list(self.param_names)}"
            )
        for p, u in self.units.items():
            if not isinstance(u, str):
                raise ParameterError(f"units[{p!r}] must be a string such as 'Å', got {u!r}")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ParameterError(f"class names must be unique, got {names}")
        for c in self.classes:
            missing = set(c.free) | set(c.tied)
            unknown = missing - set(self.param_names)
            if unknown:
                raise ParameterError(
                    f"class {c.name!r} names unknown parameters {sorted(unknown)}; "
                    f"allowed: {list(self.param_names)}"
                )
            uncovered = set(self.param_names) - missing
            if uncovered:
                raise ParameterError(
                    f"class {c.name!r} leaves {sorted(uncovered)} neither free nor tied"
                )

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def class_index(self, name: str) -> int:
        try:
            return self.class_names.index(name)
        except ValueError:
            raise ParameterError(
                f"unknown class {name!r}; allowed: {list(self.class_names)}"
            ) from None

    def unit(self, name: str) -> str:
        """The unit of parameter ``name``, ``""`` if it has none."""
        if name not in self.param_names:
            raise ParameterError(f"unknown parameter {name!r}; allowed: {list(self.param_names)}")
        return self.units.get(name, "")

    def free_indices(self, class_index: int) -> np.ndarray:
        """Positions of a class's free parameters in the full vector."""
        c = self.classes[class_index]
        return np.array([self.param_names.index(p) for p in c.free], dtype=np.int64)

    def complete(self, class_index: int, free_values: np.ndarray) -> np.ndarray:
        """Full vectors ``(n, len(param_names))`` from free values ``(n, n_free)``."""
        c = self.classes[class_index]
        free_values = np.atleast_2d(np.asarray(free_values, dtype=np.float64))
        if free_values.shape[1] != len(c.free):
            raise ParameterError(
                f"class {c.name!r} has {len(c.free)} free parameters {list(c.free)}, "
                f"got {free_values.shape[1]} values"
            )
        full = np.empty((free_values.shape[0], len(self.param_names)), dtype=np.float64)
        for j, p in enumerate(c.free):
            full[:, self.param_names.index(p)] = free_values[:, j]
        for p, src in c.tied.items():
            col = self.param_names.index(p)
            full[:, col] = free_values[:, c.free.index(src)] if isinstance(src, str) else src
        return full

    def check(self, classes: np.ndarray, params: np.ndarray, *, tolerance: float = 1e-9) -> None:
        """Raise :class:`ParameterError` naming the first sample that is not in the space."""
        classes = np.asarray(classes)
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 2 or params.shape[1] != len(self.param_names):
            raise ParameterError(
                f"params must have shape (n, {len(self.param_names)}) for "
                f"{list(self.param_names)}, got {params.shape}"
            )
        if classes.shape != (params.shape[0],):
            raise ParameterError(
                f"classes must have shape ({params.shape[0]},), got {classes.shape}"
            )
        for i, (k, row) in enumerate(zip(classes, params, strict=True)):
            if not 0 <= int(k) < len(self.classes):
                raise ParameterError(
                    f"sample {i}: class index {int(k)} is outside 0..{len(self.classes) - 1}"
                )
            c = self.classes[int(k)]
            for p, value in zip(self.param_names, row, strict=True):
                if not np.isfinite(value):
                    raise ParameterError(f"sample {i} ({c.name}): {p} = {value} is not finite")
            for p, (lo, hi) in c.bounds.items():
                v = row[self.param_names.index(p)]
                if not lo - tolerance <= v <= hi + tolerance:
                    raise ParameterError(
                        f"sample {i} ({c.name}): {p} = {v} is outside [{lo}, {hi}]"
                    )
            for p, src in c.tied.items():
                v = row[self.param_names.index(p)]
                want = row[self.param_names.index(src)] if isinstance(src, str) else src
                if abs(v - want) > tolerance * max(1.0, abs(want)):
                    raise ParameterError(
                        f"sample {i} ({c.name}): {p} = {v} must equal "
                        f"{src if isinstance(src, str) else ''} {want}".replace("  ", " ")
                    )
            for (p, q), eps in c.min_separation.items():
                vp, vq = row[self.param_names.index(p)], row[self.param_names.index(q)]
                if abs(vp - vq) <= eps:
                    raise ParameterError(
                        f"sample {i} ({c.name}): |{p} - {q}| = {abs(vp - vq):.3g} must be > {eps}"
                    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_dict`)."""
        return {
            "param_names": list(self.param_names),
            "classes": [
                {
                    "name": c.name,
                    "bounds": {k: list(v) for k, v in c.bounds.items()},
                    "tied": dict(c.tied),
                    "min_separation": [[p, q, eps] for (p, q), eps in c.min_separation.items()],
                }
                for c in self.classes
            ],
            "units": dict(self.units),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterSpace:
        """Inverse of :meth:`to_dict` (a dict without ``units`` gives a space without)."""
        classes = tuple(
            ClassSpace(
                c["name"],
                {k: (float(v[0]), float(v[1])) for k, v in c["bounds"].items()},
                dict(c.get("tied", {})),
                {(p, q): float(eps) for p, q, eps in c.get("min_separation", [])},
            )
            for c in data["classes"]
        )
        return cls(tuple(data["param_names"]), classes, dict(data.get("units") or {}))

    def subset(self, class_names: Sequence[str]) -> ParameterSpace:
        """The same space restricted to some classes, in the given order."""
        return ParameterSpace(
            self.param_names,
            tuple(self.classes[self.class_index(n)] for n in class_names),
            self.units,
        )
