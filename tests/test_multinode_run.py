"""End to end: ``streamal run`` whose training spans two emulated nodes (``train.launcher:
mpi``): Parsl's MPIExecutor reads the nodes from ``PBS_NODEFILE`` and starts one rank on each
through hydra's ``mpiexec``."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_run import CONFIG, streamal_run

pytestmark = pytest.mark.mpi

BIN = str(Path(sys.executable).parent)
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (the mpi extra)")
def test_run_trains_over_two_emulated_nodes(tmp_path, monkeypatch):
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n127.0.0.1\n")
    monkeypatch.setenv("PBS_NODEFILE", str(nodefile))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    config = {
        **CONFIG,
        "site": {"name": "local", "nodes": 2, "trainer_ranks": 1, "cores_per_rank": 1},
        "train": {**CONFIG["train"], "launcher": "mpi"},
        "workflow": {"name": "baseline", "phases": [{"samples": 24, "epochs": 2}]},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    res = streamal_run(str(path), "--run-dir", str(run), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    reports = [
        json.loads((run / "checkpoints" / "T0" / f"rank-{r}.json").read_text()) for r in (0, 1)
    ]
    assert [(r["host"], r["node"], r["world_size"]) for r in reports] == [
        ("localhost", 0, 2),
        ("127.0.0.1", 1, 2),
    ]
    metrics = json.loads((run / "metrics.json").read_text())["phases"][0]
    assert metrics["launcher"].startswith("mpiexec -n 2 -ppn 1 -hosts localhost,127.0.0.1 ")
    assert metrics["launcher"].endswith(
        "-m streamal.train.rank " + str(run / "checkpoints/T0/spec.json")
    )
    timeline = json.loads((run / "timeline.json").read_text())
    trains = [r for r in timeline if r["pool"] == "train" and r["stage"] == "T0"]
    assert trains and all(r["info"]["launcher"] == "mpi" for r in trains)
    assert trains[-1]["info"]["launch_command"] == metrics["launcher"]
    assert " -bind-to user:0 " in metrics["launcher"]  # the plan's trainer core, every node
    assert json.loads((run / "run.json").read_text())["plan"]["nodes"] == 2
