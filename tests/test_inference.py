"""Self-describing checkpoints (``model.json`` beside a ``weights_only`` ``best.pt``) and
``streamal predict`` / :class:`streamal.inference.Predictor` on a tiny generic-mlp run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import streamal
from streamal.cli import main
from streamal.inference import InputGrid, Measurement, PatternError, Predictor, place_on_grid
from streamal.inference.grid import rebin
from streamal.train.checkpoint import MODEL_FILE, load_checkpoint, save_checkpoint
from tests.helpers import PeaksSimulator, train_splits, write_splits

X = np.linspace(0.0, 1.0, 64)
AXIS = {
    "name": "x",
    "unit": "m",
    "values": X.tolist(),
    "aliases": ["metres"],
    "conversions": {"cm": {"unit": "cm", "terms": [[1, 0.01]]}},
}


def _rows(sim, rng, n):
    classes = rng.integers(0, 2, n)
    params = np.stack(
        [
            sim.space.complete(int(k), [rng.uniform(0.2, 0.8)] + ([rng.uniform(0.05, 0.1)] * k))
            for k in classes
        ]
    ).reshape(n, -1)
    return classes, params


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory with one trained stage T0 of generic-mlp on 64-point peaks."""
    run = tmp_path_factory.mktemp("inference") / "run"
    sim = PeaksSimulator()
    rng = np.random.default_rng(0)
    draws = {split: _rows(sim, rng, n) for split, n in (("train", 160), ("val", 40), ("test", 40))}
    rows = write_splits(run / "store.h5", sim, draws)
    train_splits(
        run / "store.h5",
        sim,
        rows,
        run / "checkpoints" / "T0",
        "generic-mlp",
        {"hidden": [32]},
        6,
        metadata={
            "run": {"name": "peaks", "fingerprint": "x"},
            "simulator": {"name": "tests.helpers:PeaksSimulator", "options": {}},
            "input_axis": AXIS,
        },
    )
    return run


def _peak(centre: float, width: float = 0.02) -> np.ndarray:
    return np.exp(-0.5 * ((X - centre) / width) ** 2)


def test_model_json_describes_the_checkpoint(run_dir: Path) -> None:
    stage = run_dir / "checkpoints" / "T0"
    d = json.loads((stage / MODEL_FILE).read_text())
    assert d["format"] == "streamal-model" and d["format_version"] == 1
    assert d["streamal_version"] and d["stage"] == "T0" and d["checkpoint"] == "best.pt"
    # Every option, defaults filled in: a later change of a default cannot change how it reads.
    from streamal.train.generic import GenericMlp

    assert d["model"] == {
        "name": "generic-mlp",
        "options": GenericMlp.Options(hidden=[32]).model_dump(mode="json"),
    }
    assert d["model"]["options"]["hidden"] == [32] and len(d["model"]["options"]) > 1
    assert d["space"] == PeaksSimulator().space.to_dict()
    assert d["targets"]["names"] == ["centre", "width"]
    assert d["input"]["shape"] == [64] and d["input"]["axis"] == AXIS
    assert "standardis" in d["input"]["encoding"]  # from encode_inputs' docstring
    assert d["simulator"]["name"] == "tests.helpers:PeaksSimulator"
    assert set(d["metrics"]["val"]) >= {"accuracy", "mse"}
    assert set(d["metrics"]["test"]) >= {"accuracy", "mse"}  # rewritten after the test split
    # best.pt: tensors and plain values only, so weights_only loads it
    import torch

    state = torch.load(stage / "best.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == d["epoch"] and state["stage"] == "T0"
    assert state["model_name"] == "generic-mlp" and state["metrics"] == d["metrics"]["val"]


def test_save_checkpoint_keeps_only_what_weights_only_loads(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", epoch=np.int64(3), metrics={"a": np.float32(0.5)})
    state = load_checkpoint(path)
    assert state == {"epoch": 3, "metrics": {"a": 0.5}} and type(state["epoch"]) is int
    with pytest.raises(TypeError, match=r"metrics\.bad is a object"):
        save_checkpoint(tmp_path / "d.pt", metrics={"bad": object()})


def test_predictor_matches_the_network_and_reads_files(run_dir: Path, tmp_path: Path) -> None:
    import torch

    predictor = Predictor(run_dir)
    assert predictor.stage == "T0" and predictor.grid is not None
    y = _peak(0.4)
    with torch.no_grad():
        output = predictor.network(torch.from_numpy(predictor.plugin.encode_inputs(y[None])))
    direct = predictor.plugin.predict(output)
    result = predictor.predict(y)
    assert result.predicted_class in ("narrow", "wide") and result.resampled is False
    assert np.isclose(sum(result.probabilities.values()), 1.0)
    assert np.allclose(list(result.probabilities.values()), direct["class_probabilities"][0])
    assert result.parameters["centre"].value == pytest.approx(direct["params"][0, 0])
    assert result.parameters["centre"].sigma == pytest.approx(direct["params_sigma"][0, 0])
    assert result.sigma_note is None and set(result.free) <= {"centre", "width"}
    # the same pattern from a text file in another unit (cm), and on a finer grid (rebinned)
    text = tmp_path / "p.xy"
    text.write_text(
        "# x_unit: cm\n" + "\n".join(f"{x * 100} {v}" for x, v in zip(X, y, strict=True))
    )
    from_text = predictor.predict(text)
    assert from_text.unit == "cm" and from_text.resampled is False
    assert from_text.probabilities == pytest.approx(result.probabilities, abs=1e-6)
    fine = np.linspace(0, 1, 64 * 4 - 3)
    rebinned = predictor.predict(np.stack([fine, np.exp(-0.5 * ((fine - 0.4) / 0.02) ** 2)]))
    assert rebinned.resampled and 0.98 < rebinned.coverage < 1.0  # half end bins
    assert streamal.predict(run_dir, y, stage="T0").to_dict() == result.to_dict()
    assert "centre = " in result.describe()


def test_model_without_model_json_uses_its_spec(run_dir: Path, tmp_path: Path) -> None:
    stage = tmp_path / "T0"
    shutil.copytree(run_dir / "checkpoints" / "T0", stage)
    (stage / MODEL_FILE).unlink()
    predictor = Predictor(stage / "best.pt")
    assert predictor.grid is None
    assert predictor.predict(_peak(0.5)).coverage == 1.0
    with pytest.raises(PatternError, match="exactly 64 values"):
        predictor.predict(np.stack([X[:10], X[:10]]))


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_predicts_text_and_json(run_dir: Path, tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a.xye", tmp_path / "b.npy"
    a.write_text("\n".join(f"{x:.6f} {v:.8f} 0.1" for x, v in zip(X, _peak(0.3), strict=True)))
    np.save(b, _peak(0.7, 0.08))
    code, out, err = _cli(capsys, run_dir, a, b, "--json")
    assert code == 0 and err == ""
    got = json.loads(out)
    assert got["stage"] == "T0" and [p["source"] for p in got["predictions"]] == [str(a), str(b)]
    assert set(got["predictions"][0]["parameters"]["centre"]) >= {"value", "sigma", "unit"}
    code, out, _ = _cli(capsys, run_dir, a, "--stage", "T0", "--plot", tmp_path / "plots")
    assert code == 0 and "class: " in out and "centre = " in out
    assert (tmp_path / "plots" / "a.predict.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}", "{good}"], "{missing}: no such run directory or checkpoint"),
        (["{empty}", "{good}"], "{empty}: not a run directory"),
        (["{run}", "--stage", "T9", "{good}"], "no stage 'T9'"),
        (["{run}", "{nofile}"], "{nofile}: cannot read (No such file or directory)"),
        (["{run}", "{short}"], "{short}: the data span x 0–0.0952381, 11% of the model's grid"),
        (["{run}", "{words}"], "{words}: line 2 is not numbers"),
        (["{run}", "{weird}"], "{weird}: no reader for '.zzz'"),
        (["{run}", "--unit", "feet", "{good}"], "--unit feet: not an x unit this model reads"),
    ],
)
def test_cli_bad_input_is_one_error_line_and_exit_2(
    run_dir: Path, tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    names = {
        "run": run_dir,
        "missing": tmp_path / "nowhere",
        "empty": tmp_path,
        "good": tmp_path / "good.xy",
        "nofile": tmp_path / "absent.xy",
        "short": tmp_path / "short.xy",
        "words": tmp_path / "words.xy",
        "weird": tmp_path / "p.zzz",
    }
    names["good"].write_text("\n".join(f"{x} {v}" for x, v in zip(X, _peak(0.5), strict=True)))
    names["short"].write_text("\n".join(f"{x} 1.0" for x in X[X <= 0.1]))
    names["words"].write_text("0.1 1\nhello there\n")
    names["weird"].write_text("1 2\n")
    code, out, err = _cli(capsys, *(a.format(**names) for a in argv))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert message.format(**names) in err


def test_rebin_conserves_counts_and_reports_coverage() -> None:
    rng = np.random.default_rng(1)
    edges = np.cumsum(rng.uniform(0.5, 1.5, 41))
    counts = rng.uniform(0, 10, 40)
    grid_edges = np.linspace(edges[0] - 3, edges[-1] + 3, 17)
    out, covered = rebin(edges, counts, grid_edges)
    assert out.sum() == pytest.approx(counts.sum())
    assert covered.sum() == pytest.approx(edges[-1] - edges[0])
    grid = InputGrid.from_dict({"name": "x", "values": np.arange(10.0).tolist()})
    half = Measurement(y=np.ones(5), x=np.arange(5.0))
    with pytest.raises(PatternError, match="x 0–4, 50% of the model's grid"):
        place_on_grid(half, grid, 10, min_coverage=0.6)
    placed = place_on_grid(half, grid, 10, min_coverage=0.5, fill="zero")
    assert placed.coverage == pytest.approx(0.5) and placed.values.tolist() == [1] * 5 + [0] * 5
