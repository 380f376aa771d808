"""The trained model on measured patterns: class probabilities and parameters with σ."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import ParameterError, one_line
from streamal.inference.errors import ModelFilesError, PatternError
from streamal.inference.grid import MIN_COVERAGE, InputGrid, PlacedPattern, place_on_grid
from streamal.inference.measurement import Measurement
from streamal.inference.model_files import ModelFiles, find_model
from streamal.inference.readers import read_patterns
from streamal.train.checkpoint import MODEL_FILE

if TYPE_CHECKING:
    from streamal.simulation.simulator import Simulator

#: What :meth:`Predictor.predict` takes: a file, a measurement, or an array (the values on the
#: model's grid, or rows ``x, y[, e]``).
PatternLike = str | os.PathLike[str] | Measurement | np.ndarray


@dataclass(frozen=True)
class ParameterEstimate:
    """A predicted parameter: ``value ± sigma`` in ``unit``."""

    value: float
    sigma: float
    unit: str

    def __str__(self) -> str:
        return _value_pm(self.value, self.sigma, self.unit)


@dataclass(frozen=True)
class Prediction:
    """What the model says about one pattern.

    Attributes:
        source: The file (or ``"<array>"``).
        label: Which pattern of the file (``"bank 1"``), or ``""``.
        probabilities: Class name → probability, in the space's class order.
        predicted_class: The most probable class.
        parameters: Every regression target → its estimate, in the parameters' units.
        free: The predicted class's free parameters (the others are tied to them).
        coverage: Fraction of the model's grid the data covered.
        unit: The x axis the pattern was read on (``None``: no axis).
        resampled: Whether it was rebinned onto the grid.
        sigma_note: How the σ are made, when the model says (one shared variance...).
        pattern: ``(L,)`` the pattern on the model's grid, before the model's normalisation.
        x: ``(L,)`` the grid's points, or ``None``.
        covered: ``(L,)`` fraction of each grid bin the data cover (0: a filled bin), or
            ``None`` (not known).
    """

    source: str
    label: str
    probabilities: dict[str, float]
    predicted_class: str
    parameters: dict[str, ParameterEstimate]
    free: tuple[str, ...]
    coverage: float
    unit: str | None
    resampled: bool
    sigma_note: str | None = None
    pattern: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    x: np.ndarray | None = field(default=None, repr=False)
    covered: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """``FILE`` or ``FILE [bank 1]``."""
        return f"{self.source} [{self.label}]" if self.label else self.source

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (without the pattern)."""
        return {
            "source": self.source,
            "label": self.label,
            "predicted_class": self.predicted_class,
            "probabilities": dict(self.probabilities),
            "parameters": {
                p: {"value": e.value, "sigma": e.sigma, "unit": e.unit, "free": p in self.free}
                for p, e in self.parameters.items()
            },
            "coverage": self.coverage,
            "x_unit": self.unit,
            "resampled": self.resampled,
            "sigma_note": self.sigma_note,
        }

    def describe(self) -> str:
        """Lines for a terminal: the classes by probability, the free parameters ± σ."""
        how = "rebinned" if self.resampled else "taken as is"
        axis = f"x as {self.unit}, " if self.unit else ""
        lines = [f"{self.name}: {axis}{self.coverage:.0%} of the model's grid covered ({how})"]
        ranked = sorted(self.probabilities.items(), key=lambda kv: -kv[1])
        lines.append("  class: " + ", ".join(f"{k} {p:.3f}" for k, p in ranked))
        for p in self.free:
            lines.append(f"  {p} = {self.parameters[p]}")
        if self.sigma_note:
            lines.append(f"  σ: {self.sigma_note}")
        return "\n".join(lines)


class RefinementResult(Protocol):
    """One fit :meth:`Predictor.refine` returns (made by the simulator's ``refine`` hook,
    :meth:`streamal.simulation.simulator.Simulator.refine`)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, with ``"class"``: the class fitted."""
        ...

    def describe(self) -> str:
        """One line for a terminal: class, refined parameters ± esd, the fit's quality."""
        ...

    def plot(self, path: str | Path) -> Path:
        """Write the fit (observed, calculated, difference) as a PNG; returns its path."""
        ...


def select_patterns(found: list[Measurement], bank: int | str | None) -> list[Measurement]:
    """The patterns of one file that ``bank`` selects (by position or label; ``None``: all).

    Raises:
        PatternError: No pattern matches (the message lists the file's).
    """
    if bank is None:
        return found
    key = str(bank)
    pick = [m for m in found if m.label in (key, f"bank {key}")]  # labels first, then positions
    pick = pick or [m for i, m in enumerate(found) if key == str(i)]
    if not pick:
        labels = ", ".join(m.label or str(i) for i, m in enumerate(found))
        raise PatternError(f"no pattern {key!r} (it has: {labels})", found[0].source or None)
    return pick


def _value_pm(value: float, sigma: float, unit: str) -> str:
    """``4.0012 ± 0.0023 Å``: σ to two significant digits, the value to the same place."""
    digits = 4
    if sigma > 0 and math.isfinite(sigma):
        digits = max(0, 1 - math.floor(math.log10(sigma)))
    text = f"{value:.{digits}f} ± {sigma:.{digits}f}"
    return f"{text} {unit}" if unit else text


class Predictor:
    """A trained model, ready to predict from measured patterns.

    Loads ``model.json`` and ``best.pt`` (``weights_only``), rebuilds the model plugin and puts
    each pattern on the model's input grid (:func:`~streamal.inference.grid.place_on_grid`)
    before ``encode_inputs``, the network and the plugin's ``predict``.

    Args:
        model: A run directory (its last trained stage), a stage folder or a ``best.pt``.
        stage: With a run directory, the stage to use (``"T3"``).
        min_coverage: Least fraction of the grid a pattern must cover.
        fill: Grid bins the data do not reach: ``"background"`` or ``"zero"``.

    Raises:
        ModelFilesError: No trained model there, or its files do not fit together.
        PluginError: The model plugin is not installed.

    Example::

        from streamal.inference import Predictor

        predictor = Predictor("runs/diffraction-quickstart-20250101-120000")
        result = predictor.predict("sample.gsa")
        print(result.predicted_class, result.parameters["a"])
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        stage: str | None = None,
        min_coverage: float = MIN_COVERAGE,
        fill: str = "background",
    ) -> None:
        import torch

        from streamal import plugins
        from streamal.train.checkpoint import load_checkpoint
        from streamal.train.targets import regression_scale

        self.files: ModelFiles = find_model(model, stage)
        self.location = os.fspath(model)
        self._simulator: Simulator | None = None
        self.min_coverage = min_coverage
        self.fill = fill
        d = self.files.description
        where = self.files.checkpoint.parent / MODEL_FILE
        try:
            self.space = ParameterSpace.from_dict(d["space"])
            self.input_shape = tuple(int(v) for v in d["input"]["shape"])
            name = str(d["model"]["name"])
            options = dict(d["model"].get("options") or {})
            axis = d["input"].get("axis")
        except (KeyError, TypeError, ValueError, ParameterError) as exc:
            raise ModelFilesError(f"{where}: malformed ({one_line(exc)})") from None
        try:
            self.grid = InputGrid.from_dict(axis) if axis else None
        except PatternError as exc:
            raise ModelFilesError(f"{where}: {exc.message}") from None
        self.plugin = plugins.load("models", name)(self.space, self.input_shape, **options)
        self.target_names = regression_scale(self.space)[0]
        note = (d.get("output") or {}).get("sigma") or getattr(
            self.plugin, "uncertainty_note", None
        )
        self.sigma_note = note if isinstance(note, str) else None
        self.network = self.plugin.build()
        try:
            state = load_checkpoint(self.files.checkpoint)
            self.network.load_state_dict(state["model"])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelFilesError(
                f"{self.files.checkpoint}: not loadable into {name!r} as {where.name} "
                f"describes it ({one_line(exc)[:300]})"
            ) from None
        self.network.eval()
        self._torch = torch

    @property
    def simulator(self) -> Simulator:
        """The simulator the model was trained on (``model.json``'s ``simulator``), built on
        first use.

        Raises:
            ModelFilesError: ``model.json`` records none, or it cannot be built from the
                options recorded.
            PluginError: The simulator plugin is not installed.
        """
        if self._simulator is None:
            from streamal import plugins

            where = self.files.checkpoint.parent / MODEL_FILE
            spec = self.files.description.get("simulator")
            if not isinstance(spec, dict) or not spec.get("name"):
                raise ModelFilesError(
                    f"{where}: records no simulator; refining needs the one the model was "
                    "trained on"
                )
            name, options = str(spec["name"]), dict(spec.get("options") or {})
            cls = plugins.load("simulators", name)
            try:
                self._simulator = cls(**options)
            except Exception as exc:  # a plugin's constructor: name it and what it raised
                raise ModelFilesError(
                    f"{where}: the simulator {name!r} cannot be built from its options "
                    f"{options} ({type(exc).__name__}: {one_line(exc)[:300]})"
                ) from None
        return self._simulator

    def refine(self, prediction: Prediction, **options: Any) -> list[RefinementResult]:
        """Least-squares refinement of ``prediction`` with the training simulator as forward
        model (its ``refine`` hook; diffraction: the cell ± esd of the most probable class, and
        of the runner-up when the classifier is unsure).

        Args:
            prediction: A prediction of this model (its ``pattern`` is on the model's grid,
                which is the simulator's).
            **options: The simulator's settings of the fit.

        Returns:
            The fits, best first.

        Raises:
            ModelFilesError: No simulator recorded, or it offers no refinement.
            PluginError: The simulator plugin is not installed.
            PatternError: This pattern or prediction cannot be refined (names the file).
        """
        sim = self.simulator
        try:
            fits = sim.refine(prediction.pattern, prediction, **options)
        except (ValueError, ArithmeticError) as exc:  # ParameterError, a failed fit
            raise PatternError(f"refinement failed: {one_line(exc)}", prediction.name) from None
        if fits is None:
            name = self.files.description["simulator"]["name"]
            raise ModelFilesError(f"{self.location}: the simulator {name!r} offers no refinement")
        return list(fits)

    @property
    def stage(self) -> str:
        return self.files.stage

    @property
    def length(self) -> int:
        """Points of one input pattern (the last dimension of the input shape)."""
        return self.input_shape[-1]

    def read(self, source: PatternLike) -> list[Measurement]:
        """The patterns of a file, or the one pattern given.

        Raises:
            PatternError: Unreadable file or array of the wrong shape.
        """
        if isinstance(source, Measurement):
            return [source]
        if isinstance(source, np.ndarray):
            a = np.asarray(source, dtype=np.float64)
            if a.ndim == 1 or a.shape == self.input_shape:
                return [Measurement(y=a.reshape(-1), source="<array>")]
            if a.ndim == 2 and a.shape[0] in (2, 3):
                e = a[2] if a.shape[0] == 3 else None
                return [Measurement(y=a[1], x=a[0], e=e, source="<array>")]
            raise PatternError(f"array of shape {a.shape}; need (n,) or rows x, y[, e]", "<array>")
        return read_patterns(source)

    def place(self, m: Measurement, unit: str | None = None) -> PlacedPattern:
        """``m`` on the model's input grid (:func:`~streamal.inference.grid.place_on_grid`).

        Raises:
            PatternError: It does not fit (the message names the file).
        """
        size = math.prod(self.input_shape)
        try:
            if len(self.input_shape) > 1 and self.grid is None:
                values = np.asarray(m.y, dtype=np.float64).reshape(-1)
                if values.size != size:
                    raise PatternError(
                        f"{values.size} values; the model takes {self.input_shape} arrays"
                    )
                return PlacedPattern(values, 1.0, None, False, np.ones(values.size))
            placed = place_on_grid(
                m,
                self.grid,
                self.length,
                unit=unit,
                min_coverage=self.min_coverage,
                fill=self.fill,
            )
            if placed.values.size != size:
                raise PatternError(
                    f"one row of {placed.values.size} values; the model takes "
                    f"{self.input_shape} arrays"
                )
            return placed
        except PatternError as exc:
            raise exc.at(m.source or "<pattern>") from None

    def predict(
        self, pattern: PatternLike, *, unit: str | None = None, bank: int | str | None = None
    ) -> Prediction:
        """The model's prediction for one pattern.

        Args:
            pattern: A file, a :class:`Measurement`, or an array (values on the grid, or rows
                ``x, y[, e]``).
            unit: The x axis of the data (``"tof"``, ``"d"``), overriding the file's.
            bank: For a file of several patterns: which, by position or label.

        Raises:
            PatternError: Unreadable, several patterns and no ``bank``, or not on the grid.
        """
        found = select_patterns(self.read(pattern), bank)
        if len(found) != 1:
            labels = ", ".join(m.label or str(i) for i, m in enumerate(found))
            raise PatternError(
                f"{len(found)} patterns ({labels}); choose one with bank=", found[0].source
            )
        return self.predict_measurements(found, unit=unit)[0]

    def predict_measurements(
        self, measurements: Sequence[Measurement], *, unit: str | None = None
    ) -> list[Prediction]:
        """Predictions for patterns already read, in order, in one batch.

        Raises:
            PatternError: A pattern does not fit the grid (the first such).
            ModelFilesError: The model plugin does not implement ``predict``.
        """
        placed = [self.place(m, unit) for m in measurements]
        if not placed:
            return []
        x = np.stack([p.values for p in placed]).reshape(len(placed), *self.input_shape)
        torch = self._torch
        with torch.no_grad():
            encoded = self.plugin.encode_inputs(x.astype(np.float32))
            output = self.network(torch.from_numpy(np.asarray(encoded, dtype=np.float32)))
        try:
            out = self.plugin.predict(output)
        except NotImplementedError:
            raise ModelFilesError(
                f"model {self.plugin.name!r} does not implement predict(); it cannot report "
                "classes and parameters in physical units"
            ) from None
        return [
            self._prediction(m, p, out, i)
            for i, (m, p) in enumerate(zip(measurements, placed, strict=True))
        ]

    def _prediction(
        self, m: Measurement, placed: PlacedPattern, out: Mapping[str, np.ndarray], i: int
    ) -> Prediction:
        names = self.space.class_names
        probs = out.get("class_probabilities")
        row = np.ones(1) if probs is None else np.asarray(probs[i], dtype=np.float64)
        k = int(np.argmax(row))
        values = np.asarray(out["params"], dtype=np.float64)[i]
        sigmas = np.asarray(out["params_sigma"], dtype=np.float64)[i]
        return Prediction(
            source=m.source or "<pattern>",
            label=m.label,
            probabilities={c: float(p) for c, p in zip(names, row, strict=True)},
            predicted_class=names[k],
            parameters={
                p: ParameterEstimate(float(v), float(s), self.space.unit(p))
                for p, v, s in zip(self.target_names, values, sigmas, strict=True)
            },
            free=tuple(self.space.classes[k].free),
            coverage=placed.coverage,
            unit=placed.unit,
            resampled=placed.resampled,
            sigma_note=self.sigma_note,
            pattern=placed.values,
            x=None if self.grid is None else self.grid.values,
            covered=placed.covered,
        )


def predict(
    model: str | os.PathLike[str],
    pattern: PatternLike,
    *,
    stage: str | None = None,
    unit: str | None = None,
    bank: int | str | None = None,
) -> Prediction:
    """One-shot :meth:`Predictor.predict` (loads the model each call; keep a
    :class:`Predictor` for many patterns)."""
    return Predictor(model, stage=stage).predict(pattern, unit=unit, bank=bank)


def plot_prediction(prediction: Prediction, path: str | Path, grid: InputGrid | None) -> Path:
    """A PNG of the pattern on the model's grid, titled with the prediction."""
    from streamal.report.figure import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = prediction.x if prediction.x is not None else np.arange(len(prediction.pattern))
    ax.plot(x, prediction.pattern, lw=0.8, color="tab:blue")
    ax.set_xlabel(f"{grid.name} ({grid.unit})" if grid is not None else "grid point")
    ax.set_ylabel("intensity on the model's grid")
    params = ", ".join(f"{p} = {prediction.parameters[p]}" for p in prediction.free)
    p_top = prediction.probabilities[prediction.predicted_class]
    ax.set_title(
        f"{Path(prediction.source).name}{' ' + prediction.label if prediction.label else ''}: "
        f"{prediction.predicted_class} (p = {p_top:.3f}); {params}",
        fontsize=9,
    )
    fig.tight_layout()
    return save(fig, Path(path))


__all__ = [
    "ParameterEstimate",
    "PatternLike",
    "Prediction",
    "Predictor",
    "RefinementResult",
    "plot_prediction",
    "predict",
    "select_patterns",
]
