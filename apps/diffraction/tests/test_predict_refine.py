"""``streamal predict --refine``: a roughly trained diffraction-cnn reads a noisy held-out
pattern (Poisson counts, zero shift, background) and the refinement with the training
simulator recovers the true cell; a simulator without refinement is one error line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamal.cli import main
from streamal.inference import Predictor
from streamal.train.checkpoint import MODEL_FILE
from streamal_diffraction import TofDiffractionSimulator
from streamal_diffraction.measurements import write_xye
from streamal_diffraction.refine import ClassPattern

# Tetragonal, Å: a class this rough classifier ranks in its top two, so it is refined whether or
# not it comes first; the cell it predicts is off by several peak widths.
TRUE = {"a": 3.95, "c": 4.08}
ZERO = 4.0  # µs on top of the instrument's Zero


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_tiny_run) -> Path:
    """A run with one stage T0 of diffraction-cnn, trained for 20 epochs on 90 patterns."""
    run = tmp_path_factory.mktemp("refine") / "run"
    return train_tiny_run(run, seed=1, epochs=20, learning_rate=1e-2)


@pytest.fixture(scope="module")
def measured(tmp_path_factory, sim: TofDiffractionSimulator) -> Path:
    """A held-out tetragonal pattern as a diffractometer counts it, as ToF x y e text."""
    pattern = ClassPattern(sim, "tetragonal").pattern([TRUE["a"], TRUE["c"]], ZERO)
    tof = sim.grid.points()
    x = (tof - tof[0]) / (tof[-1] - tof[0])
    background = 300.0 + 200.0 * x - 150.0 * x**2
    rng = np.random.default_rng(7)
    y = rng.poisson(3e4 * pattern / pattern.max() + background).astype(np.float64)
    return write_xye(tmp_path_factory.mktemp("measured") / "held-out.xye", tof, y, np.sqrt(y))


def test_refine_recovers_the_true_cell(run_dir: Path, measured: Path, tmp_path: Path, capsys):
    plots = tmp_path / "plots"
    code = main(
        ["predict", str(run_dir), str(measured), "--refine", "--json", "--plot", str(plots)]
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    (prediction,) = json.loads(out)["predictions"]
    fits = {f["class"]: f for f in prediction["refinement"]}
    assert "tetragonal" in fits  # refined whether or not the classifier put it first
    fit = fits["tetragonal"]
    assert fit["converged"] and fit["gof"] < 1.5
    for p, value in TRUE.items():
        assert fit["cell"][p] == pytest.approx(value, abs=1e-3)
        assert 0.0 < fit["cell_esd"][p] < 1e-3
    assert fit["zero_shift_us"] == pytest.approx(ZERO, abs=1.0)
    assert Path(fit["plot"]).is_file() and Path(fit["plot"]).stat().st_size > 10_000
    assert (plots / "held-out.predict.png").is_file()
    # the terminal says the same, one line per class refined
    assert main(["predict", str(run_dir), str(measured), "--refine"]) == 0
    out, _ = capsys.readouterr()
    assert "  refined tetragonal" in out and "R_wp" in out and "GoF" in out
    # and the Python API
    predictor = Predictor(run_dir)
    best = predictor.refine(predictor.predict(measured))
    assert [f.to_dict()["class"] for f in best] == list(fits)


def test_a_simulator_without_refinement_is_one_error_line(run_dir: Path, tmp_path: Path, capsys):
    model = tmp_path / "T0"
    shutil.copytree(run_dir / "checkpoints" / "T0", model)
    d = json.loads((model / MODEL_FILE).read_text())
    d["simulator"] = {"name": "tests.helpers:PeaksSimulator", "options": {}}
    (model / MODEL_FILE).write_text(json.dumps(d))
    pattern = np.stack([np.asarray(d["input"]["axis"]["values"]), np.ones(d["input"]["shape"])])
    np.save(tmp_path / "flat.npy", pattern)
    code = main(["predict", str(model), str(tmp_path / "flat.npy"), "--refine"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert (
        err
        == f"error: {model}: the simulator 'tests.helpers:PeaksSimulator' offers no refinement\n"
    )
