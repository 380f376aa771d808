"""The executable simulator on a small C program: output, timeout kill, crash report, MPI."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from pydantic import ValidationError

from streamal.errors import SimulationError
from streamal.simulation.configured import ConfiguredExecutableSimulator
from streamal.simulation.simulator import check_simulator
from tests.executable_program import POINTS, SPACE, compile_peak, reference

FAULTS = {"PEAK_FAULTS": "1"}


@pytest.fixture(scope="module")
def peak(tmp_path_factory) -> Path:
    return compile_peak(tmp_path_factory.mktemp("peak"))


def _sim(peak: Path, tmp_path: Path, **options) -> ConfiguredExecutableSimulator:
    options = {
        "command": [str(peak), "{input}", "{output}"],
        "output_shape": [POINTS],
        "space": SPACE,
        "workdir_root": str(tmp_path / "work"),
        **options,
    }
    return ConfiguredExecutableSimulator(**options)


def _samples(*centres: float) -> tuple[np.ndarray, np.ndarray]:
    classes = np.array([i % 2 for i in range(len(centres))])
    widths = np.where(classes == 0, 0.02, 0.07)
    return classes, np.column_stack([centres, widths])


def _workdir(error: BaseException) -> Path:
    match = re.search(r"workdir (\S+)", str(error))
    assert match, f"the error names no work directory: {error}"
    return Path(match.group(1))


def _pids(workdir: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(workdir.glob("pid-*.txt"))]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_output_equals_the_numpy_reference_and_the_workdir_is_removed(peak, tmp_path):
    classes, params = _samples(0.3, 0.5, 0.61, 0.7)
    out = _sim(peak, tmp_path).simulate(classes, params)
    np.testing.assert_array_equal(out, reference(classes, params))
    assert not any((tmp_path / "work").iterdir()), "a successful run's workdir was kept"


def test_the_program_passes_the_simulator_conformance_check(peak, tmp_path):
    check_simulator(_sim(peak, tmp_path))


def test_template_input_and_per_sample_runs_give_the_same_output(peak, tmp_path):
    template = tmp_path / "in.tmpl"
    template.write_text("{class} {centre:.17g} {width!r}\n")
    classes, params = _samples(0.3, 0.5, 0.6)
    for options in ({"input_template": str(template)}, {"per_sample": True}):
        out = _sim(peak, tmp_path, **options).simulate(classes, params)
        np.testing.assert_array_equal(out, reference(classes, params))


def test_a_subclass_gives_its_space_and_overrides_the_writer_and_parser(peak, tmp_path):
    from streamal.simulation.executable import ExecutableOptions, ExecutableSimulator
    from tests.helpers import peaks_space

    class Shifted(ExecutableSimulator):
        name = "shifted-peak"

        class Options(ExecutableOptions):
            output_file: str = "result.txt"

        def __init__(self, **options):
            super().__init__(**options)
            self.space = peaks_space()
            self.output_shape = (POINTS,)

        def write_input(self, workdir, classes, params):
            rows = [f"{k} {c!r} {w!r}" for k, (c, w) in zip(classes, params.tolist(), strict=True)]
            (workdir / "input.txt").write_text("\n".join(rows) + "\n")

        def read_output(self, workdir, n):
            return super().read_output(workdir, n) + np.float32(1)

    sim = Shifted(command=[str(peak), "{input}", "{output}"], workdir_root=str(tmp_path))
    classes, params = _samples(0.3, 0.5)
    np.testing.assert_array_equal(sim.simulate(classes, params), reference(classes, params) + 1)


def test_a_hanging_program_is_killed_at_its_timeout_and_its_workdir_kept(peak, tmp_path):
    sim = _sim(peak, tmp_path, timeout_s=1.0, env=FAULTS)
    t0 = time.monotonic()
    with pytest.raises(SimulationError, match=r"timed out after 1 s") as info:
        sim.simulate(*_samples(0.5, 0.8))
    assert time.monotonic() - t0 < 4, "the program was not stopped at its timeout"
    message = str(info.value)
    assert "\n" not in message and str(peak) in message and "hanging on centre 0.8" in message
    workdir = _workdir(info.value)
    assert workdir.is_dir() and (workdir / "input.txt").exists()
    assert (workdir / "stderr.txt").read_text().startswith("hanging")
    (pid,) = _pids(workdir)
    assert _gone(pid), f"the hung program (pid {pid}) is still running"


def test_a_crash_names_the_exit_status_and_the_end_of_stderr(peak, tmp_path):
    with pytest.raises(SimulationError) as info:
        _sim(peak, tmp_path, env=FAULTS).simulate(*_samples(0.5, 0.21))
    message = str(info.value)
    assert "exited with status 3" in message
    assert "stderr: step 1 ok | cannot handle centre 0.21" in message
    assert _workdir(info.value).is_dir()


def test_keep_failed_off_removes_the_failed_workdir(peak, tmp_path):
    with pytest.raises(SimulationError, match="removed: keep_failed is off") as info:
        _sim(peak, tmp_path, env=FAULTS, keep_failed=False).simulate(*_samples(0.21))
    assert not _workdir(info.value).exists()


def test_missing_output_is_a_simulation_error_naming_the_file(peak, tmp_path):
    sim = _sim(peak, tmp_path, command=[str(peak), "{input}", "elsewhere.txt"])
    with pytest.raises(SimulationError, match="wrote no output file output.txt"):
        sim.simulate(*_samples(0.5))


def test_cores_per_task_sets_omp_num_threads(peak, tmp_path):
    sim = _sim(peak, tmp_path, cores_per_task=3, keep_workdirs=True)
    assert sim.task_cores == 3
    sim.simulate(*_samples(0.5))
    (workdir,) = (tmp_path / "work").iterdir()
    assert (workdir / "omp.txt").read_text().strip() == "3"


@pytest.mark.mpi
def test_mpi_ranks_start_the_program_under_mpiexec(peak, tmp_path):
    pytest.importorskip("mpi4py")  # the mpi extra: the mpich wheel's mpiexec
    sim = _sim(peak, tmp_path, mpi_ranks=2, cores_per_task=2, keep_workdirs=True)
    assert sim.task_cores == 4
    argv = sim.command_line(tmp_path)
    assert Path(argv[0]).name == "mpiexec" and argv[1:3] == ["-n", "2"]
    classes, params = _samples(0.3, 0.5, 0.6)
    np.testing.assert_array_equal(sim.simulate(classes, params), reference(classes, params))
    (workdir,) = (tmp_path / "work").iterdir()
    assert sorted(p.name for p in workdir.glob("pid-*.txt")) == ["pid-0.txt", "pid-1.txt"]


def test_an_mpi_program_starts_behind_the_sites_launcher_unless_one_is_named(peak, tmp_path):
    from streamal.simulation.context import ChunkContext, simulating

    srun = tmp_path / "srun"
    sim = _sim(peak, tmp_path, mpi_ranks=2, launcher_path=str(srun))
    with simulating(ChunkContext("p0/train/0", None, mpi_launcher="srun")):
        argv = sim.command_line(tmp_path)
    assert argv[0] == str(srun) and "--ntasks" in " ".join(argv), argv
    named = _sim(peak, tmp_path, mpi_ranks=2, launcher="mpiexec", launcher_path="/x/mpiexec")
    with simulating(ChunkContext("p0/train/0", None, mpi_launcher="srun")):
        assert named.command_line(tmp_path)[:3] == ["/x/mpiexec", "-n", "2"]


@pytest.mark.mpi
def test_a_hanging_mpi_program_loses_every_rank_at_its_timeout(peak, tmp_path):
    pytest.importorskip("mpi4py")
    sim = _sim(peak, tmp_path, mpi_ranks=2, timeout_s=1.5, env=FAULTS)
    with pytest.raises(SimulationError, match="timed out after 1.5 s") as info:
        sim.simulate(*_samples(0.8))
    pids = _pids(_workdir(info.value))
    assert len(pids) == 2 and all(_gone(p) for p in pids), "an MPI rank outlived the timeout"


def test_bad_options_are_refused_with_what_is_allowed(peak, tmp_path):
    with pytest.raises(ValidationError, match=r"unknown placeholder\(s\) \['inptu'\]"):
        _sim(peak, tmp_path, command=[str(peak), "{inptu}"])
    template = tmp_path / "t.txt"
    template.write_text("{centre} {height}\n")
    with pytest.raises(ValidationError, match=r"unknown placeholder\(s\) \['height'\]"):
        _sim(peak, tmp_path, input_template=str(template))
    with pytest.raises(ValidationError, match="input_template or input_format, not both"):
        _sim(peak, tmp_path, input_template=str(template), input_format="json")
    with pytest.raises(ValidationError, match="launcher"):
        _sim(peak, tmp_path, launcher="mpirun")


def test_the_executable_plugin_validates_through_the_config(peak, tmp_path):
    from streamal.config import parse_config

    data = {
        "simulator": {
            "name": "executable",
            "options": {"command": str(peak), "output_shape": [POINTS], "space": SPACE},
        },
        "workflow": {"name": "baseline", "phases": [{"samples": 4, "epochs": 1}]},
    }
    parse_config(data, check_node=False)
    data["simulator"]["options"]["timeout_s"] = 0
    with pytest.raises(Exception, match=r"simulator\.options\.timeout_s: must be > 0"):
        parse_config(data, check_node=False)
