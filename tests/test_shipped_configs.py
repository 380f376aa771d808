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


def _bad_cases(data):
    return {
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


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_wrong_keys_and_types_exit_2_with_the_key_path(path, tmp_path, monkeypatch, capsys):
    """In process for every config (an exception would fail the test: no traceback path)."""
    from streamal.cli import main

    monkeypatch.chdir(tmp_path)
    for what, (bad, expected) in _bad_cases(yaml.safe_load(path.read_text())).items():
        bad_path = tmp_path / "bad.yaml"
        bad_path.write_text(yaml.safe_dump(bad))
        for command in ("validate", "run"):
            code = main([command, str(bad_path)])
            err = capsys.readouterr().err
            assert code == 2, f"{what} / {command}: {err}"
            assert expected in err, f"{what} / {command}: {err}"
    assert not (tmp_path / "runs").exists()  # a refused config starts nothing


def test_a_wrong_key_exits_2_without_a_traceback_from_the_command_line(tmp_path):
    data = yaml.safe_load((CONFIGS[0].parent / "diffraction-quickstart.yaml").read_text())
    for what, (bad, expected) in _bad_cases(data).items():
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
            assert "Traceback" not in res.stderr
