"""Every shipped config validates; a wrong key or type in any of them exits 2 naming it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def _validate(path):
    return subprocess.run(
        [sys.executable, "-m", "streamal", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_there_are_shipped_configs():
    assert {p.name for p in CONFIGS} >= {
        "diffraction-quickstart.yaml",
        "diffraction-ci.yaml",
        "diffraction-e1.yaml",
        "diffraction-e2.yaml",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates(path):
    res = _validate(path)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_wrong_keys_and_types_exit_2_with_the_key_path(path, tmp_path):
    data = yaml.safe_load(path.read_text())
    cases = {
        "unknown top-level key": ({**data, "workflw": {}}, "workflw: unknown key"),
        "unknown nested key": (
            {**data, "site": {**data["site"], "cpus": 4}},
            "site.cpus: unknown key",
        ),
        "wrong type": (
            {
                **data,
                "workflow": {
                    **data["workflow"],
                    "phases": [{**data["workflow"]["phases"][0], "epochs": "many"}],
                },
            },
            "workflow.phases[0].epochs:",
        ),
    }
    for what, (bad, expected) in cases.items():
        bad_path = tmp_path / "bad.yaml"
        bad_path.write_text(yaml.safe_dump(bad))
        for command in ("validate", "run"):
            res = subprocess.run(
                [sys.executable, "-m", "streamal", command, str(bad_path)],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
            )
            assert res.returncode == 2, f"{what} / {command}: {res.stderr}"
            assert expected in res.stderr, f"{what} / {command}: {res.stderr}"
