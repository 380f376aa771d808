"""The README's "Plugging in" guide: every example it shows is a file under ``examples/`` that
these tests (and the per-kind tests they name) run, and the README shows it as it is."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from streamal.simulation.simulator import check_simulator

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(\w+)\n(# (examples/\S+)\n)(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    guide = text[text.index("## Plugging in") : text.index("## Reliability")]
    return [(m.group(3), m.group(4)) for m in BLOCK.finditer(guide)]


def test_the_guide_shows_an_example_of_every_plugin_kind():
    shown = {path for path, _ in _blocks()}
    assert shown == {
        "examples/simulators/peak_simulator.py",
        "examples/executable/peak.yaml",
        "examples/models/linear_model.py",
        "examples/policies/topk_policy.py",
        "examples/sites/generic_slurm.py",
    }


@pytest.mark.parametrize("path, shown", _blocks(), ids=lambda v: str(v)[:40])
def test_the_readme_shows_each_example_as_it_is_in_its_file(path, shown):
    assert shown in (ROOT / path).read_text(), f"README's {path} differs from the file"


def _import(folder: str, module: str):
    sys.path.insert(0, str(ROOT / "examples" / folder))
    try:
        return __import__(module)
    finally:
        sys.path.pop(0)


def test_the_python_simulator_example_passes_check_simulator():
    check_simulator(_import("simulators", "peak_simulator").PeakSimulator(64))


def test_the_executable_example_compiles_and_passes_check_simulator(tmp_path):
    """The C program of the guide, built as it says, behind the guide's YAML options."""
    from streamal import plugins
    from streamal.config import parse_config

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "peak"
    subprocess.run(
        [compiler, "-O2", "-o", str(exe), str(ROOT / "examples/executable/peak.c"), "-lm"],
        check=True,
    )
    data = yaml.safe_load((ROOT / "examples/executable/peak.yaml").read_text())
    options = data["simulator"]["options"]
    options["command"] = options["command"].replace("examples/executable/peak", str(exe))
    options["workdir_root"] = str(tmp_path / "work")
    cfg = parse_config(data, check_node=False)  # `validate` accepts it
    sim = plugins.load("simulators", cfg.simulator.name)(**cfg.simulator.options)
    check_simulator(sim)
    out = sim.simulate(np.array([1]), np.array([[0.5, 0.07]]))
    x = np.linspace(0, 1, 256)
    expected = np.exp(-0.5 * ((x - 0.5) / 0.07) ** 2)
    np.testing.assert_allclose(out[0], expected, rtol=1e-6, atol=1e-7)
