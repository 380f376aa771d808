"""Inputs that used to pass ``validate`` and then waste work or crash: each is refused at
validation, exit 2, with one line naming its key path and what is allowed, and no traceback.
"""

import copy
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

from streamal.cli import main
from streamal.config import load_config
from streamal.errors import ConfigError, PluginError
from streamal.footprint import check_footprint, estimate_footprint

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
PEAKS = "tests.helpers:PeaksSimulator"  # 2 classes, 2 parameters, 64-point inputs

GOOD = {
    "name": "bounds",
    "seed": 1,
    "scheduler": {"progress": False},
    "simulator": {"name": PEAKS, "chunk_size": 16},
    "model": {"name": "tests.helpers:TinyModel"},
    "policy": {"name": "uncertainty-mixture", "options": {"study_size": 8}},
    "workflow": {
        "name": "streaming",
        "options": {"split_fraction": 0.5},
        "phases": [{"samples": 16, "epochs": 1}, {"samples": 16, "epochs": 1}],
    },
}


def _config(tmp_path, *edits, name="c.yaml"):
    """GOOD with ``(path, value)`` edits, written to ``tmp_path / name``."""
    data = copy.deepcopy(GOOD)
    for path, value in edits:
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value
    out = tmp_path / name
    out.write_text(yaml.safe_dump(data))
    return out


def _validate_subprocess(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "streamal", "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def _validate_in_process(capsys, *args):
    code = main(["validate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.err


def _one_line_naming(stderr, key_path, *fragments):
    """Exactly one line of ``stderr`` names ``key_path``, and it holds every fragment."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if f"{key_path}:" in line]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    return lines[0]


def test_the_good_config_validates(tmp_path, capsys):
    code, err = _validate_in_process(capsys, _config(tmp_path))
    assert code == 0, err


# -- bounds on sizes and seeds ------------------------------------------------------------------


def test_a_trillion_samples_is_refused(tmp_path):
    path = _config(tmp_path, (("workflow", "phases", 0, "samples"), 10**12))
    res = _validate_subprocess(path)
    assert res.returncode == 2, res.stderr
    _one_line_naming(res.stderr, "workflow.phases[0].samples", "must be <= 100000000")


def test_a_huge_study_set_is_refused(tmp_path, capsys):
    path = _config(tmp_path, (("policy", "options", "study_size"), 10**11))
    code, err = _validate_in_process(capsys, path)
    assert code == 2
    _one_line_naming(err, "policy.options.study_size", "must be <= 100000000")


def test_a_huge_chunk_is_refused(tmp_path, capsys):
    code, err = _validate_in_process(
        capsys, _config(tmp_path, (("simulator", "chunk_size"), 10**12))
    )
    assert code == 2
    _one_line_naming(err, "simulator.chunk_size", "must be <= 100000000")


def test_a_negative_seed_is_refused(tmp_path):
    res = _validate_subprocess(_config(tmp_path, (("seed",), -1)))
    assert res.returncode == 2, res.stderr
    _one_line_naming(res.stderr, "seed", "must be >= 0")


def test_a_seed_beyond_32_bits_is_refused(tmp_path, capsys):
    code, err = _validate_in_process(capsys, _config(tmp_path, (("seed",), 10**47)))
    assert code == 2
    _one_line_naming(err, "seed", "must be < 4294967296")


def test_the_largest_seed_is_accepted(tmp_path, capsys):
    code, err = _validate_in_process(capsys, _config(tmp_path, (("seed",), 2**32 - 1)))
    assert code == 0, err


@pytest.mark.parametrize("fraction", [-1, 5, 0])
def test_split_fraction_outside_0_1_is_refused(tmp_path, capsys, fraction):
    path = _config(tmp_path, (("workflow", "options", "split_fraction"), fraction))
    code, err = _validate_in_process(capsys, path)
    assert code == 2
    _one_line_naming(
        err, "workflow.options.split_fraction", "must be > 0 and <= 1, or 'auto'", repr(fraction)
    )


@pytest.mark.parametrize("fraction", [1, 0.25, "auto"])
def test_split_fraction_in_range_or_auto_is_accepted(tmp_path, capsys, fraction):
    path = _config(tmp_path, (("workflow", "options", "split_fraction"), fraction))
    code, err = _validate_in_process(capsys, path)
    assert code == 0, err


# -- the node plan ------------------------------------------------------------------------------


def _too_many_ranks():
    """64, or enough that this node's cores cannot host them and a simulator core."""
    return max(64, len(os.sched_getaffinity(0)))


def test_too_many_trainer_ranks_fail_validate_and_run_before_any_work(tmp_path):
    ranks = _too_many_ranks()
    path = _config(tmp_path, (("site", "trainer_ranks"), ranks))
    res = _validate_subprocess(path)
    assert res.returncode == 2, res.stderr
    line = _one_line_naming(res.stderr, "site.trainer_ranks", f"{ranks} ranks")
    assert "allowed: 1.." in line or "GPUs" in line
    with pytest.raises(ConfigError, match=r"site\.trainer_ranks: "):
        load_config(path)
    run = subprocess.run(
        [sys.executable, "-m", "streamal", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "site.trainer_ranks:" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "runs").exists(), "run created a run directory for a bad config"


# -- unreadable files and broken plugins ----------------------------------------------------------


def test_a_non_utf8_config_names_the_file_and_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))  # byte 9 is 0xe9
    res = _validate_subprocess(path)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: {path}: not UTF-8 text: byte 9 (line 1) is 0xe9; save the config as UTF-8"
    ]


def _broken_module(tmp_path, name):
    (tmp_path / f"{name}.py").write_text('raise RuntimeError("boom at import")\n')


def test_a_plugin_that_raises_at_import_is_named(tmp_path):
    _broken_module(tmp_path, "boom_policy_sub")
    path = _config(tmp_path, (("policy", "name"), "boom_policy_sub:Policy"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    res = _validate_subprocess(path, env=env)
    assert res.returncode == 2, res.stderr
    _one_line_naming(
        res.stderr,
        "policy.name",
        "cannot load policy 'boom_policy_sub:Policy'",
        "RuntimeError: boom at import",
    )


def test_plugins_load_wraps_any_import_error(tmp_path, monkeypatch):
    from streamal import plugins

    _broken_module(tmp_path, "boom_sim_inproc")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"simulator 'boom_sim_inproc:Sim'.*RuntimeError: boom"):
        plugins.load("simulators", "boom_sim_inproc:Sim")
    (tmp_path / "syntax_sim.py").write_text("def broken(:\n")
    with pytest.raises(PluginError, match=r"simulator 'syntax_sim:Sim'.*SyntaxError") as info:
        plugins.load("simulators", "syntax_sim:Sim")
    assert "\n" not in str(info.value)


def test_unknown_policy_is_spelled_right(tmp_path, capsys):
    code, err = _validate_in_process(capsys, _config(tmp_path, (("policy", "name"), "nope")))
    assert code == 2
    line = _one_line_naming(err, "policy.name", "unknown policy 'nope'; installed:")
    assert "policie " not in line


def test_validate_reports_every_bad_file(tmp_path, capsys):
    bad = _config(tmp_path, (("seed",), -1), name="bad.yaml")
    good = _config(tmp_path, name="good.yaml")
    code = main(["validate", str(bad), str(good)])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"{good}: ok" in out and f"{bad}: invalid configuration" in err


# -- the footprint ------------------------------------------------------------------------------


def test_footprint_counts_every_split(tmp_path):
    cfg = load_config(_config(tmp_path))
    fp = estimate_footprint(cfg, (64,), ranks=1)
    # phase 0: 16 per class x 2 classes; phase 1: 16 in all; val = test = 8 per class
    assert (fp.train_samples, fp.eval_samples, fp.study_samples) == (48, 32, 16)
    assert fp.samples == 96 and fp.sample_bytes == 4 * 64 + 8 * 2 + 16
    assert fp.store_bytes == 96 * fp.sample_bytes


def _million_samples(tmp_path):
    return _config(tmp_path, (("workflow", "phases", 0, "samples"), 10**6))


def test_a_store_that_cannot_fit_the_disk_is_refused(tmp_path, capsys, monkeypatch):
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(2**30, 2**30 - 2**20, 2**20))
    path = _million_samples(tmp_path)
    code, err = _validate_in_process(capsys, path, "--run-dir", tmp_path / "runs" / "x")
    assert code == 2
    _one_line_naming(
        err, "workflow.phases", "the campaign stores about", "GiB of samples", "1.0 MiB free in"
    )
    # without --run-dir, validate checks no disk: the same config is fine
    code, err = _validate_in_process(capsys, path)
    assert code == 0, err


def test_training_data_that_cannot_fit_in_memory_is_refused(tmp_path, capsys, monkeypatch):
    import psutil

    memory = namedtuple("memory", "total available")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory(2**30, 2**20))
    code, err = _validate_in_process(capsys, _million_samples(tmp_path))
    assert code == 2
    _one_line_naming(err, "workflow.phases", "trainer rank(s) holds about", "1.0 MiB free")


def test_check_footprint_returns_the_numbers(tmp_path):
    cfg = load_config(_config(tmp_path))
    fp = check_footprint(cfg, (64,), tmp_path / "not-yet")
    assert fp.disk_free_bytes and fp.disk_free_bytes > fp.store_bytes
    assert fp.memory_available_bytes and fp.memory_available_bytes > fp.memory_bytes


def test_run_refuses_a_campaign_too_big_for_this_node_before_any_work(tmp_path):
    # 10**8 samples a phase (the bound): ~134 GiB of store, ~60 GiB of training data per rank
    path = _config(tmp_path, (("workflow", "phases"), [{"samples": 10**8, "epochs": 1}]))
    run = subprocess.run(
        [sys.executable, "-m", "streamal", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr
    line = _one_line_naming(run.stderr, "workflow.phases", "GiB", "free")
    assert "of samples" in line or "of training data in memory" in line, line
    assert not (tmp_path / "runs").exists(), "run created a run directory for a campaign too big"
