"""Property-based: every malformed config is rejected with a ConfigError naming a key path."""

import copy
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamal.config import parse_config
from streamal.errors import ConfigError
from tests.test_run import CONFIG

pytestmark = pytest.mark.faults

VALID = {**CONFIG, "workflow": {"name": "serial", "phases": [{"samples": 4, "epochs": 1}]}}
SEGMENT = r'(?:\.[A-Za-z_][\w-]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])'
KEY_PATH = re.compile(rf'^  (?:[A-Za-z_][\w-]*|\["(?:[^"\\]|\\.)*"\]){SEGMENT}*: .+', re.MULTILINE)

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


PATHS = list(_paths(VALID))


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@st.composite
def broken(draw):
    data = copy.deepcopy(VALID)
    kind = draw(st.sampled_from(["replace", "add", "delete"]))
    path = draw(st.sampled_from(PATHS))
    if kind == "replace":
        _set(data, path, draw(junk))
    elif kind == "add":
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict):
            parent["zz_" + draw(st.text("abc", min_size=1, max_size=4))] = draw(junk)
        else:
            _set(data, path, draw(junk))
    else:
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken())
def test_malformed_configs_fail_cleanly_with_a_key_path(data):
    try:
        parse_config(data)
    except ConfigError as exc:
        assert KEY_PATH.search(str(exc)), str(exc)
    # some mutations are still valid configs (e.g. a junk value equal to a default): fine


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("workflow", "phases", 0, "samples"), 0, r"workflow\.phases\[0\]\.samples: must be > 0"),
        (("simulator", "name"), "no-such-sim", r"simulator\.name: unknown simulator .*installed"),
        (
            ("workflow", "name"),
            "nope",
            r"workflow\.name: unknown workflow 'nope'; installed: "
            r"\['baseline', 'continuous', .*'serial', 'streaming'",
        ),
        (("simulator", "options"), {"speed": 1}, r"simulator\.options: .*speed"),
    ],
)
def test_specific_bad_inputs(path, value, message):
    data = copy.deepcopy(VALID)
    _set(data, path, value)
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_cli_never_shows_a_traceback(tmp_path):
    for i, text in enumerate(
        ["[1, 2", "simulator: 3\n", "workflow: {phases: [{epochs: -1}]}\n", "\x00\x01"]
    ):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(text)
        res = subprocess.run(
            [sys.executable, "-m", "streamal", "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ranges": {"cubic": {"a": [4.5, 3.5]}}}, r"simulator\.options: .*low <= high"),
        ({"classes": []}, r"simulator\.options: .*at least one class"),
        ({"classes": ["cubic", "quasicrystal"]}, r"simulator\.options: .*quasicrystal"),
    ],
)
def test_bad_parameter_boxes_and_classes(options, message):
    pytest.importorskip("streamal_diffraction")
    data = copy.deepcopy(VALID)
    data["simulator"] = {"name": "diffraction-tof", "options": options}
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
