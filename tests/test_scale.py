"""``streamal scale`` / ``scale-report``: a study over node counts and workflows, on two
emulated nodes (a PBS_NODEFILE naming this machine twice), resumed, stopped and reported."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.test_run import CONFIG

BIN = str(Path(sys.executable).parent)
STUDY_CONFIG = {
    **CONFIG,
    "name": "study",
    "site": {"name": "local", "trainer_ranks": 1, "cores_per_rank": 1},
    "policy": {"name": "uncertainty-mixture", "options": {"study_size": 8}},
    "workflow": {
        "name": "streaming",
        "options": {"split_fraction": 0.5},
        "phases": [{"samples": 16, "epochs": 2}, {"samples": 16, "epochs": 1}],
    },
}


def _scale(*args, env=None, timeout=400):
    return subprocess.run(
        [sys.executable, "-m", "streamal", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _env(tmp_path):
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n127.0.0.1\n")
    return {
        **os.environ,
        "PBS_NODEFILE": str(nodefile),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _config(tmp_path, **changes):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY_CONFIG, **changes}))
    return path


@pytest.mark.mpi
@pytest.mark.slow  # four campaigns (~2 min); the two-node run itself is in test_multinode_run
def test_a_study_over_one_and_two_emulated_nodes_runs_resumes_and_reports(tmp_path):
    config, out, env = _config(tmp_path), tmp_path / "study", _env(tmp_path)
    argv = ["scale", str(config), "--nodes", "1,2", "--workflows", "serial,streaming"]
    res = _scale(*argv, "--out", str(out), env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "not for this workflow: workflow.options.split_fraction" in res.stdout
    names = ["n1-serial-r1", "n1-streaming-r1", "n2-serial-r1", "n2-streaming-r1"]
    for name in names:
        status = json.loads((out / name / "run.json").read_text())
        assert status["status"] == "done"
        assert status["plan"]["nodes"] == int(name[1])
        assert status["config"]["workflow"]["name"] == name.split("-")[1]
    table = json.loads((out / "report" / "scaling.json").read_text())
    rows = {(r["nodes"], r["workflow"]): r for r in table["rows"]}
    assert set(rows) == {(1, "serial"), (1, "streaming"), (2, "serial"), (2, "streaming")}
    for (nodes, _), row in rows.items():
        assert row["ranks"] == nodes and row["makespan_s"] > 0
        serial = rows[(nodes, "serial")]["makespan_s"]
        assert row["speedup_vs_serial"] == pytest.approx(serial / row["makespan_s"])
    assert rows[(1, "serial")]["parallel_efficiency"] == 1.0
    assert (out / "report" / "scaling.png").stat().st_size > 10_000
    assert "vs serial" in res.stdout  # the table, printed

    again = _scale(*argv, "--out", str(out), env=env)  # resumes: nothing left to run
    assert again.returncode == 0
    assert again.stdout.count("done, skipped") == 4
    report = _scale("scale-report", str(out))
    assert report.returncode == 0 and "streaming" in report.stdout


@pytest.mark.slow  # 55 s; campaigns stopping in order: tests/faults/test_stop_signals.py
def test_a_stop_signal_to_the_study_stops_the_running_campaign_in_order(tmp_path):
    slow = {**STUDY_CONFIG["simulator"], "options": {"delay": 0.3}}
    config, out = _config(tmp_path, simulator=slow), tmp_path / "study"
    argv = ["scale", str(config), "--nodes", "1", "--workflows", "streaming", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamal", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    run_json = out / "n1-streaming-r1" / "run.json"
    deadline = time.time() + 120
    while not run_json.exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(4)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the study's whole group
    out_text, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out_text + err[-3000:]
    assert "stopped after" in out_text
    assert json.loads(run_json.read_text())["status"] == "interrupted"
    again = _scale(*argv)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "resuming" in again.stdout
    assert json.loads(run_json.read_text())["status"] == "done"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nodes", "0"], "--nodes '0': a comma-separated list of node counts >= 1"),
        (["--nodes", "1,x"], "--nodes '1,x'"),
        (["--nodes", "1", "--set", "train.batch_size=-1"], "train.batch_size"),
        (["--nodes", "1", "--workflows", "nope"], "workflow"),
        (["--nodes", "1", "--repeat", "0"], "--repeat 0"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_runs_nothing(tmp_path, extra, message):
    out = tmp_path / "study"
    res = _scale("scale", str(_config(tmp_path)), *extra, "--out", str(out))
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: ") and message in res.stderr  # config errors: the key
    assert "Traceback" not in res.stderr
    assert not out.exists()


def test_two_nodes_without_a_node_list_are_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PBS_NODEFILE", "SLURM_NODELIST")}
    res = _scale("scale", str(_config(tmp_path)), "--nodes", "1,2", env=env)
    assert res.returncode == 2
    assert "--nodes 2: $PBS_NODEFILE names 0 node(s)" in res.stderr


def test_a_study_directory_of_another_config_is_refused(tmp_path):
    from streamal.errors import ConfigError
    from streamal.study.layout import plan_study

    first = _config(tmp_path)
    study = plan_study(tmp_path / "s", first, [], [1], ["serial"], 1)
    study.directory.mkdir()
    study.save()
    extended = plan_study(tmp_path / "s", first, [], [2], ["serial"], 1)
    assert [r.name for r in extended.runs] == ["n1-serial-r1", "n2-serial-r1"]
    with pytest.raises(ConfigError, match="holds a study of"):
        plan_study(tmp_path / "s", first, ["seed=3"], [1], ["serial"], 1)


def test_dry_run_prints_each_command_and_runs_nothing(tmp_path):
    out = tmp_path / "study"
    res = _scale(
        "scale",
        str(_config(tmp_path)),
        "--nodes",
        "1,2",
        "--workflows",
        "serial,streaming",
        "--out",
        str(out),
        "--dry-run",
        env=_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4 and all(" new " in line for line in lines)
    assert "--set site.nodes=2 --set workflow.name=serial --set 'workflow.options={}'" in lines[2]
    assert not out.exists()
