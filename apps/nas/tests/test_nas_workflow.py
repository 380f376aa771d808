"""End to end: ``streamal run configs/nas-ci.yaml``; options validation of the nas workflow."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from streamal_nas.options import NasOptions

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("nas") / "run"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamal",
            "run",
            str(ROOT / "configs" / "nas-ci.yaml"),
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return run


def test_run_writes_tables_plot_and_summary(ci_run):
    for name in ("candidates.json", "candidates.csv", "report/pareto.png", "summary.json"):
        assert (ci_run / name).exists(), name
    rows = json.loads((ci_run / "candidates.json").read_text())
    with (ci_run / "candidates.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows) == 12
    summary = json.loads((ci_run / "summary.json").read_text())
    assert summary["candidates"] == 12
    assert summary["trained"] + summary["skipped"] == 12
    assert 0.0 < summary["hypervolume"] <= 1.0
    assert summary["best"]["id"] in {r["id"] for r in rows}
    assert {r["energy_source"] for r in rows} <= {"rapl", "nvml", "unavailable"}
    for r in rows:
        if r["status"] == "trained":
            assert (ci_run / "checkpoints" / f"{r['id']}.pt").exists()


def test_prediction_and_similarity_save_work(ci_run):
    rows = json.loads((ci_run / "candidates.json").read_text())
    early = [r for r in rows if r["stop_reason"] in ("converged", "never-learning")]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert early or skipped
    assert all(r["epochs"] < 6 for r in early)
    summary = json.loads((ci_run / "summary.json").read_text())
    assert summary["epochs_saved"] > 0


def test_prediction_engine_overlaps_candidate_training(ci_run):
    timeline = json.loads((ci_run / "timeline.json").read_text())
    engine = [r for r in timeline if r["stage"] == "predict" and r["started"]]
    train = [r for r in timeline if r["stage"] == "train" and r["started"]]
    assert engine and train
    assert {r["pool"] for r in engine} == {"sim"} and {r["pool"] for r in train} == {"train"}
    overlapping = [
        t
        for t in train
        if any(e["started"] < t["ended"] and t["started"] < e["ended"] for e in engine)
    ]
    assert len(overlapping) >= len(train) // 2


def test_options_reject_unknown_keys_and_bad_values():
    assert NasOptions().strategy == "nsga2"
    with pytest.raises(ValidationError):
        NasOptions.model_validate({"populaton": 4})
    with pytest.raises(ValidationError):
        NasOptions.model_validate({"strategy": "random"})
    with pytest.raises(ValidationError, match="sample_size"):
        NasOptions.model_validate(
            {"strategy": "regularized-evolution", "population": 3, "sample_size": 5}
        )


@pytest.mark.mpi
@pytest.mark.parametrize("span", ["rank", pytest.param("node", marks=pytest.mark.slow)])
def test_candidates_train_on_every_emulated_node(span, tmp_path):
    """Two emulated nodes (a PBS_NODEFILE naming this machine twice; hydra's mpiexec starts
    one manager per name): candidates train in both nodes' train pools. Four candidates of
    at most 3 epochs: the first two already train at once, one per node."""
    bindir = str(Path(sys.executable).parent)
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n127.0.0.1\n")
    env = {
        **os.environ,
        "PBS_NODEFILE": str(nodefile),
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    run = tmp_path / "run"
    res = subprocess.run(
        [
            *(sys.executable, "-m", "streamal", "run", str(ROOT / "configs" / "nas-ci.yaml")),
            *("--run-dir", str(run), "--set", "site.nodes=2", "--set", "site.trainer_ranks=1"),
            *("--set", "site.cores_per_rank=1", "--set", f"workflow.options.candidate_span={span}"),
            *("--set", "workflow.phases[0].samples=4", "--set", "workflow.phases[0].epochs=3"),
            *("--set", "report.figures=false"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    timeline = json.loads((run / "timeline.json").read_text())
    trained = [r for r in timeline if r["stage"] == "train" and r["status"] == "done"]
    assert len({r["manager"] for r in trained}) == 2, "candidates trained on one node only"
    assert json.loads((run / "nas" / "state.json").read_text())["window"] == 3
