"""docs/config-reference.md is generated from the config models and kept up to date, every key
has a description, and ``config-schema`` prints the config's JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamal.cli import main
from streamal.config import RunConfig
from streamal.config_reference import REGENERATE, reference_markdown, reference_models

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "config-reference.md"


def test_the_committed_reference_is_up_to_date():
    fresh = reference_markdown()
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert committed == fresh, (
        f"{DOC.relative_to(ROOT)} is out of date with the config models; regenerate it: "
        f"{REGENERATE}"
    )


def test_the_reference_names_how_to_regenerate_it():
    assert REGENERATE in reference_markdown().splitlines()[2]


def test_the_reference_is_deterministic():
    assert reference_markdown() == reference_markdown()


@pytest.mark.parametrize("all_plugins", [False, True], ids=["built-in", "installed"])
def test_every_documented_field_has_a_description(all_plugins):
    sections = reference_models(all_plugins=all_plugins)
    assert any(s.model is RunConfig for s in sections)
    missing = [
        f"{', '.join(s.paths) or '<top level>'}.{name} ({s.model.__module__}."
        f"{s.model.__qualname__})"
        for s in sections
        for name, field in s.model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, "fields without a description=: " + "; ".join(missing)


def test_every_config_section_and_built_in_plugin_is_documented():
    text = reference_markdown()
    for key in RunConfig.model_fields:
        assert f"| `{key}` |" in text, key
    for name in ("baseline", "serial", "streaming", "continuous", "uncertainty-mixture"):
        assert f"#### `{name}` (" in text, name
    assert "### `workflow.phases[i]` (PhaseConfig)" in text
    assert "**per class**" in text and "**total**" in text and "`S'1`" in text


def test_config_schema_prints_the_json_schema(capsys):
    assert main(["config-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "RunConfig" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(RunConfig.model_fields)
    assert schema["required"] == ["workflow"]
    assert {"SiteConfig", "PhaseConfig", "WorkflowConfig"} <= set(schema["$defs"])
    assert schema["properties"]["seed"]["description"]


def test_config_schema_writes_the_markdown_reference(tmp_path, capsys):
    out = tmp_path / "reference.md"
    assert main(["config-schema", "--markdown", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == reference_markdown()
    assert main(["config-schema", "--output", str(tmp_path / "no" / "such" / "x.json")]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: --output ")
