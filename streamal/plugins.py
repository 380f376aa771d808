"""Entry-point plugins: simulators, models, policies, workflows."""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from streamal.errors import PluginError

GROUPS: dict[str, str] = {
    "simulators": "streamal.simulators",
    "models": "streamal.models",
    "policies": "streamal.policies",
    "workflows": "streamal.workflows",
}


def _entry_points(kind: str) -> dict[str, EntryPoint]:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; allowed: {sorted(GROUPS)}")
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def available(kind: str) -> list[str]:
    """Installed plugin names of one kind, sorted."""
    return sorted(_entry_points(kind))


def load(kind: str, name: str) -> Any:
    """The object registered as ``name`` in the group for ``kind``.

    ``name`` may also be an import path ``"package.module:Attribute"``.

    Raises:
        PluginError: ``name`` is not installed; the message lists the installed ones.
    """
    if ":" in name:  # "package.module:Attribute", for plugins that are not installed
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:  # ValueError: ':x'
            raise PluginError(f"cannot load {kind[:-1]} {name!r}: {exc}") from None
    eps = _entry_points(kind)
    if name not in eps:
        raise PluginError(
            f"unknown {kind[:-1]} {name!r}; installed: {sorted(eps) or 'none'} "
            f"(entry-point group {GROUPS[kind]!r})"
        )
    return eps[name].load()


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
