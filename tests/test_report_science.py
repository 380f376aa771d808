"""The report's science figures: metrics per phase, learning curves, where the AL samples lie,
predicted vs true with uncertainty, the confusion matrix; and the models' ``predict()``."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from streamal.data.label import BatchLabel
from streamal.data.space import ClassSpace, ParameterSpace
from streamal.data.store import SampleStore
from streamal.policy.uncertainty import UncertaintyMixturePolicy
from streamal.policy.uniform import SweepPolicy
from streamal.report.diagnostic import sample_distribution_plot
from streamal.report.figure import MAX_PX
from streamal.report.learning import learning_curves
from streamal.report.metrics import describe_metric, metrics_plot, run_space
from streamal.report.predictions import (
    load_test_predictions,
    predictions_plot,
    write_test_predictions,
)
from streamal.train.generic import GenericMlp
from streamal.train.targets import regression_scale
from streamal.workflows.active import ActiveLearningWorkflow, _load_batch

SPACE = ParameterSpace(
    ("a", "alpha"),
    (
        ClassSpace("cubic", {"a": (3.0, 5.0)}, {"alpha": 90.0}),
        ClassSpace("trigonal", {"a": (3.0, 5.0), "alpha": (60.0, 120.0)}),
    ),
    units={"a": "Å", "alpha": "°"},
)
STAGES = ("T0", "T1")


def _draw(rng: np.random.Generator, n: int, low: float = 0.0, high: float = 1.0):
    """n samples per class, each free parameter at ``low..high`` of its range."""
    classes = np.repeat(np.arange(len(SPACE.classes)), n)
    params = np.concatenate(
        [
            SPACE.complete(k, c.low + (c.high - c.low) * rng.uniform(low, high, (n, len(c.free))))
            for k, c in enumerate(SPACE.classes)
        ]
    )
    return classes, params


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished two-stage run: store (phases 0..2, study set), AL batches with study
    weights, histories, metrics.json and the last stage's test predictions."""
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    run.mkdir()
    with SampleStore(
        run / "store.h5", param_names=SPACE.param_names, class_names=SPACE.class_names,
        input_shape=(4,),
    ) as store:  # fmt: skip

        def put(key: str, label: BatchLabel, classes, params) -> np.ndarray:
            info = store.append(
                key=key, classes=classes, params=params,
                inputs=rng.normal(size=(len(classes), 4)), label=label,
            )  # fmt: skip
            return np.arange(info.start, info.start + info.count)

        put("p0/train", BatchLabel(0, "train", "uniform"), *_draw(rng, 60))
        put("p0/test", BatchLabel(0, "test", "uniform"), *_draw(rng, 40))
        study = SweepPolicy(SPACE).sample(64, rng)  # a grid, as the uncertainty policy's
        study_rows = put("p0/study", BatchLabel(0, "study", "sweep"), *study)
        put("p1/train", BatchLabel(1, "train", "uncertainty-mixture"), *_draw(rng, 50, 0.6, 1))
        put("p2/train", BatchLabel(2, "train", "uncertainty-mixture"), *_draw(rng, 50, 0.8, 1))
        study_params = store.select(split="study").params()
    (run / "al").mkdir()
    for k in (1, 2):
        weights = np.exp(4 * k * (study_params[:, 0] - 5.0))  # more weight at large a
        np.savez(
            run / "al" / f"phase-{k}.npz",
            classes=np.zeros(3, np.int64),
            params=np.zeros((3, 2)),
            study_rows=study_rows,
            study_weights=weights / weights.sum(),
        )
    phases = []
    for i, stage in enumerate(STAGES):
        out = run / "checkpoints" / stage
        out.mkdir(parents=True)
        (out / "spec.json").write_text(json.dumps({"stage": stage, "space": SPACE.to_dict()}))
        history = [
            {
                "epoch": e,
                "train_s": 0.1,
                "epoch_s": 0.12,
                "val_score": 1 / (e + 1 + i),
                "train_class_loss": 1 / (e + 1),
                "train_nll": -e / 10,
                "train_mse": 0.1 / (e + 1),
                "val_class_loss": 1.1 / (e + 1),
                "val_accuracy": 1 - 0.5 / (e + 1 + i),
                "val_mse": 0.12 / (e + 1),
                "val_mae_a_A": 0.2 / (e + 1),
                "val_mae_alpha_deg": 6 / (e + 1),
            }
            for e in range(8)
        ]
        (out / "history.json").write_text(json.dumps(history))
        phases.append(
            {
                "phase": stage,
                "n_train": 120 + 100 * i,
                "test": {
                    "class_loss": 0.4 - 0.1 * i,
                    "accuracy": 0.8 + 0.1 * i,
                    "mse": 0.02,
                    "mae_a_A": 0.03 - 0.01 * i,
                    "mae_alpha_deg": 3.0 - i,
                },
            }
        )
    (run / "metrics.json").write_text(json.dumps({"phases": phases}))
    classes, params = _draw(rng, 300)
    names, low, high = regression_scale(SPACE)
    truth = params[:, [SPACE.param_names.index(p) for p in names]]
    sigma = np.full_like(truth, 0.03) * (high - low)
    logits = rng.normal(size=(len(classes), 2)) + 2.5 * np.eye(2)[classes]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predicted = {
        "class_probabilities": probs,
        "params": truth + rng.normal(size=truth.shape) * sigma,
        "params_sigma": sigma,
    }
    write_test_predictions(
        run / "checkpoints" / "T1" / "test_predictions.npz", predicted, classes, params, SPACE
    )
    return run


def _assert_figure(path: Path) -> None:
    from matplotlib.image import imread

    assert path.is_file(), path
    height, width = imread(path).shape[:2]
    assert width <= MAX_PX[0] and height <= MAX_PX[1], (path.name, width, height)


def test_metric_keys_read_as_words_with_units() -> None:
    assert describe_metric("mae_a_A", SPACE).title == "MAE of a"
    assert describe_metric("mae_a_A", SPACE).ylabel == "mean absolute error (Å)"
    assert describe_metric("mae_alpha_deg").ylabel == "mean absolute error (°)"
    assert describe_metric("test_accuracy").title == "Test class accuracy"
    assert describe_metric("accuracy").scale == 100.0
    assert describe_metric("val_score").title.startswith("Validation score")
    centre = ParameterSpace(("centre",), (ClassSpace("only", {"centre": (0.0, 1.0)}),))
    assert describe_metric("mae_centre", centre).title == "MAE of centre"
    assert describe_metric("mae_centre", centre).ylabel == "mean absolute error"


def test_metrics_plot_is_a_labelled_grid(run_dir: Path, tmp_path: Path) -> None:
    phases = json.loads((run_dir / "metrics.json").read_text())["phases"]
    assert run_space(run_dir) == SPACE
    path = metrics_plot(phases, tmp_path / "metrics.png", space=run_space(run_dir))
    _assert_figure(path)


def test_learning_curves(run_dir: Path, tmp_path: Path) -> None:
    written = learning_curves(run_dir, tmp_path)
    assert [p.name for p in written] == ["learning.png"]
    _assert_figure(written[0])


def test_sample_distribution_with_study_weights(run_dir: Path, tmp_path: Path) -> None:
    written = sample_distribution_plot(run_dir, tmp_path)
    assert [p.name for p in written] == ["samples.png"]
    _assert_figure(written[0])


def test_sample_distribution_without_study_weights(run_dir: Path, tmp_path: Path) -> None:
    """Runs of older versions saved AL batches without the weights: samples alone."""
    for path in (run_dir / "al").glob("*.npz"):
        np.savez(path, classes=np.zeros(1, np.int64), params=np.zeros((1, 2)))
    assert [p.name for p in sample_distribution_plot(run_dir, tmp_path)] == ["samples.png"]


def test_predictions_and_confusion(run_dir: Path, tmp_path: Path) -> None:
    stage, data = load_test_predictions(run_dir)
    assert stage == "T1"
    assert list(data["target_names"]) == ["a", "alpha"] and list(data["units"]) == ["Å", "°"]
    assert data["free"].tolist() == [[True, False], [True, True]]
    written = predictions_plot(run_dir, tmp_path)
    assert [p.name for p in written] == ["predictions.png", "confusion.png"]
    for path in written:
        _assert_figure(path)


@pytest.mark.parametrize("contents", ["nothing", "run.json only", "torn files"])
def test_a_run_without_the_data_gets_no_figure(tmp_path: Path, contents: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    if contents != "nothing":
        (run / "run.json").write_text('{"status": "done"}')
    if contents == "torn files":
        stage = run / "checkpoints" / "T0"
        stage.mkdir(parents=True)
        (stage / "history.json").write_text("[{")
        (stage / "spec.json").write_text("{")
        (stage / "test_predictions.npz").write_bytes(b"PK\3\4 torn")
        (run / "store.h5").write_bytes(b"not hdf5")
    for plot in (learning_curves, sample_distribution_plot, predictions_plot):
        assert plot(run, tmp_path) == []


# --- predict(): the inverse of encode_targets --------------------------------------------


def _linear_model():
    root = Path(__file__).resolve().parents[1] / "examples" / "models"
    sys.path.insert(0, str(root))
    try:
        from linear_model import LinearModel
    finally:
        sys.path.remove(str(root))
    return LinearModel


def _output_for(plugin, classes: np.ndarray, targets: np.ndarray):
    """A network output that predicts the encoded targets with σ² = 1 (scaled units)."""
    import math

    import torch

    k = len(plugin.space.classes)
    logits = 5.0 * np.eye(k)[classes]
    if isinstance(plugin, GenericMlp):  # per-target variances through softplus
        raw = math.log(math.expm1(1.0 - plugin.options.min_variance))
        tail = np.full_like(targets, raw)
        logits = logits if k > 1 else logits[:, :0]
    else:  # one shared log-variance
        tail = np.zeros((len(classes), 1))
    return torch.from_numpy(np.concatenate([logits, targets, tail], axis=1).astype(np.float32))


@pytest.mark.parametrize("model", ["generic-mlp", "linear", "diffraction-cnn"])
def test_predict_inverts_encode_targets(model: str) -> None:
    if model == "generic-mlp":
        plugin = GenericMlp(SPACE, (8,))
    elif model == "linear":
        plugin = _linear_model()(SPACE, (8,))
    else:
        cnn = pytest.importorskip("streamal_diffraction.model").DiffractionCnn
        plugin = cnn(SPACE, (64,))
    classes, params = _draw(np.random.default_rng(3), 20)
    targets = plugin.encode_targets(classes, params)
    predicted = plugin.predict(_output_for(plugin, classes, targets))
    names, low, high = regression_scale(SPACE)
    truth = params[:, [SPACE.param_names.index(p) for p in names]]
    assert predicted["params"].shape == truth.shape
    np.testing.assert_allclose((predicted["params"] - truth) / (high - low), 0, atol=1e-5)
    np.testing.assert_allclose(predicted["params_sigma"], np.broadcast_to(high - low, truth.shape))
    probs = predicted["class_probabilities"]
    assert probs.shape == (len(classes), 2) and (probs.argmax(axis=1) == classes).all()


def test_predict_is_optional() -> None:
    from tests.helpers import TinyModel, peaks_space

    with pytest.raises(NotImplementedError):
        TinyModel(peaks_space(), (8,)).predict(None)


# --- al_batch saves the study-set weights ------------------------------------------------


class _Active(ActiveLearningWorkflow):
    async def run(self) -> None:  # pragma: no cover - not run
        pass


def test_al_batch_saves_study_weights(tmp_path: Path) -> None:
    with SampleStore(
        tmp_path / "store.h5", param_names=SPACE.param_names, class_names=SPACE.class_names,
        input_shape=(2,),
    ) as store:  # fmt: skip
        policy = UncertaintyMixturePolicy(SPACE, study_size=6, entropy_weight=0.0)
        classes, params = policy.study_set(np.random.default_rng(0))
        store.append(
            key="p0/study", classes=classes, params=params,
            inputs=np.zeros((len(classes), 2)), label=BatchLabel(0, "study", "sweep"),
        )  # fmt: skip
        workflow = _Active.__new__(_Active)
        workflow.ctx = SimpleNamespace(store=store, config=SimpleNamespace(seed=0))
        workflow.policy, workflow.al_dir = policy, tmp_path

        async def fit_policy(k: int, checkpoint: str) -> None:
            policy.fit(classes, params, {"variance": params[:, 0] - 2.9})

        workflow.fit_policy = fit_policy
        batch = asyncio.run(workflow.al_batch(1, 10, "best.pt"))
        saved = _load_batch(tmp_path / "phase-1.npz")
        assert saved["classes"].tolist() == batch["classes"].tolist()
        assert saved["study_rows"].tolist() == list(range(len(classes)))
        np.testing.assert_allclose(saved["study_weights"], policy.weights_)


def test_old_al_batches_without_weights_still_load(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, classes=np.arange(3), params=np.zeros((3, 2)))
    (tmp_path / "phase-1.npz").write_bytes(buf.getvalue())
    assert set(_load_batch(tmp_path / "phase-1.npz")) == {"classes", "params"}


# --- the trainer saves the test predictions ----------------------------------------------


@pytest.mark.parametrize(
    ("model", "saved"), [("generic-mlp", True), ("tests.helpers:TinyModel", False)]
)
def test_training_saves_test_predictions_of_a_model_that_predicts(
    tmp_path: Path, model: str, saved: bool
) -> None:
    from streamal.cluster.plan import RankPlacement
    from streamal.train.ddp import train
    from streamal.train.spec import TrainSpec

    space = ParameterSpace(
        ("x",), (ClassSpace("low", {"x": (0.0, 1.0)}), ClassSpace("high", {"x": (0.0, 1.0)}))
    )
    rng = np.random.default_rng(0)
    classes, params = rng.integers(0, 2, 120), rng.uniform(0, 1, (120, 1))
    grid = np.linspace(0, 1, 32)
    inputs = np.sin(6 * grid * (1 + classes[:, None])) + params
    with SampleStore(
        tmp_path / "s.h5", param_names=["x"], class_names=["low", "high"], input_shape=(32,)
    ) as store:
        for split, rows in (
            ("train", slice(0, 80)),
            ("val", slice(80, 100)),
            ("test", slice(100, 120)),
        ):
            store.append(
                key=split, classes=classes[rows], params=params[rows],
                inputs=inputs[rows], label=BatchLabel(0, split, "uniform"),
            )  # fmt: skip
    spec = TrainSpec(
        store=str(tmp_path / "s.h5"),
        train_rows=list(range(80)),
        val_rows=list(range(80, 100)),
        test_rows=list(range(100, 120)),
        model=model,
        model_options={},
        space=space.to_dict(),
        input_shape=(32,),
        out_dir=str(tmp_path / "checkpoints" / "T0"),
        epochs=2,
        ranks=(RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)),
        batch_size=16,
    )
    result = train(spec)
    assert result["test"]["accuracy"] >= 0
    path = tmp_path / "checkpoints" / "T0" / "test_predictions.npz"
    assert path.exists() == saved
    if saved:
        _, data = load_test_predictions(tmp_path)
        assert data["classes"].tolist() == classes[100:].tolist()
        np.testing.assert_allclose(data["params_true"], params[100:])
        assert data["params"].shape == data["params_sigma"].shape == (20, 1)
        assert data["class_probabilities"].shape == (20, 2)
