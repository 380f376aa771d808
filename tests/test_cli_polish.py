"""The command line as a user meets it: every bad input is ``error:`` lines and exit status 2,
``validate`` lists every problem of every file at once, ``--version``, and help everywhere."""

from __future__ import annotations

import argparse
import copy

import pytest
import yaml

import streamal
from streamal.cli import build_parser, main

GOOD = {
    "name": "polish",
    "scheduler": {"progress": False},
    "simulator": {"name": "tests.helpers:PeaksSimulator", "chunk_size": 16},
    "model": {"name": "tests.helpers:TinyModel"},
    "policy": {"name": "uncertainty-mixture", "options": {"study_size": 8}},
    "workflow": {"name": "serial", "phases": [{"samples": 16, "epochs": 1}]},
}


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_error_lines(err):
    assert err and "Traceback" not in err
    assert all(line.startswith("error: ") for line in err.splitlines()), err


def test_report_on_a_missing_directory_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "runs" / "does-not-exist"
    code, out, err = _run(capsys, "report", missing)
    assert code == 2 and out == ""
    _assert_error_lines(err)
    assert err.splitlines() == [f"error: {missing}: no such run directory"]
    assert not (tmp_path / "runs").exists()


def test_report_on_an_empty_directory_creates_no_report(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, "report", empty)
    assert code == 2
    _assert_error_lines(err)
    assert len(err.splitlines()) == 1 and "not a run directory" in err
    assert list(empty.iterdir()) == []


def test_report_on_a_run_without_tasks_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(GOOD))
    code, _, err = _run(capsys, "report", run)
    assert code == 2 and "no task recorded yet" in err and len(err.splitlines()) == 1
    assert not (run / "report").exists()


def test_validate_lists_every_problem_of_every_file(tmp_path, capsys):
    good = _write(tmp_path, "good.yaml", GOOD)
    keys = copy.deepcopy(GOOD)
    keys["site"] = {"nmae": "local"}  # a bad key ...
    keys["simulator"]["name"] = "diffractoin"  # ... and a misspelt plugin in the same file
    keys["model"] = {"name": "generic-mlp", "options": {"widht": 3}}  # ... a bad option
    keys_path = _write(tmp_path, "keys.yaml", keys)
    value = copy.deepcopy(GOOD)
    value["workflow"]["phases"][0]["epochs"] = 0
    value_path = _write(tmp_path, "value.yaml", value)

    code, out, err = _run(capsys, "validate", good, keys_path, value_path)
    assert code == 2
    assert out.splitlines()[0].startswith(f"{good}: ok")
    _assert_error_lines(err)
    lines = err.splitlines()
    assert f"error: {keys_path}: invalid configuration (3 problems)" in lines
    assert any(
        line.startswith(f"error: {keys_path}: site.nmae: unknown key; allowed: name,")
        for line in lines
    )
    assert any(
        line.startswith(f"error: {keys_path}: simulator.name: unknown simulator 'diffractoin'")
        and "installed:" in line
        for line in lines
    )
    assert any(line.startswith(f"error: {keys_path}: model.options") for line in lines), err
    assert f"error: {value_path}: workflow.phases[0].epochs: must be > 0 (got 0)" in lines
    assert not any(str(good) in line for line in lines)


def test_validate_bad_yaml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\nseed: 1\n")
    code, _, err = _run(capsys, "validate", bad)
    assert code == 2
    _assert_error_lines(err)
    assert len(err.splitlines()) == 1 and "not valid YAML: line" in err


def test_usage_errors_are_one_line(capsys):
    code, out, err = _run(capsys, "validate")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: streamal validate: the following arguments are required: config "
        "(see streamal validate -h)"
    ]


def test_version(capsys):
    from importlib import metadata

    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"streamal {metadata.version('streamal')}"
    assert out.split()[1] == streamal.__version__


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_argument_of_every_command_has_help():
    commands = _subparsers(build_parser())
    assert {"run", "plan", "validate", "plugins", "report", "config-schema"} <= set(commands)
    assert {"scale", "scale-report", "replay"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description and "``" not in sub.description, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), f"{name} {action.dest}: no help"


def test_top_level_help_is_plain_text_with_an_example_per_command(capsys):
    parser = build_parser()
    assert "``" not in parser.description and "``" not in parser.epilog
    code, out, _ = _run(capsys, "-h")
    assert code == 0 and "``" not in out
    for name in _subparsers(parser):
        assert f"streamal {name} " in parser.epilog, name


@pytest.mark.parametrize("command", ["run", "plan", "validate", "report", "config-schema"])
def test_each_command_help_exits_0(capsys, command):
    code, out, _ = _run(capsys, command, "-h")
    assert code == 0 and out.startswith(f"usage: streamal {command}")
