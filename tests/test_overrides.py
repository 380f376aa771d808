"""``--set key.path=value``: parsing, applying, validation, the saved config and resume."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamal.config import _path, load_config, load_effective_config
from streamal.errors import ConfigError
from streamal.overrides import (
    apply_overrides,
    parse_key_path,
    parse_override,
    parse_overrides,
)

CONFIG = """\
# a comment the saved config.yaml keeps when there is no --set
name: t
simulator: {name: diffraction-tof, chunk_size: 8}
workflow:
  name: baseline
  phases:
    - {samples: 10, epochs: 2}
    - {samples: 20, epochs: 1}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return path


def _load(path, *sets):
    return load_config(path, check_plugins=False, overrides=parse_overrides(list(sets)))


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("site.nodes", ("site", "nodes")),
        ("workflow.phases[1].samples", ("workflow", "phases", 1, "samples")),
        ("scheduler.stage_walltime_s.S0", ("scheduler", "stage_walltime_s", "S0")),
        ('site["bad key"]', ("site", "bad key")),
        ("a[0][2].b-c", ("a", 0, 2, "b-c")),
    ],
)
def test_key_path_is_the_one_errors_print(text, parts):
    assert parse_key_path(text) == parts
    assert _path(parts) == text


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("site.nodes", "--set site.nodes: expected KEY.PATH=VALUE (no '=')"),
        ("=2", "--set =2: bad key path: empty key path"),
        ("site.=2", "--set site.=2: bad key path: the path ends with '.'"),
        (".site=2", "--set .site=2: bad key path: expected a key at '.site'"),
        ("a[x]=2", "--set a[x]=2: bad key path: expected [INDEX]"),
        ("a[-1]=2", "--set a[-1]=2: bad key path: list index must be >= 0"),
        ("a b=2", "--set a b=2: bad key path: expected '.' or '['"),
        ("site.nodes=[1", "--set site.nodes=[1: the value is not valid YAML"),
    ],
)
def test_malformed_argument_is_one_line_naming_it(arg, message):
    with pytest.raises(ConfigError) as err:
        parse_override(arg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("2", 2),
        ("0.5", 0.5),
        ("true", True),
        ("null", None),
        ("", None),
        ("[1, 2]", [1, 2]),
        ("{a: 1}", {"a": 1}),
        ("polaris", "polaris"),
        ('"02:00:00"', "02:00:00"),
        ("x=y", "x=y"),  # only the first '=' splits
    ],
)
def test_value_is_yaml(raw, value):
    assert parse_override(f"k={raw}").value == value


def test_apply_sets_creates_mappings_and_leaves_input_alone():
    # both phases are one object, as a YAML alias (`[*p, *p]`) loads: setting one keeps the other
    data = {"site": {"nodes": 1}, "model": None, "workflow": {"phases": [{"samples": 1}] * 2}}
    out = apply_overrides(
        data,
        parse_overrides(
            [
                "site.nodes=2",
                "workflow.phases[1].samples=900",
                "policy.options.study_size=50",  # policy absent: created
                "model.name=m",  # null mapping: created
                "site.nodes=3",  # later wins
            ]
        ),
    )
    assert out["site"] == {"nodes": 3}
    assert out["workflow"]["phases"] == [{"samples": 1}, {"samples": 900}]
    assert out["policy"] == {"options": {"study_size": 50}}
    assert out["model"] == {"name": "m"}
    assert data["site"] == {"nodes": 1} and data["workflow"]["phases"][1] == {"samples": 1}
    assert apply_overrides(None, parse_overrides(["a.b=1"])) == {"a": {"b": 1}}


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            "workflow.phases[2].samples=1",
            "workflow.phases has 2 item(s); index 2 is past its end",
        ),
        ("site[0]=1", "site is a mapping, not a list"),
        ("site.nodes.x=1", "site.nodes is 1 (a int), not a mapping"),
        ("workflow.phases.x=1", "workflow.phases is a list of 2 item(s), not a mapping"),
        ("policy.items[0]=1", "policy.items is not set; set the whole list instead"),
    ],
)
def test_apply_errors_name_the_argument(arg, message):
    data = {"site": {"nodes": 1}, "workflow": {"phases": [{}, {}]}}
    with pytest.raises(ConfigError) as err:
        apply_overrides(data, parse_overrides([arg]))
    assert str(err.value) == f"--set {arg}: {message}"


def test_overrides_are_validated_like_the_file(config):
    cfg = _load(config, "site.nodes=2", "workflow.phases[1].samples=900", "seed=7")
    assert cfg.site.nodes == 2 and cfg.workflow.phases[1].samples == 900 and cfg.seed == 7
    with pytest.raises(ConfigError) as err:
        _load(config, "site.nmae=2", "workflow.phases[0].epochs=0")
    lines = str(err.value).splitlines()
    assert lines[0] == f"{config} (with --set): invalid configuration"
    assert lines[1].startswith("  site.nmae: unknown key; allowed: name, nodes,")
    assert lines[2] == "  workflow.phases[0].epochs: must be > 0 (got 0)"


def test_effective_config_is_saved_and_reloads_the_same(config, tmp_path):
    cfg, raw = load_effective_config(config, check_plugins=False)
    assert raw == config.read_bytes()  # no --set: the file as given
    sets = parse_overrides(["site.nodes=2", "workflow.phases[1].samples=900", "policy.name=p"])
    cfg, text = load_effective_config(config, check_plugins=False, overrides=sets)
    assert text.decode().startswith(f"# effective config: {config} with\n#   --set site.nodes=2\n")
    saved = tmp_path / "saved.yaml"
    saved.write_bytes(text)
    again = load_config(saved, check_plugins=False)
    assert again == cfg and again.fingerprint() == cfg.fingerprint()
    assert yaml.safe_load(text)["workflow"]["phases"][1] == {"samples": 900, "epochs": 1}


def test_run_dir_keeps_the_overrides_and_resume_refuses_changes(tmp_path):
    from streamal.runner import prepare_run_dir

    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("name: baseline", "name: baseline\n  options: {}"))
    run = tmp_path / "run"
    sets = parse_overrides(["site.nodes=2", "scheduler.retries=5"])
    cfg, path, resumed = prepare_run_dir(str(config), str(run), None, overrides=sets)
    assert not resumed and cfg.site.nodes == 2
    assert load_config(run / "config.yaml") == cfg
    # a plain resume reads the effective config; repeating the same --set changes nothing
    assert prepare_run_dir(None, None, str(run))[0] == cfg
    assert prepare_run_dir(None, None, str(run), overrides=sets)[0] == cfg
    for arg, diff in [
        ("site.nodes=3", "site.nodes: 2 -> 3"),
        ("scheduler.retries=1", "scheduler.retries: 5 -> 1"),  # not in the fingerprint
    ]:
        with pytest.raises(ConfigError) as err:
            prepare_run_dir(None, None, str(run), overrides=parse_overrides([arg]))
        assert str(err.value) == (
            f"--resume {run}: --set would change the run's config ({diff}); "
            "a run resumes with the config it started with, drop --set"
        )


def _streamal(*args):
    return subprocess.run(
        [sys.executable, "-m", "streamal", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],  # configs/ relative, as a user types it
    )


def test_validate_with_set_ok_and_bad():
    good = _streamal(
        "validate",
        "configs/diffraction-ci.yaml",
        "--set",
        "site.nodes=2",
        "--set",
        "workflow.phases[1].samples=900",
        "--set",
        "policy.options.study_size=50",
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("configs/diffraction-ci.yaml: ok (streaming workflow")
    bad = _streamal("validate", "configs/diffraction-ci.yaml", "--set", "site.nmae=2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[1].startswith(
        "error: configs/diffraction-ci.yaml (with --set): site.nmae: unknown key; allowed: name,"
    )


@pytest.mark.parametrize(
    ("arg", "stderr"),
    [
        ("site.nodes", "error: --set site.nodes: expected KEY.PATH=VALUE (no '=')\n"),
        (
            "workflow.phases[3].samples=2",
            "error: configs/diffraction-ci.yaml: --set workflow.phases[3].samples=2: "
            "workflow.phases has 3 item(s); index 3 is past its end\n",
        ),
    ],
)
def test_validate_bad_set_is_one_line_exit_2(arg, stderr):
    res = _streamal("validate", "configs/diffraction-ci.yaml", "--set", arg)
    assert res.returncode == 2 and res.stderr == stderr
