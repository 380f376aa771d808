"""The config reference (``docs/config-reference.md``), generated from the config models.

Every key of :class:`~streamal.config.RunConfig` and its sections, then the ``options`` of each
built-in workflow, policy, model and simulator plugin: type, default, constraints and the
field's ``description``. The output depends only on the models, so the committed file can be
compared with a fresh one (``tests/test_config_reference.py``). Regenerate it with::

    python -m streamal config-schema --markdown --output docs/config-reference.md
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from streamal.config import RunConfig

#: The command that writes ``docs/config-reference.md``.
REGENERATE = "python -m streamal config-schema --markdown --output docs/config-reference.md"

#: The plugin kinds whose ``<section>.options`` the reference documents, in order.
PLUGIN_KINDS: dict[str, str] = {
    "workflows": "workflow",
    "policies": "policy",
    "models": "model",
    "simulators": "simulator",
}

#: Whose plugins the reference documents unless asked for every installed one.
BUILT_IN = "streamal"

_INTRO = """\
A config is one YAML mapping (UTF-8). Every section refuses unknown keys, and every problem is
reported with its key path, the path this page uses and that `--set KEY.PATH=VALUE` takes
(`workflow.phases[1].samples`, `policy.options.study_size`). `python -m streamal validate
CONFIG...` checks configs without running them; `python -m streamal config-schema` prints the
same keys as a JSON schema."""

_PHASES = """\
## Phases and stage labels

`workflow.phases` is the campaign's schedule. Phase 0 simulates uniform data and trains the
first model; each later phase *k* draws an active-learning batch from the policy and trains
again, warm-started from the previous phase's best checkpoint.

- `workflow.phases[0].samples` is **per class**: phase 0 simulates that many uniform training
  samples of each class, and validation and test sets of `val_fraction` and `test_fraction`
  times that, per class.
- `workflow.phases[k].samples`, *k* >= 1, is a **total** over all classes: the size of phase
  *k*'s active-learning batch; the policy decides the class of each sample.
- `continuous` stops after the later phases' samples (added up) have been stored; `nas` takes
  one phase whose `samples` is the number of candidate architectures.

Each task carries a stage label; the progress display, the timeline, `report`'s task table and
`scheduler.stage_walltime_s` (by prefix) use them:"""

#: The stage labels of the workflows' tasks, as the reference explains them.
STAGE_LABELS: tuple[tuple[str, str], ...] = (
    ("`S0`", "phase 0's uniform training, validation and test sets (`serial`: also the study set)"),
    (
        "`S'0`",
        "the policy's study set (the points where the model's uncertainty is measured), "
        "simulated while `T0` trains (`streaming`, `continuous`)",
    ),
    (
        "`T0`, `T1`, ...",
        "the training of phase 0, 1, ...; each later one is warm-started from the best "
        "checkpoint of the one before (`continuous`: numbered by retraining)",
    ),
    (
        "`AL1`, `AL2`, ...",
        "the active-learning task before phase *k*'s batch: the latest model predicts its "
        "uncertainty on the study set and the policy is fitted to it",
    ),
    (
        "`S1`, `S2`, ...",
        "the part of phase *k*'s AL batch simulated before `T`*k* trains (`serial`: all of it; "
        "`streaming`: `split_fraction` of it, the last phase all of it)",
    ),
    (
        "`S'1`, `S'2`, ...",
        "`streaming`: the rest of phase *k*'s batch (by default the other half), simulated "
        "while `T`*k* trains, the overlap; it joins phase *k*+1's training data",
    ),
    (
        "`C0`, `C1`, ...",
        "`continuous`: the feeder's chunks, drawn from the policy of generation *g* (`C0`: "
        "uniform, before the first model)",
    ),
)


@dataclass(frozen=True)
class Section:
    """One table of the reference: the key paths a model is used at, and the model."""

    paths: tuple[str, ...]
    model: type[BaseModel]


def _innermost_models(annotation: Any) -> Iterator[type[BaseModel]]:
    """Every config model inside a type (``list[ClassOptions] | None`` -> ClassOptions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _innermost_models(arg)


def _item_suffix(annotation: Any) -> str:
    """``[i]`` when the models of ``annotation`` sit in a list, ``.<key>`` in a mapping."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return "[i]"
    if origin is dict:
        return ".<key>"
    for arg in typing.get_args(annotation):
        found = _item_suffix(arg)
        if found:
            return found
    return ""


def _sections(model: type[BaseModel], path: str) -> list[Section]:
    """``model`` at ``path`` and, depth first, each model nested in its fields."""
    out = [Section((path,), model)]
    for name, field in model.model_fields.items():
        for inner in _innermost_models(field.annotation):
            out += _sections(inner, f"{path}.{name}{_item_suffix(field.annotation)}")
    return out


def _merge(sections: list[Section]) -> list[Section]:
    """One section per model, naming every path it is used at (``model``, ``policy``)."""
    merged: dict[type[BaseModel], tuple[str, ...]] = {}
    for s in sections:
        merged[s.model] = merged.get(s.model, ()) + s.paths
    return [Section(paths, model) for model, paths in merged.items()]


def core_sections() -> list[Section]:
    """The top level (path ``""``) and each section of :class:`RunConfig`, in field order."""
    sections = [Section(("",), RunConfig)]
    for name, field in RunConfig.model_fields.items():
        for inner in _innermost_models(field.annotation):
            sections += _sections(inner, name)
    return _merge(sections)


@dataclass(frozen=True)
class PluginEntry:
    """An installed plugin of one kind, its distribution and its options' sections."""

    kind: str
    name: str
    value: str
    dist: str
    plugin: Any
    sections: tuple[Section, ...]


def plugin_entries(*, all_plugins: bool = False) -> list[PluginEntry]:
    """The workflow, policy, model and simulator plugins to document, sorted by kind and name.

    Args:
        all_plugins: Every installed plugin; otherwise only streamal's own (so the output does
            not depend on what else is installed).
    """
    from streamal import plugins

    found = plugins.describe()
    out = []
    for kind, section in PLUGIN_KINDS.items():
        for entry in found[kind]:
            if not all_plugins and entry["dist"] != BUILT_IN:
                continue
            plugin = plugins.load(kind, entry["name"])
            options = getattr(plugin, "Options", None)
            sections: tuple[Section, ...] = ()
            if isinstance(options, type) and issubclass(options, BaseModel):
                sections = tuple(_sections(options, f"{section}.options"))
            out.append(
                PluginEntry(kind, entry["name"], entry["value"], entry["dist"], plugin, sections)
            )
    return out


def reference_models(*, all_plugins: bool = False) -> list[Section]:
    """Every model the reference documents: the config's sections, then the plugins'."""
    out = core_sections()
    for entry in plugin_entries(all_plugins=all_plugins):
        out += list(entry.sections)
    return out


# -- text ---------------------------------------------------------------------------------------
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_CODE = re.compile(r"(`+[^`]*`+)")


def _plain(doc: str | None) -> str:
    """A docstring's first paragraph on one line, reST roles and double backticks as Markdown."""
    if not doc:
        return ""
    first = inspect.cleandoc(doc).split("\n\n")[0]
    text = " ".join(first.split())
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    """Text for a table cell: ``|`` escaped everywhere, ``<`` and ``*`` outside code spans."""
    parts = _CODE.split(text)
    for i, part in enumerate(parts):
        if i % 2 == 0:
            part = part.replace("*", r"\*").replace("<", "&lt;")
        parts[i] = part.replace("|", r"\|")
    return "".join(parts)


def _type(annotation: Any) -> str:
    """``int``, ``int | null``, ``"submit" | "inside-job"``, ``list[int > 0]``, ..."""
    if annotation is None or annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type(a) for a in args)
    if origin is typing.Annotated:
        limits = _constraints(list(annotation.__metadata__))
        return _type(args[0]) + (f" {', '.join(limits)}" if limits else "")
    if origin is not None:
        inner = ", ".join(_type(a) for a in args if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_LIMITS = (
    (annotated_types.Gt, "gt", "> {}"),
    (annotated_types.Ge, "ge", ">= {}"),
    (annotated_types.Lt, "lt", "< {}"),
    (annotated_types.Le, "le", "<= {}"),
    (annotated_types.MinLen, "min_length", "at least {} item(s)"),
    (annotated_types.MaxLen, "max_length", "at most {} item(s)"),
)


def _constraints(metadata: list[Any], annotation: Any = None) -> list[str]:
    """``> 0``, ``<= 100000000``, ``matches ^...$`` from a field's metadata."""
    out = []
    for item in metadata:
        if annotation is str and isinstance(item, annotated_types.MinLen):
            out.append("not empty" if item.min_length == 1 else f"{item.min_length}+ characters")
            continue
        for kind, attr, text in _LIMITS:
            if isinstance(item, kind):
                out.append(text.format(getattr(item, attr)))
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            out.append(f"matches `{pattern}`")
    return out


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{json.dumps(value, ensure_ascii=False, default=str)}`"


def _table(model: type[BaseModel]) -> list[str]:
    lines = [
        "| key | type | default | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in model.model_fields.items():
        kind = _cell(f"`{_type(field.annotation)}`")
        limits = _cell(", ".join(_constraints(field.metadata, field.annotation)))
        about = _cell(" ".join((field.description or "").split()))
        lines.append(f"| `{name}` | {kind} | {_cell(_default(field))} | {limits} | {about} |")
    return lines


def _section(section: Section, level: str) -> list[str]:
    paths = ", ".join(f"`{p}`" for p in section.paths)
    lines = [f"{level} {paths} ({section.model.__name__})", ""]
    about = _plain(section.model.__doc__)
    if about:
        lines += [_cell(about), ""]
    return [*lines, *_table(section.model), ""]


def _keyword_options(plugin: Any) -> list[str]:
    """A plugin without an ``Options`` model: its constructor's keyword arguments."""
    try:
        params = inspect.signature(plugin).parameters.values()
    except (TypeError, ValueError):
        return ["Its options are the keyword arguments of its constructor.", ""]
    shown = [
        f"`{p.name}`" + ("" if p.default is p.empty else f" (default `{p.default!r}`)")
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if not shown:
        return ["No options.", ""]
    return [
        "No `Options` model: its options are the keyword arguments of its constructor, "
        "checked when it is built: " + _cell(", ".join(shown)) + ".",
        "",
    ]


def reference_markdown(*, all_plugins: bool = False) -> str:
    """The whole reference, as Markdown.

    Args:
        all_plugins: Also document every installed plugin (apps, third-party), not only
            streamal's own; the committed ``docs/config-reference.md`` has streamal's only.
    """
    core = core_sections()
    lines = [
        "# Config reference",
        "",
        f"Generated from the config models by `{REGENERATE}`; do not edit it by hand.",
        "",
        _INTRO,
        "",
        _PHASES,
        "",
        "| label | what it is |",
        "| --- | --- |",
        *(f"| {label} | {about} |" for label, about in STAGE_LABELS),
        "",
        "## Sections",
        "",
    ]
    for section in core:
        if section.paths == ("",):
            lines += ["### Top level (RunConfig)", "", _cell(_plain(RunConfig.__doc__)), ""]
            lines += [*_table(RunConfig), ""]
        else:
            lines += _section(section, "###")
    from streamal import plugins

    lines += [
        "## Plugin options",
        "",
        "A plugin section's `options` are checked against the plugin's own `Options` model "
        "(unknown keys are errors too). "
        + ("Every installed plugin:" if all_plugins else "streamal's built-in plugins:")
        + " `python -m streamal plugins` lists what is installed.",
        "",
    ]
    entries = plugin_entries(all_plugins=all_plugins)
    for kind, section_name in PLUGIN_KINDS.items():
        lines += [f"### {kind.capitalize()} (`{section_name}.name`)", ""]
        for entry in (e for e in entries if e.kind == kind):
            dist = "" if entry.dist == BUILT_IN else f", from {entry.dist}"
            lines += [f"#### `{entry.name}` (`{entry.value}`{dist})", ""]
            module = sys.modules.get(getattr(entry.plugin, "__module__", ""))
            about = _plain(entry.plugin.__doc__ or getattr(module, "__doc__", None))
            if about:
                lines += [_cell(about), ""]
            if not entry.sections:
                lines += _keyword_options(entry.plugin)
                continue
            if not entry.sections[0].model.model_fields:
                lines += ["No options.", ""]
                continue
            for sub in entry.sections:
                lines += _section(sub, "#####")
    sites = [e for e in plugins.describe()["sites"] if all_plugins or e["dist"] == BUILT_IN]
    lines += [
        "### Sites (`site.name`)",
        "",
        "A site has no options of its own; `site` above sets it up. "
        + ("Installed" if all_plugins else "Built-in")
        + " sites: "
        + ", ".join(f"`{e['name']}`" for e in sites)
        + ".",
        "",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
