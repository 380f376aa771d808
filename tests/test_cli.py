import json
import subprocess
import sys

import pytest


def streamal(*args, check=False, env=None, cwd=None):
    """``python -m streamal ARGS`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "streamal", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
        env=env,
        cwd=cwd,
    )


@pytest.mark.parametrize(("site", "per", "n_sim"), [("polaris", 8, 24), ("perlmutter", 16, 56)])
def test_plan_json(site, per, n_sim):
    out = json.loads(streamal("plan", "--site", site, "--json", check=True).stdout)
    assert set(out) == {"site", "sim_cores", "trainer_ranks", "nodes", "world"}
    assert out["site"] == site and out["nodes"] == 1
    assert len(out["sim_cores"]) == n_sim
    assert out["trainer_ranks"] == [
        {"rank": k, "cores": [per * k, per * k + 1], "gpu": 3 - k} for k in range(4)
    ]


def test_plan_local_human_readable():
    res = streamal("plan", check=True)
    assert "simulator cores" in res.stdout and "trainer rank 0" in res.stdout


def test_validate_exits_2_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "simulator: {name: x}\nworkflow: {name: y, phases: [{samples: 1, epochs: 0}]}\n"
        "site: {cores: 3}\n"
    )
    res = streamal("validate", str(bad))
    assert res.returncode == 2
    assert "workflow.phases[0].epochs: must be > 0" in res.stderr
    assert "site.cores: unknown key; allowed: name" in res.stderr
    assert "Traceback" not in res.stderr
    res = streamal("run", str(bad))
    assert res.returncode == 2 and "site.cores: unknown key" in res.stderr


def test_plugins_json_lists_groups():
    out = json.loads(streamal("plugins", "--json", check=True).stdout)
    assert set(out) == {"simulators", "models", "policies", "workflows", "sites"}
