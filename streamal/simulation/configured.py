"""The ``executable`` simulator: an external program plugged in from the config alone.

Everything a subclass of :class:`~streamal.simulation.executable.ExecutableSimulator` would
say in Python is an option here, the parameter space and output shape included::

    simulator:
      name: executable
      chunk_size: 16
      options:
        command: ["./peak", "{input}", "{output}"]   # or one string: "./peak {input} {output}"
        output_shape: [64]
        timeout_s: 30
        space:
          classes:
            - name: narrow
              bounds: {centre: [0.2, 0.8]}
              tied: {width: 0.02}
            - name: wide
              bounds: {centre: [0.2, 0.8], width: [0.05, 0.1]}
"""

from __future__ import annotations

from pydantic import Field, model_validator

from streamal.data.space import ClassSpace, ParameterSpace
from streamal.errors import ParameterError, SimulationError
from streamal.plugins import PluginOptions
from streamal.simulation import program_io
from streamal.simulation.executable import ExecutableOptions, ExecutableSimulator


class ClassOptions(PluginOptions):
    """One class of the space: its free parameters' bounds and its tied parameters."""

    name: str = Field(min_length=1, description="class name; its label is its position in classes")
    bounds: dict[str, tuple[float, float]] = Field(description="free parameter -> [low, high]")
    tied: dict[str, str | float] = Field(
        default_factory=dict, description="parameter -> a free parameter's name or a constant"
    )
    min_separation: list[tuple[str, str, float]] = Field(
        default_factory=list, description="[p, q, eps]: |p - q| must exceed eps"
    )


class SpaceOptions(PluginOptions):
    """A parameter space (see :meth:`~streamal.data.space.ParameterSpace.from_dict`)."""

    param_names: list[str] | None = Field(
        None, description="parameter order; default: the order the classes first name them"
    )
    classes: list[ClassOptions] = Field(min_length=1, description="the classes, in label order")
    units: dict[str, str] = Field(
        default_factory=dict, description="parameter -> unit, for metric names and reports"
    )

    def build(self) -> ParameterSpace:
        """The :class:`ParameterSpace` these options describe.

        Raises:
            ParameterError: The classes or names are inconsistent (the message says how).
        """
        names = self.param_names
        if names is None:
            names = list(dict.fromkeys(p for c in self.classes for p in (*c.bounds, *c.tied)))
        classes = tuple(
            ClassSpace(
                c.name,
                dict(c.bounds),
                dict(c.tied),
                {(p, q): eps for p, q, eps in c.min_separation},
            )
            for c in self.classes
        )
        return ParameterSpace(tuple(names), classes, dict(self.units))


class ConfiguredExecutableOptions(ExecutableOptions):
    """:class:`ExecutableOptions` plus the space and the shape of one output sample."""

    space: SpaceOptions = Field(
        description="the parameter space: its classes, their bounds and tied parameters"
    )
    output_shape: list[int] = Field(min_length=1, description="shape of one output sample")

    @model_validator(mode="after")
    def _consistent(self) -> ConfiguredExecutableOptions:
        if any(d <= 0 for d in self.output_shape):
            raise ValueError(f"output_shape {self.output_shape}: every size must be > 0")
        try:
            space = self.space.build()
        except ParameterError as exc:
            raise ValueError(f"space: {exc}") from None
        if self.input_template is not None:
            with open(self.input_template) as fh:
                text = fh.read()
            try:
                program_io.check_template(text, space, f"input_template {self.input_template!r}")
            except SimulationError as exc:
                raise ValueError(str(exc)) from None
        return self


class ConfiguredExecutableSimulator(ExecutableSimulator):
    """An external program described entirely by its options (entry point ``executable``)."""

    name = "executable"
    Options = ConfiguredExecutableOptions

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.space = self.opts.space.build()
        self.output_shape = tuple(self.opts.output_shape)
