"""Simulators that run an external program (Fortran, C, C++, maybe MPI) on files.

Each chunk of samples gets a work directory (``<run dir>/sim-work/<chunk key>.XXXX`` in a
run), where the simulator writes the input file, runs the command and reads the output file.
Subclass :class:`ExecutableSimulator` to give a space, an output shape and, if the defaults do
not fit, your own :meth:`~ExecutableSimulator.write_input` /
:meth:`~ExecutableSimulator.read_output`::

    class MyCode(ExecutableSimulator):
        name = "my-code"

        class Options(ExecutableOptions):
            command: list[str] | str = ["/opt/mycode/bin/mycode", "{input}", "{output}"]
            timeout_s: float | None = 600

        def __init__(self, **options):
            super().__init__(**options)
            self.space = ParameterSpace(...)
            self.output_shape = (512,)

or, with no Python at all, configure the ``executable`` simulator
(:class:`~streamal.simulation.configured.ConfiguredExecutableSimulator`) in the YAML.

Failures (non-zero exit, timeout, missing or unparsable output) raise
:class:`~streamal.errors.SimulationError` naming the command, the status, the end of stderr
and the work directory, which is kept (``keep_failed``); a successful run's is removed unless
``keep_workdirs``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal, TypeVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from streamal.errors import SimulationError, one_line
from streamal.plugins import PluginOptions
from streamal.simulation import program, program_io
from streamal.simulation.context import current_chunk, workdir_prefix
from streamal.simulation.simulator import Simulator

COMMAND_FIELDS = ("input", "output", "workdir", "ranks", "cores")
T = TypeVar("T")


class ExecutableOptions(PluginOptions):
    """How to run the program (the config's ``simulator.options``)."""

    command: list[str] | str = Field(
        description="argv list, or one shell-like string; placeholders {input}, {output}, "
        "{workdir}, {ranks}, {cores}; a relative program path is taken from the directory "
        "streamal starts in"
    )
    input_template: str | None = Field(
        None,
        description="path of a template file: Python format text with {name} per parameter "
        "and {class}, {class_name}, {sample}, {n}; rendered once per sample",
    )
    input_format: program_io.InputFormat = Field(
        "table", description="default input writer when there is no template: table, json, npy"
    )
    input_file: str | None = Field(None, description="input file name; default by format")
    output_file: str = Field(
        "output.txt", description="output file name (.npy or text); {sample}: one per sample"
    )
    per_sample: bool = Field(False, description="one program run and work directory per sample")
    workdir_root: str | None = Field(
        None, description="where work directories go; default <run dir>/sim-work, else $TMPDIR"
    )
    timeout_s: float | None = Field(
        None, gt=0, description="kill a program run (its whole process group) after this long"
    )
    cores_per_task: int = Field(
        1, gt=0, description="OMP_NUM_THREADS of the program; the sim worker pins this many cores"
    )
    mpi_ranks: int | None = Field(None, gt=0, description="start the program as N MPI ranks")
    launcher: Literal["mpiexec", "srun", "aprun"] | None = Field(
        None,
        description="MPI launcher for mpi_ranks (Parsl's prefix for it); default: the site's "
        "(local: mpiexec)",
    )
    launcher_options: str = Field("", description="extra launcher options, e.g. binding")
    launcher_path: str | None = Field(
        None, description="launcher executable; default: the mpich wheel's mpiexec, else PATH"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    keep_failed: bool = Field(True, description="keep the work directory of a failed run")
    keep_workdirs: bool = Field(False, description="keep work directories of successful runs")

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, command: list[str] | str) -> list[str] | str:
        argv = shlex.split(command) if isinstance(command, str) else command
        if not argv or not argv[0]:
            raise ValueError("the command is empty; give the program and its arguments")
        for arg in argv:
            unknown = sorted(program_io.template_fields(arg) - set(COMMAND_FIELDS))
            if unknown:
                raise ValueError(
                    f"unknown placeholder(s) {unknown} in {arg!r}; allowed: "
                    + ", ".join(f"{{{f}}}" for f in COMMAND_FIELDS)
                )
        return command

    @field_validator("input_template")
    @classmethod
    def _template_exists(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"template file {path!r} not found (from {os.getcwd()})")
        return path

    @field_validator("output_file")
    @classmethod
    def _only_sample_placeholder(cls, name: str) -> str:
        if program_io.template_fields(name) - {"sample"}:
            raise ValueError(f"{name!r}: the only placeholder allowed is {{sample}}")
        return name

    @model_validator(mode="after")
    def _one_input_writer(self) -> ExecutableOptions:
        if self.input_template is not None and "input_format" in self.model_fields_set:
            raise ValueError("give input_template or input_format, not both")
        return self


class ExecutableSimulator(Simulator):
    """Runs an external program per chunk (or per sample) in a work directory.

    Subclasses set :attr:`space` and :attr:`output_shape` (after calling this constructor) and
    may override :meth:`write_input` and :meth:`read_output`.
    """

    Options: ClassVar[type[ExecutableOptions]] = ExecutableOptions

    def __init__(self, **options: object) -> None:
        self.opts = self.Options.model_validate(options)
        self._options = dict(options)
        self.task_cores = self.opts.cores_per_task * (self.opts.mpi_ranks or 1)
        path = self.opts.input_template
        self._template = Path(path).read_text() if path is not None else None
        fmt = "template" if path is not None else self.opts.input_format
        self.input_file = self.opts.input_file or program_io.DEFAULT_INPUT_FILE[fmt]

    # -- what a subclass may override ---------------------------------------------------------
    def write_input(self, workdir: Path, classes: np.ndarray, params: np.ndarray) -> None:
        """Write the input file(s) of one program run into ``workdir``."""
        path = workdir / self.input_file
        if self._template is None:
            program_io.write_default_input(
                path, self.opts.input_format, self.space, classes, params
            )
            return
        program_io.check_template(self._template, self.space, f"{self.name}: input_template")
        path.write_text(program_io.render_template(self._template, self.space, classes, params))

    def read_output(self, workdir: Path, n: int) -> np.ndarray:
        """The ``(n, *output_shape)`` outputs of one program run in ``workdir``."""
        return program_io.read_default_output(
            workdir, self.opts.output_file, n, tuple(self.output_shape)
        )

    def launcher(self) -> str:
        """The MPI launcher: the option, else the run's site's, else ``mpiexec``."""
        chunk = current_chunk()
        return self.opts.launcher or (chunk.mpi_launcher if chunk else None) or "mpiexec"

    def command_line(self, workdir: Path) -> list[str]:
        """The argv of one program run in ``workdir`` (launcher prefix included)."""
        o = self.opts
        argv = shlex.split(o.command) if isinstance(o.command, str) else list(o.command)
        fields = {
            "input": str(workdir / self.input_file),
            "output": str(workdir / o.output_file),
            "workdir": str(workdir),
            "ranks": o.mpi_ranks or 1,
            "cores": o.cores_per_task,
        }
        argv = [arg.format(**fields) for arg in argv]
        if os.sep in argv[0] and not os.path.isabs(argv[0]):
            argv[0] = os.path.abspath(argv[0])  # the program runs inside its work directory
        if o.mpi_ranks:
            argv = [
                *program.launch_prefix(
                    self.launcher(), o.mpi_ranks, options=o.launcher_options, path=o.launcher_path
                ),
                *argv,
            ]
        return argv

    # -- the run ------------------------------------------------------------------------------
    def _simulate(self, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        workdir = self._new_workdir()
        try:
            if self.opts.per_sample:
                runs = [
                    self._run_once(workdir / f"sample-{j}", classes[j : j + 1], params[j : j + 1])
                    for j in range(len(classes))
                ]
                out = np.concatenate(runs)
            else:
                out = self._run_once(workdir, classes, params)
        except SimulationError as exc:
            if self.opts.keep_failed:
                raise
            shutil.rmtree(workdir, ignore_errors=True)
            raise SimulationError(f"{exc} (removed: keep_failed is off)") from None
        except BaseException:  # cancelled, interrupted: nothing to keep
            if not self.opts.keep_failed:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        if not self.opts.keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
        return out

    def _new_workdir(self) -> Path:
        ctx = current_chunk()
        root = self.opts.workdir_root or (ctx.workdir_root if ctx else None)
        root_path = Path(root) if root else Path(tempfile.gettempdir()) / "streamal-work"
        root_path.mkdir(parents=True, exist_ok=True)
        prefix = workdir_prefix(ctx.key if ctx else (self.name or type(self).__name__))
        return Path(tempfile.mkdtemp(prefix=prefix, dir=root_path)).resolve()

    def _run_once(self, workdir: Path, classes: np.ndarray, params: np.ndarray) -> np.ndarray:
        workdir.mkdir(parents=True, exist_ok=True)
        argv = self.command_line(workdir)
        command = shlex.join(argv)
        self._step("write_input", workdir, command, self.write_input, workdir, classes, params)
        program.run_program(
            argv,
            workdir=workdir,
            env=program.program_environment(self.opts.env, self.opts.cores_per_task),
            timeout_s=self.opts.timeout_s,
            what=self.name,
        )
        return self._step("read_output", workdir, command, self.read_output, workdir, len(classes))

    def _step(
        self, step: str, workdir: Path, command: str, fn: Callable[..., T], *args: object
    ) -> T:
        """``fn(*args)``; any error becomes one SimulationError line naming the run."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - a user's writer or parser: name it
            what = one_line(exc)
            if not isinstance(exc, SimulationError):
                what = f"{type(exc).__name__}: {what}"
            raise SimulationError(
                f"{self.name}: {step} for command {command!r} failed: {what}; workdir {workdir}"
            ) from None
