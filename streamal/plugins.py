"""Entry-point plugins: simulators, models, policies, workflows, sites."""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict

from streamal.errors import PluginError, one_line

GROUPS: dict[str, str] = {
    "simulators": "streamal.simulators",
    "models": "streamal.models",
    "policies": "streamal.policies",
    "workflows": "streamal.workflows",
    "sites": "streamal.sites",
}

#: One plugin of each kind, for messages ("unknown policy 'x'").
SINGULAR: dict[str, str] = {
    "simulators": "simulator",
    "models": "model",
    "policies": "policy",
    "workflows": "workflow",
    "sites": "site",
}


class PluginOptions(BaseModel):
    """Base of every plugin's ``Options`` (the config's ``<section>.options``): unknown keys
    are errors that name the key. A plugin with no options keeps this class as it is."""

    model_config = ConfigDict(extra="forbid")


def _check_kind(kind: str) -> None:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; allowed: {sorted(GROUPS)}")


def _entry_points(kind: str) -> dict[str, EntryPoint]:
    _check_kind(kind)
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def available(kind: str) -> list[str]:
    """Installed plugin names of one kind, sorted."""
    return sorted(_entry_points(kind))


def load(kind: str, name: str) -> Any:
    """The object registered as ``name`` in the group for ``kind``.

    ``name`` may also be an import path ``"package.module:Attribute"``.

    Raises:
        PluginError: ``name`` is not installed (the message lists the installed ones), or
            importing it failed (the message names the plugin and the exception).
    """
    _check_kind(kind)
    one = SINGULAR[kind]
    if ":" in name:  # "package.module:Attribute", for plugins that are not installed
        module, _, attr = name.partition(":")
        try:
            imported = importlib.import_module(module)
        except (ImportError, ValueError) as exc:  # ValueError: ':x'
            raise PluginError(f"cannot load {one} {name!r}: {one_line(exc)}") from None
        except Exception as exc:  # the module itself raised while being imported
            raise PluginError(
                f"cannot load {one} {name!r}: importing {module!r} raised "
                f"{type(exc).__name__}: {one_line(exc)}"
            ) from None
        try:
            return getattr(imported, attr)
        except AttributeError:
            raise PluginError(
                f"cannot load {one} {name!r}: module {module!r} has no attribute {attr!r}"
            ) from None
    eps = _entry_points(kind)
    if name not in eps:
        raise PluginError(
            f"unknown {one} {name!r}; installed: {sorted(eps) or 'none'} "
            f"(entry-point group {GROUPS[kind]!r})"
        )
    try:
        return eps[name].load()
    except Exception as exc:  # a broken installed plugin: name it and what it raised
        raise PluginError(
            f"cannot load {one} {name!r} (entry point {eps[name].value!r} in group "
            f"{GROUPS[kind]!r}): {type(exc).__name__}: {one_line(exc)}"
        ) from None


def describe() -> dict[str, list[dict[str, str]]]:
    """Every installed plugin: ``{kind: [{name, value, dist}]}``."""
    out: dict[str, list[dict[str, str]]] = {}
    for kind in GROUPS:
        out[kind] = [
            {
                "name": ep.name,
                "value": ep.value,
                "dist": ep.dist.name if ep.dist is not None else "",
            }
            for ep in sorted(_entry_points(kind).values(), key=lambda e: e.name)
        ]
    return out
