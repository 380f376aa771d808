"""The simulator plugin interface and its conformance check.

A simulator is one class registered under the ``streamal.simulators`` entry-point group::

    class MySimulator(Simulator):
        name = "my-sim"

        def __init__(self, **options):
            self.space = ParameterSpace(...)
            self.output_shape = (1024,)

        def _simulate(self, classes, params):
            return np.zeros((len(classes), 1024), np.float32)

:meth:`Simulator.simulate` checks the inputs against :attr:`space` (raising
:class:`~streamal.errors.ParameterError` that names the sample and parameter) and the output
(shape, float32, finite) before returning it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import ParameterError, SimulationError


class Simulator(ABC):
    """Maps ``(class index, full parameter vector)`` samples to float32 arrays.

    Attributes:
        name: Entry-point name.
        space: Parameter space the simulator accepts.
        output_shape: Shape of one simulated sample.
        task_cores: Cores one ``simulate`` call keeps busy (threads or ranks it starts); the
            ``sim`` pool gives each worker that many pinned cores.
    """

    name: ClassVar[str] = ""
    space: ParameterSpace
    output_shape: tuple[int, ...]
    task_cores: int = 1

    def simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Simulate ``n`` samples.

        Args:
            classes: ``(n,)`` integer class indices into ``space.classes``.
            params: ``(n, len(space.param_names))`` full parameter vectors.

        Returns:
            ``(n, *output_shape)`` float32 array, every value finite.

        Raises:
            ParameterError: A sample is outside the space (the message names it).
            SimulationError: The simulator produced a wrong shape, dtype or non-finite value.
        """
        classes = np.asarray(classes, dtype=np.int64)
        params = np.asarray(params, dtype=np.float64)
        self.space.check(classes, params)
        out = self._simulate(classes, params)
        expected = (len(classes), *self.output_shape)
        if not isinstance(out, np.ndarray) or out.shape != expected:
            got = getattr(out, "shape", type(out).__name__)
            raise SimulationError(f"{self.name}: output shape {got}, expected {expected}")
        if out.dtype != np.float32:
            raise SimulationError(f"{self.name}: output dtype {out.dtype}, expected float32")
        bad = ~np.isfinite(out).reshape(len(out), -1).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise SimulationError(
                f"{self.name}: sample {first} (params {params[first].tolist()}) has "
                f"non-finite output ({int(bad.sum())} of {len(out)} samples)"
            )
        return out

    @abstractmethod
    def _simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Simulate already-checked samples; return ``(n, *output_shape)`` float32."""

    def options(self) -> dict[str, Any]:
        """Constructor options, so a worker can rebuild the simulator."""
        return dict(getattr(self, "_options", {}))

    def input_axis(self) -> dict[str, Any] | None:
        """The x axis of an output sample, so measured data can be put on it (optional).

        Recorded in each trained model's ``model.json``; ``streamal predict`` rebins a
        measured pattern onto it (:mod:`streamal.inference`).

        Returns:
            ``None`` (the default: no physical axis; a measured pattern must then have
            exactly ``output_shape`` values), or plain JSON: ``name`` (``"tof"``), ``unit``
            (``"µs"``), ``values`` (the ``output_shape[-1]`` increasing axis values) and
            optionally ``conversions``, ``{other axis: {"unit": ..., "polynomial": [c0, c1,
            ...]}}``: a value ``u`` on the other axis is ``Σ c_k·u^k`` on this one, increasing
            over the axis's range (d-spacing → ToF: ``[Zero, difC, difA]``).
        """
        return None

    def refine(self, pattern: np.ndarray, prediction: Any, **options: Any) -> list[Any] | None:
        """Least-squares refinement of a prediction with this simulator as forward model
        (optional; ``streamal predict --refine``, :meth:`streamal.inference.Predictor.refine`).

        Args:
            pattern: ``output_shape`` the measured pattern on this simulator's grid.
            prediction: What a trained model says about it
                (:class:`streamal.inference.Prediction`: ``probabilities``, ``parameters``).
            **options: Simulator-specific settings of the fit.

        Returns:
            ``None`` (the default: not offered), or the fits, best first, each with
            ``to_dict()`` (plain JSON), ``describe()`` (one line) and ``plot(path)`` (writes a
            PNG, returns its path).

        Raises:
            ParameterError: The pattern or the prediction does not fit this simulator.
        """
        return None


def check_simulator(sim: Simulator, *, n: int = 4, seed: int = 0) -> None:
    """Conformance check every simulator plugin must pass.

    Checks shapes, dtype, determinism, that each class simulates, and that bad input
    (out of bounds, NaN, wrong class index, wrong width) raises :class:`ParameterError`.

    Raises:
        AssertionError: With a message saying which property failed.
    """
    rng = np.random.default_rng(seed)
    space = sim.space
    assert isinstance(space, ParameterSpace), "sim.space must be a ParameterSpace"
    assert sim.name, "the simulator class needs a non-empty `name`"
    assert all(int(d) > 0 for d in sim.output_shape), "output_shape must be positive"
    for k, c in enumerate(space.classes):
        free = rng.uniform(c.low, c.high, size=(n, len(c.free)))
        params = space.complete(k, free)
        classes = np.full(n, k)
        try:
            space.check(classes, params)
        except ParameterError:
            continue  # a random draw may hit a separation constraint; skip this class draw
        a = sim.simulate(classes, params)
        b = sim.simulate(classes, params)
        assert a.shape == (n, *sim.output_shape), f"class {c.name}: shape {a.shape}"
        assert a.dtype == np.float32, f"class {c.name}: dtype {a.dtype}"
        assert np.array_equal(a, b), f"class {c.name}: two calls on the same input differ"
        one = sim.simulate(classes[:1], params[:1])
        assert np.allclose(one[0], a[0], rtol=1e-5, atol=1e-6 * float(np.abs(a[0]).max() + 1)), (
            f"class {c.name}: a sample depends on the other samples in its batch"
        )
        bad_inputs = {
            "NaN parameter": params[:1].copy(),
            "parameter above its bound": params[:1].copy(),
        }
        bad_inputs["NaN parameter"][0, space.free_indices(k)[0]] = np.nan
        bad_inputs["parameter above its bound"][0, space.free_indices(k)[0]] = c.high[0] + 1e3
        for what, bad in bad_inputs.items():
            try:
                sim.simulate(classes[:1], bad)
            except ParameterError:
                pass
            else:
                raise AssertionError(f"class {c.name}: {what} did not raise ParameterError")
    try:
        sim.simulate(np.array([len(space.classes)]), np.zeros((1, len(space.param_names))))
    except ParameterError:
        pass
    else:
        raise AssertionError("an unknown class index did not raise ParameterError")
