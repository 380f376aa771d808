import pytest

from streamal.config import load_config, parse_config
from streamal.errors import ConfigError

BASE = {
    "name": "t",
    "simulator": {"name": "diffraction-tof", "chunk_size": 8},
    "workflow": {"name": "baseline", "phases": [{"samples": 10, "epochs": 2}]},
}


def _parse(data):
    return parse_config(data, check_plugins=False)


def _with(path, value):
    import copy

    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return data


def test_valid_config_parses_with_defaults():
    cfg = _parse(BASE)
    assert cfg.site.name == "local" and cfg.scheduler.retries == 2
    assert cfg.workflow.phases[0].epochs == 2
    assert cfg.fingerprint() == _parse(BASE).fingerprint()


def test_a_resume_may_change_only_settings_outside_the_data():
    from streamal.run_dir import config_difference

    cfg = _parse(BASE)
    how = _parse(
        {**BASE, "scheduler": {"retries": 0}, "train": {"launcher": "local"}, "report": {}}
    )
    assert how.fingerprint() == cfg.fingerprint() and config_difference(cfg, how) == []
    data = _parse({**BASE, "train": {"launcher": "local", "learning_rate": 0.5}})
    assert data.fingerprint() != cfg.fingerprint()
    assert config_difference(cfg, data) == ["train.learning_rate: 0.0005 -> 0.5"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("workflow", "phases"),
            [{"samples": 1, "epochs": 1}] * 2 + [{"samples": 1, "epochs": 0}],
            r"workflow\.phases\[2\]\.epochs: must be > 0 \(got 0\)",
        ),
        (("site", "nmae"), "local", r"site\.nmae: unknown key; allowed: name, nodes, "),
        (("colour",), "red", r"colour: unknown key; allowed: name, seed, site, "),
        (("simulator",), 3, r"simulator: .*valid dictionary"),
        (
            ("site", "name"),
            "aurora",
            r"site\.name: unknown site 'aurora'; allowed: local, perlmutter, polaris$",
        ),
        (("scheduler", "retries"), "many", r"scheduler\.retries: .*integer.*\(got 'many'\)"),
        (("simulator", "chunk_size"), -1, r"simulator\.chunk_size: must be > 0"),
        (("workflow", "phases"), [], r"workflow\.phases: needs at least 1 item"),
        (("site", "name"), "polaris", r"site: .*needs `account`"),
    ],
)
def test_bad_values_name_their_key_path(path, value, message):
    with pytest.raises(ConfigError, match=message):
        _parse(_with(path, value))


def test_missing_section_is_named():
    data = dict(BASE)
    del data["workflow"]
    with pytest.raises(ConfigError, match="workflow: required key is missing"):
        _parse(data)


def test_unknown_plugin_lists_installed_ones():
    with pytest.raises(ConfigError, match=r"simulator\.name: unknown simulator 'nope'; installed"):
        parse_config(_with(("simulator", "name"), "nope"))


def test_yaml_errors_are_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_unsafe_yaml_tags_are_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)
