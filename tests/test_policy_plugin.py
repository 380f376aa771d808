"""A model-driven policy added as a plugin (``examples/policies/topk_policy.py``) runs a
campaign through the Policy interface alone: no workflow knows it."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from streamal import plugins
from streamal.config import parse_config
from streamal.data.store import SampleStore
from streamal.errors import ConfigError
from streamal.policy import check_policy
from tests.helpers import TinyModel, peaks_space
from tests.test_policy import SPACE
from tests.test_run import CONFIG, _run

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "examples" / "policies"
PLUGIN = "topk_policy:TopKUncertaintyPolicy"


@pytest.fixture
def topk(monkeypatch):
    """The plugin class, importable here and in every process a run starts."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(PLUGIN_DIR), os.environ["PYTHONPATH"]) if p)
    )
    return plugins.load("policies", PLUGIN)


@pytest.mark.parametrize("space", [SPACE, peaks_space()], ids=["constrained", "peaks"])
@pytest.mark.parametrize("options", [{}, {"key": "entropy", "pool_size": 9, "radius": 0.2}])
def test_the_plugin_conforms(topk, space, options):
    check_policy(topk(space, **options))


def _cells(policy, classes, params, study_classes, study_params):
    """The study row whose neighbourhood holds each sample (-1: none)."""
    out = np.full(len(classes), -1)
    for k in range(len(policy.space.classes)):
        free = policy.space.free_indices(k)
        half = policy.options.radius * policy.spacing(k) * (1 + 1e-9)
        rows = np.flatnonzero(study_classes == k)
        for i in np.flatnonzero(classes == k):
            near = np.all(np.abs(study_params[rows][:, free] - params[i, free]) <= half, axis=1)
            if near.sum() == 1:
                out[i] = rows[near][0]
    return out


def test_it_samples_next_to_the_most_uncertain_study_points(topk):
    pol = topk(peaks_space(), pool_size=16)  # a full grid: the neighbourhoods do not overlap
    classes, params = pol.study_set(np.random.default_rng(0))
    scores = np.random.default_rng(1).gamma(1.0, size=len(classes))
    pol.fit(classes, params, {"variance": scores})
    c, p = pol.sample_total(10, np.random.default_rng(2))
    cells = _cells(pol, c, p, classes, params)
    assert sorted(cells) == sorted(np.argsort(-scores)[:10])


def test_validate_refuses_a_model_without_the_plugins_key(topk):
    cfg = {**CONFIG, "workflow": {"name": "serial", "phases": [{"samples": 4, "epochs": 1}]}}
    cfg["policy"] = {"name": PLUGIN, "options": {"key": "margin"}}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, check_node=False)
    assert (
        "model.name: model 'tests.helpers:TinyModel' reports no uncertainty 'margin', which "
        f"policy '{PLUGIN}' needs (use a model that provides it)"
    ) in str(err.value)
    cfg["policy"]["options"] = {"key": "entropy"}
    parse_config(cfg, check_node=False)


def _study_uncertainty(run: Path, rows: np.ndarray, key: str) -> np.ndarray:
    """The T0 model's ``key`` on stored rows, computed as the AL task computes it."""
    import torch

    from streamal.train.checkpoint import load_checkpoint

    plugin = TinyModel(peaks_space(), (64,))
    net = plugin.build()
    net.load_state_dict(load_checkpoint(run / "checkpoints" / "T0" / "best.pt")["model"])
    net.eval()
    with SampleStore(run / "store.h5", mode="r") as s, torch.no_grad():
        x = plugin.encode_inputs(s.select().inputs()[rows])
    with torch.no_grad():
        return plugin.uncertainty(net(torch.from_numpy(x)))[key]


def test_a_campaign_runs_the_plugin_end_to_end(topk, tmp_path):
    """Serial, 2 phases: phase 1's batch comes from the plugin, next to the study points the
    trained model was most uncertain about — so its ``fit`` got the model's predictions."""
    options = {"key": "variance", "pool_size": 32, "radius": 0.4}
    cfg = {
        **CONFIG,
        "workflow": {
            "name": "serial",
            "phases": [{"samples": 16, "epochs": 2}, {"samples": 12, "epochs": 1}],
        },
        "policy": {"name": PLUGIN, "options": options},
    }
    start = time.time()
    res = _run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    with SampleStore(run / "store.h5", mode="r") as s:
        assert {b.origin for b in s.batches() if b.phase == 1} == {"topk-uncertainty"}
        study = s.select(split="study")
        al = s.select(split="train", phase=1)
        study_rows = study.indices
        study_classes, study_params = study.classes(), study.params()
        al_classes, al_params = al.classes(), al.params()
    assert len(study_rows) == 64 and len(al_classes) == 12
    scores = _study_uncertainty(run, study_rows, "variance")
    pol = topk(peaks_space(), **options)
    cells = _cells(pol, al_classes, al_params, study_classes, study_params)
    assert (cells >= 0).all() and len(set(cells)) == 12, cells  # one per chosen study point
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[cells] = True
    tolerance = 1e-5 * np.abs(scores).max()  # the AL task ran in another process
    assert scores[chosen].min() >= scores[~chosen].max() - tolerance
    print(f"campaign took {time.time() - start:.1f} s")
