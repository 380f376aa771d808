"""``streamal nas-export``: the searched genome as a model config a campaign runs with."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamal.cli import main
from streamal_nas.genome_model import NasGenomeOptions

ROOT = Path(__file__).resolve().parents[3]
OPTIONS = {
    "phases": 2,
    "nodes": 3,
    "channels": [4, 8],
    "network": {"stem_kernels": [7, 5], "pool": 4, "pool_last": True},
    "dataset": {"name": "store", "path": "elsewhere", "encoder": {"name": "diffraction-cnn"}},
    "fitness": "class_loss",
}


def _row(cid, genome, fitness, flops):
    return {
        "id": cid,
        "genome": genome,
        "fitness_metric": "class_loss",
        "fitness": fitness,
        "cost": flops,
        "flops": flops,
        "params": 10,
        "status": "trained",
    }


@pytest.fixture
def nas_run(tmp_path) -> Path:
    run = tmp_path / "nas-run"
    run.mkdir()
    config = {"workflow": {"name": "nas", "phases": [{"samples": 3, "epochs": 1}]}}
    config["workflow"]["options"] = OPTIONS
    (run / "run.json").write_text(json.dumps({"config": config}))
    rows = [
        _row("c0001", "macro:2x3:1001-0001", 0.9, 100.0),  # front, rank 2
        _row("c0002", "macro:2x3:1111-1111", 0.5, 900.0),  # front, rank 1 (lowest loss)
        _row("c0003", "macro:2x3:0111-0001", 1.2, 500.0),  # dominated by c0001
    ]
    (run / "candidates.json").write_text(json.dumps(rows))
    return run


def _export(capsys, *args):
    code = main(["nas-export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_ranks_the_pareto_front_by_error_and_writes_a_model_section(nas_run, capsys) -> None:
    code, out, _ = _export(capsys, nas_run)
    assert code == 0 and out.startswith("# nas-export of ")
    model = yaml.safe_load(out)["model"]
    assert model["name"] == "nas-genome"
    o = model["options"]
    assert o["genome"] == "macro:2x3:1111-1111"
    assert o["channels"] == [4, 8] and o["network"]["stem_kernels"] == [7, 5]
    assert o["encoder"] == {"name": "diffraction-cnn", "options": {}}
    NasGenomeOptions.model_validate(o)  # what `streamal run` will check
    code, out, _ = _export(capsys, nas_run, "--rank", 2, "--out", nas_run / "m.yaml")
    assert code == 0 and "c0001" in out
    second = yaml.safe_load((nas_run / "m.yaml").read_text())["model"]["options"]
    assert second["genome"] == "macro:2x3:1001-0001"


def test_bad_input_is_one_error_line(nas_run, tmp_path, capsys) -> None:
    code, _, err = _export(capsys, nas_run, "--rank", 3)
    assert code == 2 and err.count("\n") == 1
    assert "--rank 3: the Pareto front of" in err and "has 2 candidate(s)" in err
    code, _, err = _export(capsys, tmp_path)
    assert code == 2 and "is not a nas run" in err
    code, _, err = _export(capsys, nas_run, "--rank", 0)
    assert code == 2 and "must be >= 1" in err


def _streamal(*args: str, timeout: float) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [sys.executable, "-m", "streamal", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res


TINY = {
    "seed": 0,
    "site": {"name": "local"},
    "scheduler": {"retries": 0, "progress": False},
    "report": {"figures": False},
    "simulator": {"name": "diffraction-tof", "chunk_size": 16, "options": {"preset": "e1"}},
}


@pytest.mark.slow  # two campaigns, ~1 min each on an idle 2-core machine
def test_a_simulated_search_exports_a_genome_that_an_active_learning_campaign_runs(tmp_path):
    search = {
        **TINY,
        "name": "nas-sim",
        "workflow": {
            "name": "nas",
            "phases": [{"samples": 4, "epochs": 1}],
            "options": {
                "population": 2,
                "phases": 2,
                "nodes": 3,
                "channels": 4,
                "batch_size": 16,
                "network": {"stem_kernels": [7, 5], "strides": [2, 1], "pool": 4},
                "dataset": {
                    "name": "simulate",
                    "samples_per_class": 6,
                    "encoder": {"name": "diffraction-cnn", "options": {"background": "none"}},
                },
                "fitness": "score",
                "prediction": {"enabled": False},
            },
        },
    }
    (tmp_path / "nas.yaml").write_text(yaml.safe_dump(search))
    nas = tmp_path / "nas"
    _streamal("run", str(tmp_path / "nas.yaml"), "--run-dir", str(nas), timeout=280)
    rows = json.loads((nas / "candidates.json").read_text())
    assert len(rows) == 4 and {r["fitness_metric"] for r in rows} == {"score"}
    summary = json.loads((nas / "summary.json").read_text())
    assert summary["best"]["fitness"] == min(r["fitness"] for r in rows)
    _streamal("nas-export", str(nas), "--out", str(tmp_path / "model.yaml"), timeout=60)
    campaign = {
        **TINY,
        "name": "nas-genome-al",
        **yaml.safe_load((tmp_path / "model.yaml").read_text()),
        "policy": {"name": "uncertainty-mixture", "options": {"study_size": 8}},
        "train": {"batch_size": 16},
        "workflow": {
            "name": "serial",
            "phases": [{"samples": 4, "epochs": 1}, {"samples": 6, "epochs": 1}],
        },
    }
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(campaign))
    al = tmp_path / "al"
    _streamal("run", str(tmp_path / "al.yaml"), "--run-dir", str(al), timeout=280)
    phases = json.loads((al / "metrics.json").read_text())["phases"]
    assert [p["phase"] for p in phases] == ["T0", "T1"]
    assert {"accuracy", "class_loss", "mse", "mae_a_A"} <= set(phases[-1]["test"])
