"""Acceptance, small: a diffraction-cnn trained for a few epochs predicts the same from one
simulated pattern saved as GSAS, x y e text and Mantid NeXus; per-parameter variance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamal.cli import main
from streamal.inference import Predictor
from streamal.inference.measurement import edges_from_centres
from streamal.train.checkpoint import (
    MODEL_FILE,
    model_description,
    save_checkpoint,
    write_model_description,
)
from streamal_diffraction.measurements import write_gsas, write_mantid_nexus, write_xye
from streamal_diffraction.model import DiffractionCnn

SHARED_NOTE = (
    "one shared variance: σ per parameter is the shared σ scaled by each parameter's range"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_tiny_run) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("predict") / "run", seed=0)


def test_model_json_has_the_tof_grid_and_the_simulator(run_dir: Path, sim) -> None:
    d = json.loads((run_dir / "checkpoints" / "T0" / MODEL_FILE).read_text())
    assert d["input"]["axis"] == sim.input_axis()
    assert d["simulator"] == {"name": "diffraction-tof", "options": {"preset": "e1"}}
    assert d["input"]["encoding"].startswith("each pattern's SNIP background (half-window 20")
    assert d["input"]["encoding"].endswith(
        "min-max scaled to [0, 1]: (y − min y) / (max y − min y)"
    )
    assert d["model"]["options"]["background"] == "snip"  # the defaults recorded too
    assert d["output"]["sigma"] == SHARED_NOTE and d["metrics"]["test"]["accuracy"] >= 0
    assert d["targets"]["names"] == ["a", "c", "alpha"] and d["targets"]["units"][0] == "Å"


def test_same_answer_from_gsas_text_and_nexus(run_dir: Path, sim, tmp_path: Path, capsys) -> None:
    params = sim.space.complete(1, np.array([[3.9, 4.1]]))  # tetragonal
    y = sim.simulate(np.array([1]), params)[0].astype(np.float64)
    tof = sim.grid.points()
    files = [
        write_gsas(tmp_path / "p.gsa", edges_from_centres(tof), y, binning="SLOG"),
        write_xye(tmp_path / "p.xye", tof, y, np.sqrt(y)),
        write_mantid_nexus(tmp_path / "p.nxs", tof, y),
    ]
    predictor = Predictor(run_dir)
    results = [predictor.predict(f) for f in files]
    first = results[0]
    for r in results:
        assert r.unit == "tof" and r.coverage == 1.0 and not r.resampled
        assert list(r.probabilities) == ["trigonal", "tetragonal", "cubic"]
        assert np.allclose(
            list(r.probabilities.values()), list(first.probabilities.values()), atol=1e-5
        )
        for p, est in r.parameters.items():
            assert est.value == pytest.approx(first.parameters[p].value, abs=1e-5)
            assert est.sigma == pytest.approx(first.parameters[p].sigma, abs=1e-5)
    lo, hi = 3.5 - 1.0, 4.5 + 1.0  # a roughly trained model: at least near the space
    assert all(lo < first.parameters[p].value < hi for p in ("a", "c"))
    cubic = sim.simulate(np.array([2]), sim.space.complete(2, np.array([[4.3]])))[0]
    other = predictor.predict(np.stack([tof, cubic]))  # the agreement is not a constant model's
    gap = max(abs(other.probabilities[c] - first.probabilities[c]) for c in first.probabilities)
    assert gap > 1e-3
    # the command line says the same, and says how σ is made
    code = main(["predict", str(run_dir), *map(str, files), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    got = json.loads(out)["predictions"]
    for g, r in zip(got, results, strict=True):
        assert g["probabilities"] == pytest.approx(r.probabilities, abs=1e-12)
    code = main(["predict", str(run_dir), str(files[0])])
    out, _ = capsys.readouterr()
    assert code == 0 and SHARED_NOTE in out and "class: " in out


def test_per_parameter_variance_gives_each_parameter_its_sigma(sim, tiny_spec, tmp_path) -> None:
    import torch

    from streamal.train.model_checks import check_model

    check_model(DiffractionCnn, sim.space, (512,), options={"variance": "per_parameter"})
    spec = tiny_spec(tmp_path)
    spec = tiny_spec(tmp_path, model_options={**spec.model_options, "variance": "per_parameter"})
    plugin = DiffractionCnn(sim.space, sim.output_shape, **spec.model_options)
    assert plugin.uncertainty_note is None
    torch.manual_seed(0)
    net = plugin.build()
    with torch.no_grad():  # distinct log σ² per target
        net.regress.bias[3:] = torch.tensor([-4.0, -2.0, 0.0])
    # an untrained model saved as the trainer saves one
    folder = tmp_path / "checkpoints" / "T0"
    folder.mkdir(parents=True)
    save_checkpoint(folder / "best.pt", model=net.state_dict(), epoch=0, metrics={})
    write_model_description(folder, model_description(spec, plugin, epoch=0, val={}))
    y = sim.simulate(np.array([2]), sim.space.complete(2, np.array([[4.0]])))[0]
    result = Predictor(tmp_path).predict(np.stack([sim.grid.points(), y]))
    assert result.sigma_note is None
    sigma = np.array([result.parameters[p].sigma for p in ("a", "c", "alpha")])
    scaled = sigma / (plugin.high - plugin.low)  # back to √σ² of the scaled targets
    ratios = scaled[1:] / scaled[:-1]
    assert np.allclose(ratios, np.exp(1.0), rtol=0.5)  # log σ² two apart: σ e times apart
